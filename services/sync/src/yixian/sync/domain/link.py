"""Link health: the per-pair sequence seen from a partner, gaps, heartbeats and silence.

Events of one pair travel on several partitions, so numbers may arrive out of order for
a moment; a number still missing after ``grace`` is a gap. A heartbeat tells the last
number the partner sent, so a lost tail is a gap too. No event and no heartbeat for
``silence`` is a silent link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from yixian.contracts import LinkState
from yixian.contracts.link import MAX_RANGES

from .apply import Refused
from .digest import DEFAULT_BUCKETS

Run = tuple[int, int]
"""Consecutive pair numbers (first, last), both included."""


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    heartbeat_interval: timedelta = timedelta(seconds=10)
    """An idle link sends a heartbeat this often."""
    silence: timedelta = timedelta(seconds=35)
    """Nothing heard for this long: the link is silent."""
    gap_grace: timedelta = timedelta(seconds=5)
    """A number missing for longer than this is a gap (not reordering across partitions)."""
    digest_interval: timedelta = timedelta(minutes=5)
    bucket_count: int = DEFAULT_BUCKETS
    replay_backoff_max: timedelta = timedelta(minutes=2)
    """Replay requests for one gap wait twice as long each time, up to this."""
    replay_tries_per_digest: int = 3
    """After this many replay requests for a gap still open, a digest is sent at once."""
    max_ahead: int = 100_000
    """A pair number further than this beyond the highest seen is refused, not a gap."""
    epoch_ahead: timedelta = timedelta(days=1)
    """A link epoch started further than this in the future is refused (ADR 16)."""

    @property
    def replay_interval(self) -> timedelta:
        """The least time between two replay requests for a gap, and between two answers
        to the same numbers."""
        return self.gap_grace * 2

    def replay_wait(self, tries: int) -> timedelta:
        """How long after its last replay request a gap asked for ``tries`` times waits."""
        if tries <= 0:
            return timedelta(0)
        return min(self.replay_backoff_max, self.replay_interval * (1 << min(tries - 1, 30)))

    def heartbeat_due(self, last_sent_at: datetime | None, now: datetime) -> bool:
        """Whether a link that last carried something of ours at ``last_sent_at`` is idle."""
        return last_sent_at is None or now - last_sent_at >= self.heartbeat_interval

    def digest_due(self, last_digest_at: datetime | None, now: datetime) -> bool:
        """Whether the periodic digest is due (anti-entropy on demand does not ask)."""
        return last_digest_at is None or now - last_digest_at >= self.digest_interval

    def within_reach(self, seq: int, highest_seen: int) -> bool:
        """Whether the partner can have sent pair number ``seq``: a number far beyond the
        highest seen is a forged or broken claim, refused rather than taken for a gap."""
        return seq <= highest_seen + self.max_ahead


def check_claim(what: str, claimed: int, pairseq: int | None) -> None:
    """A link event (heartbeat, digest) claims numbers sent before it, so below its own
    number (the relay numbers it after it was written); a claim at or beyond it is refused."""
    if pairseq is None or claimed >= pairseq:
        raise Refused(
            f"{what} claims {claimed} numbers sent, not below its own pair number {pairseq}"
        )


def epoch_of(started: datetime) -> int:
    """The link epoch of a numbering started at ``started``: microseconds since 1970 (UTC),
    so that a later numbering space has a greater epoch (ADR 16)."""
    return int((started - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


class Numbering(StrEnum):
    """Where a pair event's epoch stands against the epoch a receiver tracks."""

    CURRENT = "current"
    NEWER = "newer"
    """The partner numbers from 1 again (its database was recreated or restored): a new
    numbering space; the older one's gaps are given up, a digest repairs what they held."""
    OLDER = "older"
    """A straggler of an older numbering space: applied (groups are versioned), but its
    number counts for nothing, nor does what it claims."""


def numbering(tracked: int, epoch: int) -> Numbering:
    """How an event of link epoch ``epoch`` stands against the ``tracked`` one (0: events
    from before epochs, and no event yet)."""
    if epoch == tracked:
        return Numbering.CURRENT
    return Numbering.NEWER if epoch > tracked else Numbering.OLDER


def check_epoch(epoch: int, now: datetime, policy: LinkPolicy) -> None:
    """A new epoch must have started by now (within ``epoch_ahead`` of clock skew): one far
    in the future is a forged claim that would make every real number a straggler."""
    if epoch > epoch_of(now + policy.epoch_ahead):
        raise Refused(f"link epoch {epoch} starts after {now + policy.epoch_ahead:%Y-%m-%d %H:%M}")


def count_numbers(runs: list[Run]) -> int:
    return sum(last - first + 1 for first, last in runs)


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What the receiver of a link does about its gap at one tick of the link keeper."""

    runs: list[Run]
    """Ask the partner to replay exactly these numbers now (none: ask nothing)."""
    attempts: int
    """Replay requests made for the gap still open, this one included (0: no gap)."""
    with_digest: bool
    """Send a digest along: it lets the partner settle what cannot be replayed."""


def plan_replay(
    tracker: SequenceTracker,
    now: datetime,
    policy: LinkPolicy,
    *,
    attempts: int,
    asked_at: datetime | None,
) -> ReplayPlan:
    """Ask for exactly the missing numbers once they are a gap, less often each time
    (``LinkPolicy.replay_wait``); every ``replay_tries_per_digest`` requests for a gap
    still open, send a digest too. A closed gap forgets its attempts."""
    state = tracker.state(now, grace=policy.gap_grace, silence=policy.silence)
    if state is not LinkState.GAP:
        return ReplayPlan(runs=[], attempts=0, with_digest=False)
    if attempts and asked_at is not None and now - asked_at < policy.replay_wait(attempts):
        return ReplayPlan(runs=[], attempts=attempts, with_digest=False)
    runs = tracker.missing_runs(MAX_RANGES)
    if not runs:  # pragma: no cover - a gap has a missing number by definition
        return ReplayPlan(runs=[], attempts=attempts, with_digest=False)
    tries = attempts + 1
    with_digest = tries % policy.replay_tries_per_digest == 0
    return ReplayPlan(runs=runs, attempts=tries, with_digest=with_digest)


def answer_replay(wanted: list[Run], answered_lately: list[Run]) -> list[Run]:
    """The numbers of a replay request the sender puts back in its queue: each number at
    most once per ``LinkPolicy.replay_interval`` however often it is asked (the runs
    answered within it are ``answered_lately``)."""
    return subtract_runs(wanted, answered_lately)


def replay_needs_digest(runs: list[Run], sendable: int) -> bool:
    """Some numbers asked for cannot be sent again (gone, parked, discarded, never
    numbered): a digest, sent at once, lets the partner settle them."""
    return sendable < count_numbers(runs)


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
    _highest: int = field(default=0, init=False, repr=False, compare=False)
    """The highest number received: kept as numbers arrive, where taking the largest of
    ``ahead`` at each made a gap with many numbers beyond it quadratic to fold in."""

    def __post_init__(self) -> None:
        self._highest = max(self.ahead, default=0)

    @property
    def max_seen(self) -> int:
        return max(self.contiguous, self._highest)

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
        self._highest = max(self._highest, seq)
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
