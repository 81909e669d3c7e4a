"""What applying a partner's records reads and writes, as an abstract store.

The unit of work (``unit_of_work.py``) gives one per transaction. ``adapters/store.py``
implements it on one PostgreSQL connection; ``tests/unit/fakes.py`` keeps it in memory,
so the ``Applier`` can be tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from yixian.contracts import (
    DigestEntry,
    Envelope,
    HostGroup,
    OriginGroup,
    ParticipationRecorded,
    VisitorClaimAnswered,
    VisitorClaimAsked,
)
from yixian.sync.domain import SequenceTracker, StoredMovement
from yixian.sync.domain.apply import Mark


@dataclass(frozen=True, slots=True)
class Inbound:
    """One record as it came off a pair topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class Claim(NamedTuple):
    """An event to claim in the inbox, as ``claim_all`` takes it."""

    source: str
    event_id: UUID
    event_type: str
    topic: str
    partition: int
    offset: int
    pairseq: int | None
    trace_id: str | None
    event_time: datetime | None
    movement_id: UUID | None
    epoch: int
    """The link epoch of ``pairseq`` (ADR 16)."""


@dataclass
class Replayed:
    """What a run of a partner's events came to, in memory, for ``Store.write_replayed`` to
    write at once (``service_layer.replay``)."""

    claims: list[tuple[Claim, str]] = field(default_factory=list)
    """Each event the run claimed in the inbox, with what became of it."""
    origins: dict[int, tuple[OriginGroup, Mark | None]] = field(default_factory=dict)
    """The last origin group taken of each movement (by ``UUID.int`` of its id, as the
    other two), with the mark it keeps."""
    hosts: dict[int, tuple[HostGroup, Mark | None]] = field(default_factory=dict)
    """The last host group taken of each movement, with the mark it keeps."""
    created: dict[int, UUID] = field(default_factory=dict)
    """Movements the run created (the partner's origin group seen first): the member id of
    the group that created each."""
    versions: list[OriginGroup | HostGroup] = field(default_factory=list)
    """Every group taken, in order: a movement's history keeps the first of each version."""
    participations: list[ParticipationRecorded] = field(default_factory=list)
    """Attendances received for the first time, in order."""


class ReplayAsked(NamedTuple):
    """What this node last asked a partner to replay (``links``)."""

    epoch: int
    at: datetime | None
    attempts: int


