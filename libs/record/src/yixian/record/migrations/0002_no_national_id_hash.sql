-- A member card no longer carries a hash of the national ID (ADR 14): nodes kept the one
-- older versions sent in the origin groups they stored, their history, and the events
-- the outbox keeps for replays. Drop it everywhere; readers already ignore it.
UPDATE movements SET origin_group = origin_group #- '{member,national_id_hash}'
    WHERE origin_group #>> '{member,national_id_hash}' IS NOT NULL;

UPDATE movement_history SET snapshot = snapshot #- '{member,national_id_hash}'
    WHERE group_name = 'origin' AND snapshot #>> '{member,national_id_hash}' IS NOT NULL;

UPDATE outbox SET value = convert_to(
        (convert_from(value, 'UTF8')::jsonb #- '{data,group,member,national_id_hash}')::text,
        'UTF8')
    WHERE event_type = 'yixian.movement.origin_group.v1'
      AND convert_from(value, 'UTF8')::jsonb #>> '{data,group,member,national_id_hash}'
          IS NOT NULL;
