"""Replaying a pair topic set-wise: how a rebuild applies what a partner sent.

While a rebuild runs nothing else applies that partner's events (the rebuild refuses to
start while the node's sync service consumes), so a run of its group events and
attendances can be applied together: the run's movements (locked), its events already in
the inbox and its attendances already kept are read once; the events are applied in order
in memory, by the rules the applier uses (``domain.receive_*``); and what they came to —
each event's inbox row and outcome, its pair number as arrived, each movement's last
partner group, every version taken, the new attendances — is written once per table
(``Store.write_replayed``).

Anything else is the applier's, in the same order: link events and visitor claims, a
record that does not decode, is forged or unnumbered, of another link epoch than the link
follows or beyond reach, and an event the rules refuse (which the applier dead-letters).
What came before such a record is written first, and the run goes on after it with what it
left; so every record comes to what the applier makes of it, and the tables to what it
writes, row by row (``tests/e2e/test_sync_rebuild.py`` and ``tests/unit/test_replay.py``
hold them to it). Should the set-wise write fail for a reason of the data (a constraint),
the run is the applier's too, one by one where it has to.

A rebuild forgets what the partner sent before replaying it (``Forgotten``): the partner's
groups and its events' inbox rows are forgotten as late as they can be, as the replay
meets each again, so that a row the replay sets back to what it was is not written at all
— after live apply, nearly every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from yixian.contracts import (
    Envelope,
    HostGroupChanged,
    LinkHeartbeat,
    LinkStatusReported,
    OriginGroupChanged,
    ParticipationRecorded,
    VisitorClaimAnswered,
    VisitorClaimAsked,
    decode,
)
from yixian.contracts.envelope import decode_raw
from yixian.runtime import get_logger
from yixian.sync.domain import (
    Outcome,
    Refused,
    Replica,
    StoredMovement,
    receive_host,
    receive_origin,
    receive_participation,
)

from .applier import Applier
from .links import LinkPolicy
from .repositories import Claim, Inbound, Replayed, Store

log = get_logger(__name__)

Folded = OriginGroupChanged | HostGroupChanged | ParticipationRecorded
"""The events a run folds: everything else is the applier's."""
Decoded = tuple[Inbound, str, Envelope[Any]]
"""A record, the partner that sent it, and its event."""
APPLIED, STALE, DUPLICATE = Outcome.APPLIED.value, Outcome.STALE.value, Outcome.DUPLICATE.value

RESUME_SLICE = 1
"""Records a fold reads at first after the applier took one of its run (see ``_fold``)."""
READS_NO_MOVEMENT = (LinkHeartbeat, LinkStatusReported, VisitorClaimAsked, VisitorClaimAnswered)
"""Events whose handling by the applier reads no movement and no attendance (the link's
rows, the visitor claims' tables), as a record that does not decode, or is forged or
unnumbered, reads none (a dead letter, or an unknown type skipped): no group being cleared
need be cleared before the applier takes them. Any other record may read them."""


@dataclass
class Forgotten:
    """What a rebuild forgot of one partner before replaying its topic
    (``rebuild.clear_partner_data``): every event the partner sent — the events the replay
    claims since (``claimed``) are all the inbox holds of it; its rows from before are
    rewritten where claimed again, where they differ, and deleted at ``Replay.finish`` —
    and its groups of the movements in ``groups``, to be cleared as the replay goes."""

    groups: dict[int, tuple[str, str]] = field(default_factory=dict)
    """The movements whose partner group is still to be cleared (``UUID.int``), with their
    (origin, host) (``Store.partner_groups_held``)."""

    claimed: set[int] = field(default_factory=set)
    """The partner's events claimed in the inbox since (``UUID.int``): about 0.1 KB each."""

    @classmethod
    def held(cls, groups: dict[UUID, tuple[str, str]]) -> Forgotten:
        """What forgetting a partner leaves to the replay, given the groups held of it."""
        return cls({movement_id.int: sides for movement_id, sides in groups.items()})


@dataclass(frozen=True, slots=True)
class Other:
    """A record the applier takes."""

    record: Inbound
    reads_movements: bool
    """Whether the applier may read movements or attendances to take it."""