class Store(Protocol):
    """The sync service's reads and writes inside one transaction: the partner's groups of
    shared movements and the participations received, the inbox, the links, the dead
    letters, and the outbox it publishes through.

    A *deferred* store (a consumer batch's fast path) holds its append-only writes (outbox
    rows, group versions, inbox outcomes) and the writes to movements ``lock_movements``
    read until ``flush``; whoever opened the transaction flushes before it commits."""

    @property
    def node(self) -> str:
        """The node this store is of."""

    async def flush(self) -> None:
        """Write what waits: replicas, outbox rows, history versions, inbox outcomes."""

    # -- a whole batch at once -----------------------------------------------------------------

    async def claim_all(self, claims: list[Claim]) -> None:
        """Claim a batch's events (and count their pair numbers as arrived) at once;
        ``claim`` then answers for each numbered one from the result."""

    async def lock_movements(self, movement_ids: set[UUID]) -> None:
        """Read and lock a batch's movements at once; ``movement`` then answers from what
        was read, and the writes to them wait for ``flush``."""

    # -- a run of events replayed at once (service_layer.replay) -----------------------------

    async def known_events(self, source: str, event_ids: list[UUID]) -> set[UUID]:
        """Those of ``event_ids`` the inbox has from ``source``."""

    async def known_participations(self, participation_ids: list[UUID]) -> set[UUID]:
        """Those of ``participation_ids`` kept here."""

    async def partner_copies(
        self, partner: str, movement_ids: set[UUID]
    ) -> dict[UUID, StoredMovement]:
        """The movements of ``movement_ids`` known here, locked until the transaction ends,
        with ``partner``'s group only: this node's own is left out (None), as nothing a
        partner's group event or attendance decides reads it."""

    async def partner_groups_held(self, partner: str) -> dict[UUID, tuple[str, str]]:
        """The movements shared with ``partner`` whose partner group (or the mark of the
        event that set it) is held here, with their (origin, host): what forgetting
        ``partner`` clears."""

    async def clear_partner_groups(self, partner: str, movement_ids: set[UUID]) -> None:
        """Forget ``partner``'s group of these movements, and the mark that set it."""

    async def forget_events(self, source: str, event_ids: list[UUID]) -> None:
        """Delete these events of ``source`` from the inbox."""

    async def forget_events_but(self, source: str, event_ids: set[UUID]) -> None:
        """Delete every event of ``source`` from the inbox but these."""

    async def write_replayed(self, replayed: Replayed) -> None:
        """Write what a run came to: inbox rows with their outcomes (an event's row from
        before a rebuild rewritten if it differs) and the pair numbers as arrived, each
        movement's last partner group with its mark (creating the movements the run
        created; a row that holds them already is left as it is), the groups' versions and
        the attendances; one statement a table."""

    # -- inbox ------------------------------------------------------------------------------

    async def claim(
        self, source: str, event_id: UUID, event_type: str, record: Inbound, **extra: Any
    ) -> bool:
        """Record the event in the inbox and its pair number (``extra``: ``pairseq``,
        ``epoch``, ``trace_id``, ``event_time``, ``movement_id``) as arrived; False if it
        was received before (or earlier in this batch)."""

    def settle(self, source: str, event_id: UUID, outcome: str) -> None:
        """Note what became of a claimed event; written at ``flush``."""

    # -- movements ----------------------------------------------------------------------------

    async def movement(self, movement_id: UUID) -> StoredMovement | None:
        """This node's copy of a movement, locked until the transaction ends."""

    async def put_partner_origin(
        self, group: OriginGroup, *, repair: bool = False, set_by: Mark | None = None
    ) -> None:
        """At a host: the origin's group, creating the movement on first sight, only over
        an older version (``repair``: whenever it differs); ``set_by``: the mark it keeps."""

    async def put_partner_host(
        self, group: HostGroup, *, repair: bool = False, set_by: Mark | None = None
    ) -> None:
        """At an origin: the host's group of a known movement, only over an older version
        (``repair``: whenever it differs)."""

    async def add_participation(self, p: ParticipationRecorded) -> bool:
        """Record an attendance once; False if it was there already."""

    async def participations(self, movement_id: UUID) -> list[dict[str, Any]]:
        """A movement's participations as rows of ``participations``, by time attended."""

    # -- what this node owns, for repairs ------------------------------------------------------

    async def entries(
        self, partner: str, bucket_count: int, only: Iterable[int] | None = None
    ) -> list[DigestEntry]:
        """Every movement shared with ``partner`` (in the buckets ``only``): its versions
        and the content hashes of both groups and of its participations."""

    async def copy_of(self, movement_id: UUID) -> StoredMovement | None:
        """This node's whole copy of a movement, unlocked (to send back to an owner)."""

    async def restore_own(self, group: OriginGroup | HostGroup, *, member_id: UUID) -> bool:
        """Take back this node's own group from a partner's copy, only where this node has
        none; whether it did."""

    # -- publishing -------------------------------------------------------------------------

    async def publish_local(self, event: Envelope[Any]) -> None:
        """Announce ``event`` on the node's local topic (through the outbox)."""

    async def publish_to(self, partner: str, event: Envelope[Any]) -> None:
        """Send ``event`` to ``partner`` on the pair topic (through the outbox; the relay
        numbers it)."""

    async def replay(
        self, partner: str, epoch: int, runs: list[tuple[int, int]]
    ) -> tuple[int, int]:
        """Put the published pair events of ``runs`` (of link ``epoch``) back in the
        relay's queue; how many went back, and how many can be sent at all."""

    async def replayed_lately(self, partner: str, since: datetime) -> list[tuple[int, int]]:
        """The runs replayed to ``partner`` since ``since`` (older notes are dropped)."""

    async def note_replayed(self, partner: str, runs: list[tuple[int, int]], now: datetime) -> None:
        """Note the runs just replayed to ``partner``."""

    async def last_sent(self, partner: str) -> int:
        """The last number sent to ``partner`` in this node's link epoch."""

    async def sent(self, partner: str) -> tuple[int | None, int]:
        """The link epoch this node numbers its events to ``partner`` in (None: none sent
        yet) and the last number sent in it."""

    async def backlog(self, partner: str | None = None) -> int:
        """Outbox rows still to send (to ``partner``, or to anyone)."""

    # -- links ------------------------------------------------------------------------------

    async def heard_heartbeat(self, partner: str, last_sequence: int, now: datetime) -> None:
        """The partner says it sent up to ``last_sequence``."""

    async def link_epoch(self, partner: str) -> int:
        """The partner's link epoch this link follows (0: before epochs, or none yet); read
        once a store."""

    async def enter_epoch(self, partner: str, epoch: int) -> None:
        """Follow the partner's newer link ``epoch``: its numbering starts afresh."""

    async def older_highest(self, partner: str) -> int:
        """The highest number seen from ``partner`` in the epochs before the link's."""

    async def highest_seen(self, partner: str) -> int:
        """The highest pair number of the link's epoch that arrived from ``partner``; read
        once a store (until ``enter_epoch``)."""

    async def count_received(self, partner: str, epoch: int, seq: int) -> None:
        """Count a number as arrived though its event was not applied."""

    async def settle_up_to(self, partner: str, sequence: int) -> None:
        """Every number up to ``sequence`` counts as arrived (a digest matched)."""

    async def tracker(self, partner: str, now: datetime) -> SequenceTracker:
        """The link's state, with the numbers received since last time folded in (and
        saved)."""

    async def add_visitor_claim(self, claim: VisitorClaimAsked) -> bool:
        """Keep a claim a partner asked of this node, once (ADR 21); whether it was new."""
        ...

    async def put_visitor_answer(self, answer: VisitorClaimAnswered) -> bool:
        """Keep a partner's answer to this node's claim unless a later one is kept (a
        claim's answer may go from ambiguous to match); whether it was kept."""
        ...

    async def save_partner_view(self, partner: str, view: dict[str, Any]) -> None:
        """Keep how the partner reported the link."""

    async def partners(self) -> list[str]:
        """Every partner this node keeps a link with (a row in ``links``)."""

    async def add_link(self, partner: str) -> bool:
        """Make ``partner``'s row in ``links``; whether there was none."""

    async def links_astir(self) -> dict[str, bool]:
        """Every partner with a row in ``links``, and whether its link has something to fold
        in or repair: numbers received since ``tracker`` last looked, numbers missing, a
        gap's replay requests counted."""
        ...

    async def last_sent_at(self, partner: str) -> datetime | None:
        """When this node last committed something for ``partner``."""

    async def note_heartbeat_sent(self, partner: str, now: datetime) -> None: ...

    async def replay_asked(self, partner: str) -> ReplayAsked:
        """The link epoch this node follows and its last replay request (``tracker`` has
        made the link's row)."""

    async def note_replay_attempts(self, partner: str, attempts: int) -> None: ...

    async def note_replay_asked(
        self, partner: str, now: datetime, up_to: int, attempts: int
    ) -> None: ...

    async def last_digest_sent_at(self, partner: str) -> datetime | None: ...

    async def partner_view(self, partner: str) -> dict[str, Any] | None:
        """What the partner last reported of the link (``LinkStatusReported``)."""

    async def note_digest_sent(self, partner: str, now: datetime) -> None:
        """This node sent ``partner`` a digest at ``now``."""

    # -- dead letters -----------------------------------------------------------------------

    async def dead_letter(
        self, record: Inbound, reason: str, errors: list[dict[str, Any]], now: datetime
    ) -> bool:
        """Keep what could not be accepted (once per topic, partition and offset), and send
        it to the dead-letter topic; False if it was kept before."""

    async def dead_letter_record(self, dead_letter_id: int) -> Inbound | None:
        """The record a dead letter keeps (None: no such dead letter)."""

    async def reopen_dead_letter(self, dead_letter_id: int, record: Inbound) -> None:
        """Before a retry: the inbox forgets it refused ``record`` (so that it is not taken
        for a repeat), and the dead letter's retry is pending. The dead letter itself
        stays: a second refusal must not be lost."""

    async def note_retry(self, dead_letter_id: int, outcome: str) -> None:
        """What the retry of a dead letter came to."""
