-- Events name the step that made each group version (OriginGroupChanged.step,
-- HostGroupChanged.step), so notify no longer tells a transfer reply apart by a token of
-- the last reply it saw. notify_seen keeps the version (to skip duplicates and older
-- versions) and the status (to infer the step of an event that names none: repair copies
-- and producers from before steps were named; domain/rules.py step_of).
ALTER TABLE notify_seen DROP COLUMN transfer;