class Replay:
    """Applies records of pair topics in order, set-wise where it can (see the module).

    Only for replaying history (``Applier(rebuilding=True)``): like the applier then, it
    announces nothing on the local topic.

    ``forgotten``: per partner, what the rebuild forgot of it (``Forgotten``). The replay
    reads the groups to be cleared as cleared, and writes each one as the partner's events
    leave it — not at all where the row holds that already — so that most are never
    written twice; it clears the others (``Store.clear_partner_groups``) before the applier
    takes a record that may read them, and at ``finish``. The partner's claimed events it
    keeps in memory rather than asking the inbox for each run; an event's inbox row from
    before is rewritten only where it differs, deleted before the applier takes its record,
    and at ``finish`` if the topic no longer has the event.
    """

    def __init__(self, applier: Applier, *, forgotten: dict[str, Forgotten] | None = None) -> None:
        if not applier.rebuilding:
            raise ValueError("a replay applies history: give it an applier that is rebuilding")
        self.applier = applier
        self.config = applier.config
        self.forgotten = forgotten or {}
        self._topics: dict[str, str | None] = {}

    async def apply(self, records: Sequence[Inbound]) -> list[str]:
        """Apply ``records`` in order; what happened to each (as ``Applier.handle_batch``)."""
        return await self.apply_decoded(self.decode(records))

    def decode(self, records: Iterable[Inbound]) -> list[Decoded | Other]:
        """Each record decoded if it may be folded as far as it alone tells (its link epoch
        and its number's reach are the run's to check), or the applier's."""
        return [self._decode(record) for record in records]

    async def apply_decoded(self, items: Sequence[Decoded | Other]) -> list[str]:
        """Apply what ``decode`` made of records, in order; what happened to each."""
        outcomes: list[str] = []
        run: list[Decoded] = []
        others: list[Other] = []
        for item in items:
            if isinstance(item, Other):
                if run:
                    outcomes += await self._fold(run)
                    run = []
                others.append(item)
                continue
            if others:
                outcomes += await self._by_applier(others)
                others = []
            run.append(item)
        if run:
            outcomes += await self._fold(run)
        if others:
            outcomes += await self._by_applier(others)
        return outcomes

    async def finish(self) -> None:
        """Clear what the replay found no event to set again, and forget the events of the
        forgotten partners it did not find again."""
        await self._clear()
        async with self.applier.transactions() as uow:
            for partner, forgotten in self.forgotten.items():
                await uow.store.forget_events_but(partner, {UUID(int=i) for i in forgotten.claimed})

    def _partner(self, topic: str) -> str | None:
        """The partner a topic is from, if it is a pair topic to this node."""
        if topic not in self._topics:
            try:
                partner, destination = self.config.topics.parse_pair(topic)
            except ValueError:
                partner, destination = "", ""
            self._topics[topic] = partner if destination == self.config.node else None
        return self._topics[topic]

    def _decode(self, record: Inbound) -> Decoded | Other:
        partner = self._partner(record.topic)
        if partner is None:
            return Other(record, reads_movements=False)
        try:
            event = decode(record.value)
        except ValueError:  # malformed, or a type this release does not know
            return Other(record, reads_movements=False)
        if event.pairseq is None or event.source_node != partner:
            return Other(record, reads_movements=False)
        if not isinstance(event.data, Folded):
            return Other(record, reads_movements=not isinstance(event.data, READS_NO_MOVEMENT))
        return record, partner, event

    async def _by_applier(self, others: Sequence[Other]) -> list[str]:
        if any(other.reads_movements for other in others):
            await self._clear()
        records = [other.record for other in others]
        ids = self._forgotten_ids(records)
        if ids:  # their inbox rows from before the rebuild go first, as if never there
            async with self.applier.transactions() as uow:
                for partner, event_ids in ids.items():
                    await uow.store.forget_events(partner, event_ids)
        outcomes = await self.applier.handle_batch(records)
        if ids:
            async with self.applier.transactions() as uow:
                for partner, event_ids in ids.items():
                    known = await uow.store.known_events(partner, event_ids)
                    self.forgotten[partner].claimed |= {i.int for i in known}
        return outcomes

    def _forgotten_ids(self, records: list[Inbound]) -> dict[str, list[UUID]]:
        """The ids of the records' events, of forgotten partners, not claimed since."""
        ids: dict[str, list[UUID]] = {}
        for record in records:
            partner = self._partner(record.topic)
            if partner in self.forgotten:
                event_id = _event_id(record.value)
                if event_id is not None and event_id.int not in self.forgotten[partner].claimed:
                    ids.setdefault(partner, []).append(event_id)
        return ids

    async def _clear(self) -> None:
        """Clear every group still to be cleared: the tables are then as the applier
        would find them."""
        waiting = {p: f.groups for p, f in self.forgotten.items() if f.groups}
        if not waiting:
            return
        async with self.applier.transactions() as uow:
            for partner, groups in waiting.items():
                await uow.store.clear_partner_groups(partner, {UUID(int=i) for i in groups})
        for groups in waiting.values():
            groups.clear()

    async def _fold(self, run: list[Decoded]) -> list[str]:
        """Apply a run of foldable records: set-wise up to the first the applier must take,
        that one by the applier, and so on.

        After the applier took one, what it read for the rest of the run may have changed,
        so the rest is read again: in slices that start at ``RESUME_SLICE`` record and
        double while they fold whole. Records the applier must take often come in a row (a
        partition's records of an older link epoch, read after the link moved on); reading
        the whole rest again after each made such a run quadratic."""
        outcomes: list[str] = []
        transactions = self.applier.transactions
        start, size = 0, len(run)
        while start < len(run):
            part = run[start : start + size]
            try:
                async with transactions() as uow:
                    fold = await _Fold.read(uow.store, part, self.config.node, self.forgotten)
                    taken = fold.apply(part, self.config.policy, self.config.max_version_ahead)
                    await uow.store.write_replayed(fold.replayed)
            except transactions.transient:
                raise
            except Exception as exc:
                log.warning("a replayed run could not be written at once; applying it record"
                            " by record", error=repr(exc), records=len(part))  # fmt: skip
                outcomes += await self._by_applier([Other(r, True) for r, _, _ in part])
                start += len(part)
                continue
            for partner, forgotten in self.forgotten.items():
                forgotten.claimed |= fold.claimed.get(partner, set())
                for movement_id in fold.written(partner):
                    forgotten.groups.pop(movement_id, None)
            outcomes += fold.outcomes
            start += taken
            if taken == len(part):
                size *= 2
                continue
            end = _stragglers(run, start, fold.positions)
            outcomes += await self._by_applier([Other(r, True) for r, _, _ in run[start:end]])
            start, size = end, RESUME_SLICE
        return outcomes


