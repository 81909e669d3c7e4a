"""sync's store in memory, and units of work over it: the ``Applier`` runs here without
PostgreSQL.

Each method keeps what its statement in ``adapters/store.py`` does: the version gates of
the partner's groups (``WHERE origin_version < ...``; a repair copy ``IS DISTINCT FROM``),
the inbox's and the dead letters' keys (``ON CONFLICT DO NOTHING``), a deferred store's
writes held until ``flush``, and the store's reads kept for a batch (the claims and
movements read at once, the link's epoch and highest number read once a store), which a
savepoint's rollback does not undo, as on PostgreSQL. A transaction or a savepoint that
raises puts the tables back as they were (a snapshot), except the dead letters' id
counter, which, like a PostgreSQL sequence, never goes back.

What PostgreSQL computes, the fake computes in Python: a group's content hash is SHA-256
of its JSON in jsonb's text form (``jsonb_text``: keys shorter first, then bytewise;
``", "`` and ``": "`` between), the participations' of their ids in uuid order; the
database's ``now()`` is the clock the tables are given.

The relay is not here; ``NodeTables.publish`` plays it (numbers a partner's waiting rows
and marks them published) for the tests of replays.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from yixian.contracts import (
    DigestEntry,
    Envelope,
    HostGroup,
    OriginGroup,
    ParticipationRecorded,
    Topic,
    TopicNames,
    VisitorClaimAnswered,
    VisitorClaimAsked,
    recorded_status,
    require_route,
)
from yixian.sync.adapters.store import DEAD_LETTER_TYPE, EXCERPT_BYTES, dead_letter_document
from yixian.sync.domain import Replica, SequenceTracker, StoredMovement, bucket_of
from yixian.sync.domain.apply import Mark
from yixian.sync.service_layer.repositories import Claim, Inbound, ReplayAsked, Replayed


class DatabaseLost(ConnectionError):
    """What a test raises to play the database going away (``FakeTransactions.transient``)."""


class ConstraintBroken(Exception):
    """A write PostgreSQL would refuse (a unique key, a foreign key): not transient."""


# -- rows ---------------------------------------------------------------------------------------


@dataclass
class MovementRow:
    """A row of ``movements``; the groups as their stored JSON."""

    movement_id: UUID
    origin: str
    host: str
    member_id: UUID
    origin_version: int = 0
    origin_status: str | None = None
    origin_group: dict[str, Any] | None = None
    origin_org_id: UUID | None = None
    host_version: int = 0
    host_status: str | None = None
    host_group: dict[str, Any] | None = None
    host_org_id: UUID | None = None
    partner_epoch: int | None = None
    partner_pairseq: int | None = None

    def stored(self) -> StoredMovement:
        """As ``adapters.store._stored`` reads it."""
        origin = OriginGroup.model_validate(self.origin_group) if self.origin_group else None
        host = HostGroup.model_validate(self.host_group) if self.host_group else None
        seq = self.partner_pairseq
        set_by = None if seq is None else (self.partner_epoch or 0, seq)
        return StoredMovement(self.origin, self.host, Replica(origin, host), set_by)


@dataclass
class InboxRow:
    source: str
    event_id: UUID
    event_type: str
    topic: str
    partition: int
    offset: int
    pairseq: int | None
    outcome: str
    trace_id: str | None = None
    event_time: datetime | None = None
    movement_id: UUID | None = None


@dataclass
class LinkRow:
    partner: str
    epoch: int = 0
    older_highest: int = 0
    contiguous: int = 0
    partner_sent: int = 0
    missing_since: datetime | None = None
    last_heartbeat_at: datetime | None = None
    last_event_at: datetime | None = None
    partner_view: dict[str, Any] | None = None
    last_digest_sent_at: datetime | None = None
    replay_requested_at: datetime | None = None
    replay_requested_upto: int = 0
    replay_attempts: int = 0
    last_heartbeat_sent_at: datetime | None = None


@dataclass
class OutboxRow:
    """A row of ``outbox``: ``event`` is None for a record that is not a contract event (a
    dead letter's copy, ``value``)."""

    topic: str
    destination: str | None
    event: Envelope[Any] | None
    event_id: UUID
    event_type: str
    value: bytes
    key: bytes | None = None
    pairseq: int | None = None
    pairepoch: int | None = None
    published: bool = False
    parked: bool = False
    discarded: bool = False
    created_at: datetime | None = None
    """Stamped with the tables' clock when the row is written."""


@dataclass
class DeadLetterRow:
    id: int
    record: Inbound
    reason: str
    errors: list[dict[str, Any]]
    received_at: datetime
    retried_at: datetime | None = None
    retry_outcome: str | None = None


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class NodeTables:
    """One node's tables as sync sees them, shared by the units of work of one test (as one
    database is). ``clock``: the database's ``now()``."""

    node: str
    clock: Callable[[], datetime] = _wall_clock
    movements: dict[UUID, MovementRow] = field(default_factory=dict)
    history: dict[tuple[UUID, str, int], dict[str, Any]] = field(default_factory=dict)
    participations: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    inbox: dict[tuple[str, UUID], InboxRow] = field(default_factory=dict)
    links: dict[str, LinkRow] = field(default_factory=dict)
    link_received: dict[tuple[str, int, int], datetime] = field(default_factory=dict)
    """(partner, epoch, seq): when it arrived."""
    replays_answered: list[tuple[str, int, int, datetime]] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    pair_sequences: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per partner, the relay's (epoch, last number)."""
    visitor_claims_received: dict[UUID, VisitorClaimAsked] = field(default_factory=dict)
    visitor_answers_received: dict[UUID, VisitorClaimAnswered] = field(default_factory=dict)
    dead_letters: dict[int, DeadLetterRow] = field(default_factory=dict)
    dead_letter_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    """A sequence: never rolled back."""

    _KEPT = ("node", "clock", "dead_letter_ids")

    def snapshot(self) -> dict[str, Any]:
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if f.name not in self._KEPT
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            setattr(self, name, value)

    # -- what tests read and set up ---------------------------------------------------------

    def announced(self, topics: TopicNames) -> list[Envelope[Any]]:
        """The events put on the node's local topic, in order."""
        local = topics.local(self.node)
        return [r.event for r in self.outbox if r.topic == local and r.event is not None]

    def sent_to(self, partner: str) -> list[Envelope[Any]]:
        """The events put on the pair topic to ``partner``, in order."""
        return [r.event for r in self.outbox if r.destination == partner and r.event is not None]

    def publish(self, partner: str, *, epoch: int = 0) -> list[OutboxRow]:
        """Play the relay: number the rows waiting for ``partner`` in link ``epoch`` and
        mark them published; those rows."""
        _, last = self.pair_sequences.get(partner, (epoch, 0))
        done = []
        for row in self.outbox:
            if row.destination == partner and not row.published and not row.parked:
                if row.pairseq is None:
                    last += 1
                    row.pairseq, row.pairepoch = last, epoch
                row.published = True
                done.append(row)
        self.pair_sequences[partner] = (epoch, last)
        return done

    def group(self, movement_id: UUID) -> StoredMovement | None:
        row = self.movements.get(movement_id)
        return row.stored() if row else None


# -- what PostgreSQL computes -------------------------------------------------------------------


def jsonb_text(value: Any) -> str:
    """``value::jsonb::text``: an object's keys shorter first, then bytewise; ``", "`` and
    ``": "`` between; strings as JSON with non-ASCII kept."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: "
                               f"{jsonb_text(value[k])}" for k in keys) + "}"  # fmt: skip
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def content_hash(text: str | None) -> str | None:
    """``encode(sha256(convert_to(text, 'UTF8')), 'hex')``; NULL stays NULL."""
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _when(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=UTC)


# -- the store ----------------------------------------------------------------------------------


class FakeStore:
    """``adapters.store.SyncStore`` over ``NodeTables``."""

    def __init__(self, tables: NodeTables, topics: TopicNames, *, deferred: bool = False) -> None:
        self.tables = tables
        self.node = tables.node
        self.topics = topics
        self.deferred = deferred
        self._queued: list[OutboxRow] = []
        self._settled: list[tuple[str, UUID, str]] = []
        self._history: list[tuple[UUID, str, int, dict[str, Any]]] = []
        self._claimed: set[tuple[str, UUID]] | None = None
        self._movements: dict[UUID, StoredMovement | None] = {}
        self._replicas: list[Callable[[], None]] = []
        self._highest: dict[str, int] = {}
        self._epochs: dict[str, int] = {}

    async def flush(self) -> None:
        await self.flush_replicas()
        self._flush_outbox()
        for args in self._history:
            self._add_history(*args)
        self._history.clear()
        self._settle_all()

    async def flush_replicas(self) -> None:
        for write in self._replicas:
            write()
        self._replicas.clear()

    # -- a whole batch at once ---------------------------------------------------------------

    async def claim_all(self, claims: list[Claim]) -> None:
        claimed = set()
        for c in claims:
            if self._insert_inbox(c):
                claimed.add((c.source, c.event_id))
                if c.pairseq is not None:
                    self._arrived(c.source, c.epoch, c.pairseq)
        self._claimed = claimed

    async def lock_movements(self, movement_ids: set[UUID]) -> None:
        self._movements = {m: self.tables.group(m) for m in movement_ids}

    # -- a run of events replayed at once -------------------------------------------------------

    async def known_events(self, source: str, event_ids: list[UUID]) -> set[UUID]:
        return {i for i in event_ids if (source, i) in self.tables.inbox}

    async def known_participations(self, participation_ids: list[UUID]) -> set[UUID]:
        return {i for i in participation_ids if i in self.tables.participations}

    async def partner_copies(
        self, partner: str, movement_ids: set[UUID]
    ) -> dict[UUID, StoredMovement]:
        copies = {}
        for movement_id in movement_ids:
            row = self.tables.movements.get(movement_id)
            if row is None:
                continue
            stored = row.stored()
            copies[movement_id] = replace(
                stored,
                replica=Replica(
                    stored.replica.origin if row.origin == partner else None,
                    stored.replica.host if row.host == partner else None,
                ),
            )
        return copies

    async def partner_groups_held(self, partner: str) -> dict[UUID, tuple[str, str]]:
        held = {}
        for row in self.tables.movements.values():
            marked = row.partner_epoch is not None or row.partner_pairseq is not None
            if (row.origin, row.host) == (partner, self.node) and (
                row.origin_group is not None or row.origin_version or row.origin_status or marked
            ):
                held[row.movement_id] = (row.origin, row.host)
            if (row.origin, row.host) == (self.node, partner) and (
                row.host_group is not None or row.host_version or row.host_status or marked
            ):
                held[row.movement_id] = (row.origin, row.host)
        return held

    async def clear_partner_groups(self, partner: str, movement_ids: set[UUID]) -> None:
        for movement_id in movement_ids:
            row = self.tables.movements.get(movement_id)
            if row is None:
                continue
            if (row.origin, row.host) == (partner, self.node):
                row.origin_version, row.origin_status, row.origin_group = 0, None, None
            elif (row.origin, row.host) == (self.node, partner):
                row.host_version, row.host_status, row.host_group = 0, None, None
            else:
                continue
            row.partner_epoch = row.partner_pairseq = None

    async def forget_events(self, source: str, event_ids: list[UUID]) -> None:
        for event_id in event_ids:
            self.tables.inbox.pop((source, event_id), None)

    async def forget_events_but(self, source: str, event_ids: set[UUID]) -> None:
        for key in [k for k in self.tables.inbox if k[0] == source and k[1] not in event_ids]:
            del self.tables.inbox[key]

    async def write_replayed(self, replayed: Replayed) -> None:
        for c, outcome in replayed.claims:
            self.tables.inbox[(c.source, c.event_id)] = InboxRow(
                c.source, c.event_id, c.event_type, c.topic, c.partition, c.offset, c.pairseq,
                outcome, c.trace_id, c.event_time, c.movement_id,
            )  # fmt: skip
            if c.pairseq is not None:
                self._arrived(c.source, c.epoch, c.pairseq)
        for group, mark in replayed.origins.values():
            epoch, seq = mark or (None, None)
            row = self.tables.movements.get(group.movement_id)
            if row is None:
                row = self.tables.movements[group.movement_id] = MovementRow(
                    group.movement_id, group.origin, group.destination.jurisdiction,
                    replayed.created[group.movement_id.int],
                )  # fmt: skip
            row.origin_version, row.origin_status = group.version, recorded_status(group)
            row.origin_group = group.model_dump(mode="json")
            row.partner_epoch, row.partner_pairseq = epoch, seq
        for group, mark in replayed.hosts.values():
            epoch, seq = mark or (None, None)
            row = self.tables.movements[group.movement_id]
            row.host_version, row.host_status = group.version, group.status.value
            row.host_group = group.model_dump(mode="json")
            row.partner_epoch, row.partner_pairseq = epoch, seq
        for g in replayed.versions:
            name = "origin" if isinstance(g, OriginGroup) else "host"
            self._add_history(g.movement_id, name, g.version, g.model_dump(mode="json"))
        for p in replayed.participations:
            await self.add_participation(p)

    # -- inbox ------------------------------------------------------------------------------

    def _insert_inbox(self, c: Claim) -> bool:
        key = (c.source, c.event_id)
        if key in self.tables.inbox:
            return False
        self.tables.inbox[key] = InboxRow(
            c.source, c.event_id, c.event_type, c.topic, c.partition, c.offset, c.pairseq,
            "received", c.trace_id, c.event_time, c.movement_id,
        )  # fmt: skip
        return True

    def _arrived(self, partner: str, epoch: int, seq: int) -> None:
        self.tables.link_received.setdefault((partner, epoch, seq), self.tables.clock())

    async def claim(
        self, source: str, event_id: UUID, event_type: str, record: Inbound, **extra: Any
    ) -> bool:
        if self._claimed is not None and extra.get("pairseq") is not None:
            try:
                self._claimed.remove((source, event_id))
            except KeyError:
                return False
            return True
        claim = Claim(
            source, event_id, event_type, record.topic, record.partition, record.offset,
            extra.get("pairseq"), extra.get("trace_id"), extra.get("event_time"),
            extra.get("movement_id"), extra.get("epoch", 0),
        )  # fmt: skip
        if not self._insert_inbox(claim):
            return False
        if claim.pairseq is not None:
            self._arrived(source, claim.epoch, claim.pairseq)
        return True

    def settle(self, source: str, event_id: UUID, outcome: str) -> None:
        self._settled.append((source, event_id, outcome))

    def _settle_all(self) -> None:
        for source, event_id, outcome in self._settled:
            row = self.tables.inbox.get((source, event_id))
            if row is not None:
                row.outcome = outcome
        self._settled.clear()

    # -- movements ----------------------------------------------------------------------------

    async def movement(self, movement_id: UUID) -> StoredMovement | None:
        if movement_id in self._movements:
            return self._movements[movement_id]
        return self.tables.group(movement_id)

    async def put_partner_origin(
        self, group: OriginGroup, *, repair: bool = False, set_by: Mark | None = None
    ) -> None:
        snapshot = group.model_dump(mode="json")
        known = self._movements.get(group.movement_id)
        host_group = known.replica.host if known else None
        epoch, seq = set_by or (None, None)

        def write() -> None:
            row = self.tables.movements.get(group.movement_id)
            if row is None:
                self.tables.movements[group.movement_id] = MovementRow(
                    group.movement_id, group.origin, group.destination.jurisdiction,
                    group.member.member_id, group.version, recorded_status(group), snapshot,
                    partner_epoch=epoch, partner_pairseq=seq,
                )  # fmt: skip
                return
            gate = row.origin_group != snapshot if repair else row.origin_version < group.version
            if gate:
                row.origin_version, row.origin_status = group.version, recorded_status(group)
                row.origin_group = snapshot
                row.partner_epoch, row.partner_pairseq = epoch, seq

        self._write_replica(
            group.movement_id,
            StoredMovement(
                group.origin, group.destination.jurisdiction, Replica(group, host_group), set_by
            ),
            write,
        )
        await self._keep_version(group.movement_id, "origin", group.version, snapshot)

    async def put_partner_host(
        self, group: HostGroup, *, repair: bool = False, set_by: Mark | None = None
    ) -> None:
        snapshot = group.model_dump(mode="json")
        known = self._movements.get(group.movement_id)
        epoch, seq = set_by or (None, None)

        def write() -> None:
            row = self.tables.movements.get(group.movement_id)
            if row is None:
                return  # an UPDATE of no row
            gate = row.host_group != snapshot if repair else row.host_version < group.version
            if gate:
                row.host_version, row.host_status = group.version, group.status.value
                row.host_group = snapshot
                row.partner_epoch, row.partner_pairseq = epoch, seq

        self._write_replica(
            group.movement_id,
            None
            if known is None
            else replace(known, replica=Replica(known.replica.origin, group), set_by=set_by),
            write,
        )
        await self._keep_version(group.movement_id, "host", group.version, snapshot)

    def _write_replica(
        self, movement_id: UUID, now: StoredMovement | None, write: Callable[[], None]
    ) -> None:
        if movement_id not in self._movements:
            write()
            return
        self._movements[movement_id] = now
        self._replicas.append(write)

    def _add_history(
        self, movement_id: UUID, group: str, version: int, snapshot: dict[str, Any]
    ) -> None:
        self.tables.history.setdefault((movement_id, group, version), snapshot)

    async def _keep_version(
        self, movement_id: UUID, group: str, version: int, snapshot: dict[str, Any]
    ) -> None:
        if self.deferred:
            self._history.append((movement_id, group, version, snapshot))
        else:
            self._add_history(movement_id, group, version, snapshot)

    async def add_participation(self, p: ParticipationRecorded) -> bool:
        await self.flush_replicas()
        if p.movement_id not in self.tables.movements:
            raise ConstraintBroken(f"participations_movement_id_fkey: {p.movement_id}")
        if p.participation_id in self.tables.participations:
            return False
        self.tables.participations[p.participation_id] = {
            "participation_id": p.participation_id,
            "movement_id": p.movement_id,
            "host_org_id": p.host_org.org_id,
            "host_org_name": p.host_org.name,
            "activity_id": p.activity_id,
            "kind": p.kind.value,
            "title": p.title,
            "attended_at": p.attended_at,
            "recorded_at": p.recorded_at,
            "recorded_by": p.recorded_by,
        }
        return True

    async def participations(self, movement_id: UUID) -> list[dict[str, Any]]:
        rows = [r for r in self.tables.participations.values() if r["movement_id"] == movement_id]
        return [dict(r) for r in sorted(rows, key=lambda r: r["attended_at"])]

    # -- what this node owns, for repairs ------------------------------------------------------

    async def entries(
        self, partner: str, bucket_count: int, only: Iterable[int] | None = None
    ) -> list[DigestEntry]:
        await self.flush_replicas()
        wanted = set(only) if only is not None else None
        out = []
        for row in self.tables.movements.values():
            if {row.origin, row.host} != {self.node, partner}:
                continue
            if wanted is not None and bucket_of(row.movement_id, bucket_count) not in wanted:
                continue
            ids = sorted(
                p["participation_id"]
                for p in self.tables.participations.values()
                if p["movement_id"] == row.movement_id
            )
            out.append(
                DigestEntry(
                    movement_id=row.movement_id,
                    origin=row.origin,
                    origin_version=row.origin_version,
                    host_version=row.host_version,
                    origin_hash=content_hash(
                        None if row.origin_group is None else jsonb_text(row.origin_group)
                    ),
                    host_hash=content_hash(
                        None if row.host_group is None else jsonb_text(row.host_group)
                    ),
                    participations_hash=content_hash(",".join(str(i) for i in ids)),
                )
            )
        return out

    async def copy_of(self, movement_id: UUID) -> StoredMovement | None:
        return self.tables.group(movement_id)

    async def restore_own(self, group: OriginGroup | HostGroup, *, member_id: UUID) -> bool:
        await self.flush_replicas()
        snapshot = group.model_dump(mode="json")
        row = self.tables.movements.get(group.movement_id)
        if isinstance(group, OriginGroup):
            name = "origin"
            if row is None:
                self.tables.movements[group.movement_id] = MovementRow(
                    group.movement_id, group.origin, group.destination.jurisdiction, member_id,
                    group.version, group.status.value, snapshot, group.origin_org.org_id,
                )  # fmt: skip
                done = True
            elif row.origin_group is None:
                row.origin_version, row.origin_status = group.version, recorded_status(group)
                row.origin_group, row.origin_org_id = snapshot, group.origin_org.org_id
                done = True
            else:
                done = False
        else:
            name = "host"
            org = group.branch or group.host_org
            done = row is not None and row.host_group is None
            if row is not None and done:
                row.host_version, row.host_status = group.version, group.status.value
                row.host_group = snapshot
                row.host_org_id = row.host_org_id or (org.org_id if org else None)
        self._movements.pop(group.movement_id, None)
        if done:
            self._add_history(group.movement_id, name, group.version, snapshot)
        return done

    # -- publishing -------------------------------------------------------------------------

    def _add_rows(self, rows: list[OutboxRow]) -> None:
        for row in rows:
            if any(r.event_id == row.event_id and r.topic == row.topic for r in self.tables.outbox):
                raise ConstraintBroken(f"outbox_event_id_topic_key: {row.event_id}")
            row.created_at = self.tables.clock()
            self.tables.outbox.append(row)

    def _flush_outbox(self) -> None:
        self._add_rows(self._queued)
        self._queued.clear()

    async def _add(self, event: Envelope[Any], topic: str, destination: str | None) -> None:
        row = OutboxRow(topic, destination, event, event.id, event.type, event.encode())
        if self.deferred:
            self._queued.append(row)
        else:
            self._add_rows([row])

    async def publish_local(self, event: Envelope[Any]) -> None:
        require_route(event.type, Topic.LOCAL)  # as the real outbox does
        await self._add(event, self.topics.local(self.node), None)

    async def publish_to(self, partner: str, event: Envelope[Any]) -> None:
        require_route(event.type, Topic.PAIR)
        await self._add(event, self.topics.pair(self.node, partner), partner)

    async def replay(
        self, partner: str, epoch: int, runs: list[tuple[int, int]]
    ) -> tuple[int, int]:
        self._flush_outbox()
        wanted = [
            row
            for first, last in runs
            for row in self.tables.outbox
            if row.destination == partner
            and row.pairseq is not None
            and first <= row.pairseq <= last
            and (row.pairepoch or 0) == epoch
            and (row.published or not row.parked)
        ]
        requeued = {id(r): r for r in wanted if r.published}
        for row in requeued.values():
            row.published = False
        return len(requeued), len(wanted)

    async def replayed_lately(self, partner: str, since: datetime) -> list[tuple[int, int]]:
        self.tables.replays_answered = [
            r for r in self.tables.replays_answered if not (r[0] == partner and r[3] < since)
        ]
        return [(first, last) for p, first, last, _ in self.tables.replays_answered if p == partner]

    async def note_replayed(self, partner: str, runs: list[tuple[int, int]], now: datetime) -> None:
        self.tables.replays_answered.extend((partner, first, last, now) for first, last in runs)

    async def last_sent(self, partner: str) -> int:
        return (await self.sent(partner))[1]

    async def sent(self, partner: str) -> tuple[int | None, int]:
        if partner not in self.tables.pair_sequences:
            return None, 0
        epoch, last = self.tables.pair_sequences[partner]
        return epoch, last

    async def backlog(self, partner: str | None = None) -> int:
        self._flush_outbox()
        return sum(
            1
            for r in self.tables.outbox
            if not r.published and not r.discarded and partner in (None, r.destination)
        )

    # -- links ------------------------------------------------------------------------------

    def _link(self, partner: str) -> LinkRow:
        """``INSERT INTO links (partner) ... ON CONFLICT DO NOTHING``, and the row."""
        return self.tables.links.setdefault(partner, LinkRow(partner))

    async def heard_heartbeat(self, partner: str, last_sequence: int, now: datetime) -> None:
        link = self.tables.links.get(partner)
        if link is None:
            self.tables.links[partner] = LinkRow(
                partner, partner_sent=last_sequence, last_heartbeat_at=now
            )
            return
        link.partner_sent = max(link.partner_sent, last_sequence)
        link.last_heartbeat_at = now

    async def link_epoch(self, partner: str) -> int:
        if partner not in self._epochs:
            link = self.tables.links.get(partner)
            self._epochs[partner] = link.epoch if link else 0
        return self._epochs[partner]

    async def enter_epoch(self, partner: str, epoch: int) -> None:
        highest = await self.highest_seen(partner)
        link = self.tables.links.get(partner)
        if link is None:
            self.tables.links[partner] = LinkRow(partner, epoch=epoch)
        elif link.epoch < epoch:
            link.epoch, link.older_highest = epoch, max(link.older_highest, highest)
            link.contiguous = link.partner_sent = 0
            link.missing_since = link.replay_requested_at = None
            link.replay_requested_upto = link.replay_attempts = 0
        self.tables.link_received = {
            k: v for k, v in self.tables.link_received.items() if not (k[0] == partner and k[1] < epoch)
        }  # fmt: skip
        self._epochs[partner] = epoch
        self._highest.pop(partner, None)

    async def older_highest(self, partner: str) -> int:
        link = self.tables.links.get(partner)
        return link.older_highest if link else 0

    async def highest_seen(self, partner: str) -> int:
        if partner not in self._highest:
            epoch = await self.link_epoch(partner)
            link = self.tables.links.get(partner)
            seen = [s for (p, e, s) in self.tables.link_received if p == partner and e == epoch]
            self._highest[partner] = max([link.contiguous if link else 0, *seen, 0])
        return self._highest[partner]

    async def count_received(self, partner: str, epoch: int, seq: int) -> None:
        self._arrived(partner, epoch, seq)

    async def settle_up_to(self, partner: str, sequence: int) -> None:
        link = self._link(partner)
        link.contiguous = max(link.contiguous, sequence)

    async def tracker(self, partner: str, now: datetime) -> SequenceTracker:
        link = self._link(partner)
        tracker = SequenceTracker(
            contiguous=link.contiguous,
            partner_sent=link.partner_sent,
            missing_since=link.missing_since,
        )
        received = self.tables.link_received
        for key in [k for k in received if k[0] == partner and k[1] < link.epoch]:
            del received[key]
        arrivals = sorted(
            (seq, at) for (p, e, seq), at in received.items() if p == partner and e == link.epoch
        )
        for seq, _ in arrivals:
            tracker.receive(seq, now)
        tracker.refresh(now)
        latest = max([link.last_event_at, *(at for _, at in arrivals)], key=_when)
        tracker.last_event_at = latest
        tracker.last_heartbeat_at = link.last_heartbeat_at
        link.contiguous, link.missing_since = tracker.contiguous, tracker.missing_since
        link.last_event_at = latest
        for seq, _ in arrivals:
            if seq <= tracker.contiguous:
                del received[(partner, link.epoch, seq)]
        return tracker

    async def add_visitor_claim(self, claim: VisitorClaimAsked) -> bool:
        if claim.claim_id in self.tables.visitor_claims_received:
            return False
        self.tables.visitor_claims_received[claim.claim_id] = claim
        return True

    async def put_visitor_answer(self, answer: VisitorClaimAnswered) -> bool:
        kept = self.tables.visitor_answers_received.get(answer.claim_id)
        if kept is not None and kept.answered_at >= answer.answered_at:
            return False
        self.tables.visitor_answers_received[answer.claim_id] = answer
        return True

    async def save_partner_view(self, partner: str, view: dict[str, Any]) -> None:
        link = self.tables.links.get(partner)
        if link is not None:  # an UPDATE: no row, nothing kept
            link.partner_view = view

    async def note_digest_sent(self, partner: str, now: datetime) -> None:
        self._link(partner).last_digest_sent_at = now

    async def partners(self) -> list[str]:
        return sorted(self.tables.links)

    async def links_astir(self) -> dict[str, bool]:
        received = {p for (p, _, _) in self.tables.link_received}
        return {
            partner: link.missing_since is not None
            or link.partner_sent > link.contiguous
            or link.replay_attempts > 0
            or partner in received
            for partner, link in self.tables.links.items()
        }

    async def add_link(self, partner: str) -> bool:
        made = partner not in self.tables.links
        self._link(partner)
        return made

    async def last_sent_at(self, partner: str) -> datetime | None:
        self._flush_outbox()
        return max(
            (r.created_at for r in self.tables.outbox if r.destination == partner and r.created_at),
            default=None,
        )

    async def note_heartbeat_sent(self, partner: str, now: datetime) -> None:
        self._link(partner).last_heartbeat_sent_at = now

    async def replay_asked(self, partner: str) -> ReplayAsked:
        link = self.tables.links.get(partner)
        if link is None:
            return ReplayAsked(0, None, 0)
        return ReplayAsked(link.epoch, link.replay_requested_at, link.replay_attempts)

    async def note_replay_attempts(self, partner: str, attempts: int) -> None:
        link = self.tables.links.get(partner)
        if link is not None:  # an UPDATE: no row, nothing kept
            link.replay_attempts = attempts

    async def note_replay_asked(
        self, partner: str, now: datetime, up_to: int, attempts: int
    ) -> None:
        link = self.tables.links.get(partner)
        if link is not None:
            link.replay_requested_at, link.replay_requested_upto = now, up_to
            link.replay_attempts = attempts

    async def last_digest_sent_at(self, partner: str) -> datetime | None:
        link = self.tables.links.get(partner)
        return link.last_digest_sent_at if link else None

    async def partner_view(self, partner: str) -> dict[str, Any] | None:
        link = self.tables.links.get(partner)
        return link.partner_view if link else None

    # -- dead letters -----------------------------------------------------------------------

    async def dead_letter(
        self, record: Inbound, reason: str, errors: list[dict[str, Any]], now: datetime
    ) -> bool:
        where = (record.topic, record.partition, record.offset)
        if any(
            (d.record.topic, d.record.partition, d.record.offset) == where
            for d in self.tables.dead_letters.values()
        ):
            return False
        dead_letter_id = next(self.tables.dead_letter_ids)
        self.tables.dead_letters[dead_letter_id] = DeadLetterRow(
            dead_letter_id, record, reason, errors, self.tables.clock()
        )
        key = record.key or b""
        self._add_rows([
            OutboxRow(
                topic=self.topics.dead_letter(self.node, "sync"),
                destination=None,
                event=None,
                event_id=uuid4(),
                event_type=DEAD_LETTER_TYPE,
                value=dead_letter_document(record, reason, errors, now),
                key=key if len(key) <= EXCERPT_BYTES else hashlib.sha256(key).hexdigest().encode(),
            )
        ])  # fmt: skip
        return True

    async def dead_letter_record(self, dead_letter_id: int) -> Inbound | None:
        row = self.tables.dead_letters.get(dead_letter_id)
        return row.record if row else None

    async def reopen_dead_letter(self, dead_letter_id: int, record: Inbound) -> None:
        self.tables.inbox = {
            k: r
            for k, r in self.tables.inbox.items()
            if (r.topic, r.partition, r.offset, r.outcome)
            != (record.topic, record.partition, record.offset, "dead_letter")
        }
        row = self.tables.dead_letters.get(dead_letter_id)
        if row is not None:
            row.retried_at, row.retry_outcome = self.tables.clock(), "pending"

    async def note_retry(self, dead_letter_id: int, outcome: str) -> None:
        row = self.tables.dead_letters.get(dead_letter_id)
        if row is not None:
            row.retry_outcome = outcome


# -- units of work ------------------------------------------------------------------------------


class FakeUnitOfWork:
    def __init__(self, tables: NodeTables, store: FakeStore) -> None:
        self.tables = tables
        self.store = store
        self.savepoints_rolled_back = 0

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        before = self.tables.snapshot()
        try:
            yield
        except BaseException:
            self.tables.restore(before)
            self.savepoints_rolled_back += 1
            raise


class FakeTransactions:
    """Opens units of work over ``tables``; everything written is undone when one raises.
    ``DatabaseLost`` plays the database failing (transient)."""

    transient: tuple[type[BaseException], ...] = (DatabaseLost,)

    def __init__(self, tables: NodeTables, topics: TopicNames) -> None:
        self.tables = tables
        self.topics = topics
        self.committed = 0
        self.rolled_back = 0
        self.opened: list[FakeUnitOfWork] = []

    @asynccontextmanager
    async def __call__(self, *, deferred: bool = False) -> AsyncIterator[FakeUnitOfWork]:
        before = self.tables.snapshot()
        uow = FakeUnitOfWork(self.tables, FakeStore(self.tables, self.topics, deferred=deferred))
        self.opened.append(uow)
        try:
            yield uow
        except BaseException:
            self.tables.restore(before)
            self.rolled_back += 1
            raise
        self.committed += 1
