"""Link health: the per-pair sequence seen from a partner, gaps, heartbeats and silence.

Events of one pair travel on several partitions, so numbers may arrive out of order for
a moment; a number still missing after ``grace`` is a gap. A heartbeat tells the last
number the partner sent, so a lost tail is a gap too. No event and no heartbeat for
``silence`` is a silent link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from yixian.contracts import LinkState


@dataclass
class SequenceTracker:
    contiguous: int = 0
    """Every number up to this one has arrived."""
    ahead: set[int] = field(default_factory=set)
    """Numbers received beyond ``contiguous``."""
    partner_sent: int = 0
    """The last number the partner says it sent (from heartbeats)."""
    missing_since: datetime | None = None
    last_event_at: datetime | None = None
    last_heartbeat_at: datetime | None = None

    @property
    def max_seen(self) -> int:
        return max([self.contiguous, *self.ahead])

    @property
    def expected_up_to(self) -> int:
        return max(self.max_seen, self.partner_sent)

    def missing(self, limit: int = 1000) -> list[int]:
        found = []
        for seq in range(self.contiguous + 1, self.expected_up_to + 1):
            if seq not in self.ahead:
                found.append(seq)
                if len(found) >= limit:
                    break
        return found

    def missing_runs(self, limit: int) -> list[tuple[int, int]]:
        """The missing numbers exactly, as (first, last) runs in order; at most ``limit``."""
        runs: list[tuple[int, int]] = []
        start = self.contiguous + 1
        for seq in [*sorted(self.ahead), self.expected_up_to + 1]:
            if len(runs) >= limit:
                break
            if seq > start:
                runs.append((start, seq - 1))
            start = max(start, seq + 1)
        return runs

    def receive(self, seq: int, now: datetime) -> bool:
        """Record a number; False if it was seen before."""
        self.last_event_at = now
        if seq <= self.contiguous or seq in self.ahead:
            return False
        self.ahead.add(seq)
        while self.contiguous + 1 in self.ahead:
            self.contiguous += 1
            self.ahead.discard(self.contiguous)
        self._note_missing(now)
        return True

    def settle_up_to(self, sequence: int, now: datetime) -> None:
        """The partner's digest as of ``sequence`` matched ours: whatever numbers up to it
        are still missing were lost for good and their effect repaired; stop waiting."""
        if sequence > self.contiguous:
            self.contiguous = sequence
            self.ahead = {s for s in self.ahead if s > sequence}
            while self.contiguous + 1 in self.ahead:
                self.contiguous += 1
                self.ahead.discard(self.contiguous)
        self._note_missing(now)

    def heartbeat(self, last_sequence: int, now: datetime) -> None:
        self.last_heartbeat_at = now
        self.partner_sent = max(self.partner_sent, last_sequence)
        self._note_missing(now)

    def refresh(self, now: datetime) -> None:
        """Start (or stop) the clock on missing numbers."""
        self._note_missing(now)

    def _note_missing(self, now: datetime) -> None:
        if self.contiguous >= self.expected_up_to:
            self.missing_since = None
        elif self.missing_since is None:
            self.missing_since = now

    def state(self, now: datetime, *, grace: timedelta, silence: timedelta) -> LinkState:
        heard = max((t for t in (self.last_event_at, self.last_heartbeat_at) if t), default=None)
        if heard is None or now - heard > silence:
            return LinkState.SILENT
        if self.missing_since is not None:
            return LinkState.GAP if now - self.missing_since > grace else LinkState.LAGGING
        return LinkState.HEALTHY

    def lag(self) -> int:
        """How many numbers the partner sent that have not arrived yet."""
        return self.expected_up_to - self.contiguous - len(self.ahead)


def subtract_runs(
    wanted: list[tuple[int, int]], done: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The numbers of ``wanted`` runs that no ``done`` run covers, as runs in order."""
    left: list[tuple[int, int]] = []
    for first, last in sorted(wanted):
        for done_first, done_last in sorted(done):
            if done_last < first or done_first > last:
                continue
            if done_first > first:
                left.append((first, done_first - 1))
            first = done_last + 1
            if first > last:
                break
        if first <= last:
            left.append((first, last))
    return left