def _stragglers(run: list[Decoded], start: int, positions: dict[str, tuple[int, int]]) -> int:
    """Where the records end that the applier takes at once from ``run[start]``, which a
    fold could not apply: that one, and if it is of an older link epoch than its partner's
    link follows (a straggler, ADR 16), the stragglers of that partner right after it. The
    applier takes them in one batch: a straggler moves no link epoch, so the batch reads
    what each would read alone."""
    _, partner, event = run[start]
    epoch = positions[partner][0]
    end = start + 1
    if event.epoch >= epoch:
        return end
    while end < len(run) and run[end][1] == partner and run[end][2].epoch < epoch:
        end += 1
    return end


class _Fold:
    """A run of events applied in memory, from what one transaction read."""

    def __init__(
        self,
        node: str,
        positions: dict[str, tuple[int, int]],
        known: dict[str, set[int]],
        attended: set[UUID],
        copies: dict[int, StoredMovement],
    ) -> None:
        self.node = node
        self.positions = positions
        """Per partner: the link epoch the link follows and the highest number seen in it."""
        self.known = known
        """Per partner: events claimed before the run (``UUID.int``)."""
        self.claimed: dict[str, set[int]] = {partner: set() for partner in known}
        """Per partner: events the run claimed."""
        self.attended = attended
        """The run's attendances already kept."""
        self.copies = copies
        """The run's movements known here (``UUID.int``: hashed in C, where a ``UUID`` is
        hashed in Python), as the run has left them so far."""
        self.replayed = Replayed()
        self.outcomes: list[str] = []

    @classmethod
    async def read(
        cls, store: Store, run: list[Decoded], node: str, forgotten: dict[str, Forgotten]
    ) -> _Fold:
        """What the run needs, read (its movements locked, but those whose partner group
        is to be cleared: as if it were, and not read)."""
        positions: dict[str, tuple[int, int]] = {}
        ids: dict[str, list[UUID]] = {}
        movements: dict[str, dict[int, UUID]] = {}
        attendances: list[UUID] = []
        for _, partner, event in run:
            ids.setdefault(partner, []).append(event.id)
            data = event.data
            if isinstance(data, ParticipationRecorded):
                movement_id = data.movement_id
                attendances.append(data.participation_id)
            else:
                movement_id = data.group.movement_id
            movements.setdefault(partner, {})[movement_id.int] = movement_id
        known: dict[str, set[int]] = {}
        copies: dict[int, StoredMovement] = {}
        for partner, event_ids in ids.items():
            positions[partner] = (
                await store.link_epoch(partner),
                await store.highest_seen(partner),
            )
            forgot = forgotten.get(partner)
            if forgot is None:
                known[partner] = {i.int for i in await store.known_events(partner, event_ids)}
                clearing: dict[int, tuple[str, str]] = {}
            else:
                known[partner] = forgot.claimed
                clearing = forgot.groups
            rest = set()
            for key, movement_id in movements[partner].items():
                sides = clearing.get(key)
                if sides is None:
                    rest.add(movement_id)
                else:
                    copies[key] = StoredMovement(*sides, Replica(None, None))
            if rest:
                for movement_id, stored in (await store.partner_copies(partner, rest)).items():
                    copies[movement_id.int] = stored
        attended = await store.known_participations(attendances)
        return cls(node, positions, known, attended, copies)

    def written(self, partner: str) -> list[int]:
        """The movements whose group from ``partner`` the run wrote (``UUID.int``)."""
        copies = self.copies
        return [key for key in self.replayed.origins if copies[key].origin == partner] + [
            key for key in self.replayed.hosts if copies[key].host == partner
        ]

    def apply(self, run: list[Decoded], policy: LinkPolicy, max_ahead: int) -> int:
        """Apply the run's events in order until one the applier must take; how many were
        applied (the index of that one)."""
        for index, (record, partner, event) in enumerate(run):
            epoch, highest = self.positions[partner]
            assert event.pairseq is not None  # a foldable record's
            if event.epoch != epoch or not policy.within_reach(event.pairseq, highest):
                return index
            claimed = self.claimed[partner]
            if event.id.int in self.known[partner] or event.id.int in claimed:
                self.outcomes.append(DUPLICATE)
                continue
            try:
                outcome = self._receive(partner, event, max_ahead)
            except Refused:
                return index
            claimed.add(event.id.int)
            self.replayed.claims.append((_claim(record, partner, event), outcome))
            self.outcomes.append(outcome)
        return len(run)

    def _receive(self, partner: str, event: Envelope[Any], max_ahead: int) -> str:
        data = event.data
        mark = (event.epoch, event.pairseq) if event.pairseq is not None else None
        replayed = self.replayed
        if isinstance(data, ParticipationRecorded):
            receive_participation(
                self.copies.get(data.movement_id.int), data, sender=partner, node=self.node
            )
            if data.participation_id in self.attended:
                return STALE
            self.attended.add(data.participation_id)
            replayed.participations.append(data)
            return APPLIED
        movement_id = data.group.movement_id.int
        stored = self.copies.get(movement_id)
        if isinstance(data, OriginGroupChanged):
            received = receive_origin(
                stored, data, sender=partner, node=self.node, mark=mark, max_ahead=max_ahead
            )
            if received is None:
                return STALE
            if stored is None:
                replayed.created[movement_id] = data.group.member.member_id
            replayed.origins[movement_id] = (data.group, received.set_by)
        else:
            received = receive_host(
                stored, data, sender=partner, node=self.node, mark=mark, max_ahead=max_ahead
            )
            if received is None:
                return STALE
            replayed.hosts[movement_id] = (data.group, received.set_by)
        self.copies[movement_id] = received
        replayed.versions.append(data.group)
        return APPLIED


def _event_id(value: bytes) -> UUID | None:
    """The id of an event not (or not yet) validated, if it has one."""
    try:
        return UUID(str(decode_raw(value).get("id")))
    except ValueError:
        return None


def _claim(record: Inbound, partner: str, event: Envelope[Any]) -> Claim:
    return Claim(
        partner, event.id, event.type, record.topic, record.partition, record.offset,
        event.pairseq, event.trace_id, event.time, event.correlationid, event.epoch,
    )  # fmt: skip
