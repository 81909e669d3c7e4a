"""Applying what a partner sent: validate, deduplicate, version-gate, record, announce.

One record, one transaction: the inbox row, the partner's group (if newer), the link's
sequence, the local event announcing the change and, for a refused event, the dead
letter. Only after it commits does the consumer commit the offset.

The transactions come from a ``Transactions`` (``unit_of_work.py``): PostgreSQL's in the
service, memory's in the unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from opentelemetry.trace import SpanKind

from yixian.contracts import (
    ActivityScheduled,
    ContractModel,
    Envelope,
    GroupName,
    HostGroup,
    HostGroupChanged,
    LinkDigest,
    LinkDigestEntries,
    LinkHeartbeat,
    LinkStatusReported,
    LinkStatusRequested,
    MalformedEvent,
    OrganizationRef,
    OriginGroup,
    OriginGroupChanged,
    ParticipationRecorded,
    ReplayRequested,
    ReplicaReturned,
    ResendRequested,
    ResendWanted,
    TopicNames,
    UnknownEventType,
    VisitorClaimAnswered,
    VisitorClaimAsked,
    decode,
    make_event,
)
from yixian.contracts.envelope import decode_raw
from yixian.contracts.link import MAX_ENTRIES
from yixian.runtime import get_logger
from yixian.runtime.tracing import current_traceparent, span
from yixian.sync.domain import (
    Outcome,
    Refused,
    bucket_of,
    buckets,
    differing_buckets,
    receive_host,
    receive_origin,
    receive_participation,
    reconcile,
)
from yixian.sync.domain.apply import MAX_VERSION_AHEAD, Mark
from yixian.sync.domain.link import (
    Numbering,
    answer_replay,
    check_claim,
    check_epoch,
    numbering,
    replay_needs_digest,
)

from .links import LinkPolicy, link_report, send_digest
from .repositories import Claim, Inbound, Store
from .unit_of_work import Transactions, UnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SyncConfig:
    node: str
    topics: TopicNames
    policy: LinkPolicy
    max_version_ahead: int = MAX_VERSION_AHEAD
    """A group version further than this beyond the replica's is refused (``check_version``)."""


class Applier:
    def __init__(
        self,
        transactions: Transactions,
        config: SyncConfig,
        clock: Callable[[], datetime],
        *,
        rebuilding: bool = False,
    ) -> None:
        self.transactions = transactions
        self.config = config
        self.clock = clock
        self.node = config.node
        self.rebuilding = rebuilding
        """Replaying history: apply the partner's data, announce nothing, answer nothing."""

    @property
    def transient(self) -> tuple[type[BaseException], ...]:
        """Failures of the database, not of a record: ``handle_batch`` raises them, and the
        caller applies the batch again later."""
        return self.transactions.transient

    # -- entry ------------------------------------------------------------------------------

    async def handle(self, record: Inbound) -> str:
        """Apply one record; return what happened to it (for logs and metrics)."""
        return (await self.handle_batch([record]))[0]

    async def handle_batch(self, records: list[Inbound]) -> list[str]:
        """Apply records in order, in one transaction.

        A record that cannot be applied for any reason other than the database being
        unreachable becomes a dead letter; the rest of the batch goes on. If the database
        fails, the whole batch rolls back and is delivered again (the inbox absorbs it).

        The batch is first applied without savepoints (four fewer round trips a record);
        if any record raises, that attempt rolls back whole and the batch is applied again
        the careful way, a savepoint around each record, so that only the failing one is
        dead-lettered. Both ways commit the same rows.
        """
        try:
            return await self._apply_batch(records, careful=False)
        except self.transient:
            raise
        except Exception as exc:
            log.info("a record of the batch failed; applying it one by one", error=repr(exc))
            return await self._apply_batch(records, careful=True)

    async def _apply_batch(self, records: list[Inbound], *, careful: bool) -> list[str]:
        outcomes: list[str] = []
        async with self.transactions(deferred=not careful) as uow:
            store = uow.store
            decoded = {} if careful else await self._prepare(store, records)
            for record in records:
                now = self.clock()
                if not careful:
                    event = decoded.get(id(record))
                    outcome = await self._handle(uow, record, now, careful=False, decoded=event)
                    outcomes.append(outcome)
                    continue
                try:
                    async with uow.savepoint():
                        outcome = await self._handle(uow, record, now, careful=True)
                except self.transient:
                    raise
                except Exception as exc:
                    log.exception(
                        "could not apply a record", topic=record.topic, offset=record.offset
                    )
                    async with uow.savepoint():
                        await self._dead(store, record, f"could not be applied: {exc!r}", [], now)
                    outcome = "dead_letter"
                outcomes.append(outcome)
            await store.flush()
        return outcomes

    async def retry_dead_letter(self, dead_letter_id: int) -> str:
        """Apply a dead letter again (the operator fixed its cause); note how it went.

        The inbox forgets a refused event first, so that it is not taken for a repeat.
        """
        async with self.transactions() as uow:
            record = await uow.store.dead_letter_record(dead_letter_id)
        if record is None:
            return "unknown"
        async with self.transactions() as uow:
            await uow.store.reopen_dead_letter(dead_letter_id, record)
        outcome = await self.handle(record)
        async with self.transactions() as uow:
            await uow.store.note_retry(dead_letter_id, outcome)
        return outcome

    async def _prepare(self, store: Store, records: list[Inbound]) -> dict[int, Envelope[Any]]:
        """Decode a batch, claim its events and lock its movements, one statement each; the
        records' decoded events, by ``id(record)``. Records this skips (not a pair event for
        this node, undecodable, forged, unnumbered, of a refused epoch or out of reach) take
        the one-by-one path in ``_handle``."""
        decoded: dict[int, Envelope[Any]] = {}
        now = self.clock()
        claims: list[Claim] = []
        movements: set[UUID] = set()
        for record in records:
            try:
                partner, destination = self.config.topics.parse_pair(record.topic)
            except ValueError:
                continue
            if destination != self.node:
                continue
            try:
                event = decode(record.value)
            except UnknownEventType as unknown:
                seq, event_id = _pair_number(unknown.envelope), _event_id(unknown.envelope)
                epoch = _pair_epoch(unknown.envelope)
                if seq and event_id and await self._counts(store, partner, epoch, seq, now):
                    claims.append(Claim(
                        partner, event_id, unknown.event_type[:200], record.topic,
                        record.partition, record.offset, seq, None, None, None, epoch,
                    ))  # fmt: skip
                continue
            except ValueError:  # MalformedEvent
                continue
            if (
                event.source_node != partner
                or event.pairseq is None
                or not await self._counts(store, partner, event.epoch, event.pairseq, now)
            ):
                continue
            decoded[id(record)] = event
            claims.append(Claim(
                partner, event.id, event.type, record.topic, record.partition, record.offset,
                event.pairseq, event.trace_id, event.time, event.correlationid, event.epoch,
            ))  # fmt: skip
            data = event.data
            if isinstance(data, OriginGroupChanged | HostGroupChanged):
                movements.add(data.group.movement_id)
            elif isinstance(data, ParticipationRecorded):
                movements.add(data.movement_id)
        if claims:
            await store.claim_all(claims)
        if movements:
            await store.lock_movements(movements)
        return decoded

    async def _handle(
        self,
        uow: UnitOfWork,
        record: Inbound,
        now: datetime,
        *,
        careful: bool = True,
        decoded: Envelope[Any] | None = None,
    ) -> str:
        """Apply one record. ``careful``: inside a savepoint, so that a refusal undoes the
        record's own writes and dead-letters it; otherwise a refusal raises (the caller
        applies the batch again carefully). ``decoded``: the record's event, if known."""
        store = uow.store
        try:
            partner, destination = self.config.topics.parse_pair(record.topic)
        except ValueError:
            return await self._dead(store, record, f"{record.topic} is not a pair topic", [], now)
        if destination != self.node:
            return await self._dead(
                store, record, f"{record.topic} is addressed to {destination}", [], now
            )
        try:
            event = decoded if decoded is not None else decode(record.value)
        except UnknownEventType as unknown:
            return await self._unknown(store, record, partner, unknown, now)
        except MalformedEvent as bad:
            return await self._dead(store, record, bad.reason, bad.errors, now)
        if event.source_node != partner:
            return await self._dead(
                store,
                record,
                f"forged source: the event says {event.source_node}, the topic is from {partner}",
                [{"field": "source", "reason": "does not match the pair topic"}],
                now,
            )
        if event.pairseq is None:
            return await self._dead(
                store,
                record,
                "events on a pair topic carry pairseq",
                [{"field": "pairseq", "reason": "missing"}],
                now,
            )
        try:
            current = await self._follow_epoch(store, partner, event.epoch, now)
        except Refused as refusal:
            return await self._dead(
                store, record, refusal.reason,
                [{"field": "pairepoch", "reason": "starts in the future"}], now,
            )  # fmt: skip
        if not await self._within_reach(store, partner, event.pairseq, current=current):
            return await self._dead(
                store, record, await self._beyond_reach(store, partner, event.pairseq, current),
                [{"field": "pairseq", "reason": "beyond what the partner can have sent"}], now,
            )  # fmt: skip
        claimed = await store.claim(
            partner,
            event.id,
            event.type,
            record,
            pairseq=event.pairseq,
            trace_id=event.trace_id,
            event_time=event.time,
            movement_id=event.correlationid,
            epoch=event.epoch,
        )
        if not claimed:
            return Outcome.DUPLICATE.value
        attributes = {"yixian.node": self.node, "yixian.partner": partner}
        try:
            with span(f"sync apply {event.type}", event.traceparent, SpanKind.CONSUMER,
                      **attributes, **{"yixian.pairseq": event.pairseq}):  # fmt: skip
                if careful:
                    async with uow.savepoint():
                        outcome = await self._dispatch(store, partner, event, now)
                else:
                    outcome = await self._dispatch(store, partner, event, now)
        except Refused as refusal:
            if not careful:
                raise
            await store.dead_letter(record, refusal.reason, [], now)
            outcome = "dead_letter"
        store.settle(partner, event.id, outcome)
        log.debug("event handled", partner=partner, type=event.type, outcome=outcome)
        return outcome

    async def _dead(
        self,
        store: Store,
        record: Inbound,
        reason: str,
        errors: list[dict[str, Any]],
        now: datetime,
    ) -> str:
        await store.dead_letter(record, reason, errors, now)
        await self._count_number(store, record)
        log.warning("dead letter", topic=record.topic, offset=record.offset, reason=reason)
        return "dead_letter"

    async def _count_number(self, store: Store, record: Inbound) -> None:
        """A refused record's pair number counts as arrived all the same (if within reach):
        the partner sent it, and asking for it again would bring the same refusal."""
        try:
            partner, destination = self.config.topics.parse_pair(record.topic)
            document = decode_raw(record.value)
        except ValueError:
            return
        seq, epoch = _pair_number(document), _pair_epoch(document)
        if (
            destination == self.node
            and seq
            and epoch == await store.link_epoch(partner)
            and await self._within_reach(store, partner, seq)
        ):
            await store.count_received(partner, epoch, seq)

    async def _follow_epoch(self, store: Store, partner: str, epoch: int, now: datetime) -> bool:
        """Whether an event of link ``epoch`` counts on the link (ADR 16): one of a newer
        epoch starts the link afresh (the partner numbers from 1 again), and a digest goes
        out at once when the older epoch left numbers missing, to repair what they held;
        one of an older epoch is a straggler, applied but its number and claims ignored.
        An epoch starting far in the future is refused (``Refused``)."""
        tracked = await store.link_epoch(partner)
        standing = numbering(tracked, epoch)
        if standing is Numbering.NEWER:
            check_epoch(epoch, now, self.config.policy)
            left = (await store.tracker(partner, now)).lag()
            await store.enter_epoch(partner, epoch)
            log.warning("partner numbers in a new link epoch", partner=partner, epoch=epoch,
                        previous=tracked, given_up=left)  # fmt: skip
            if left and not self.rebuilding:
                await send_digest(store, partner, self.config.policy, now)
        return standing is not Numbering.OLDER

    async def _counts(
        self, store: Store, partner: str, epoch: int, seq: int, now: datetime
    ) -> bool:
        """Whether a numbered event takes the batch's fast path: its epoch is not refused
        and, in the link's epoch, its number is within reach."""
        try:
            current = await self._follow_epoch(store, partner, epoch, now)
        except Refused:
            return False
        return await self._within_reach(store, partner, seq, current=current)

    async def _within_reach(
        self, store: Store, partner: str, seq: int, *, current: bool = True
    ) -> bool:
        """Whether ``partner`` can have sent pair number ``seq``: a number far beyond the
        highest seen (in the link's epoch, or for a straggler ``not current`` in the older
        ones) is a forged or broken claim, refused rather than taken for a gap."""
        return self.config.policy.within_reach(seq, await self._highest(store, partner, current))

    async def _highest(self, store: Store, partner: str, current: bool) -> int:
        if current:
            return await store.highest_seen(partner)
        return await store.older_highest(partner)

    async def _beyond_reach(
        self, store: Store, partner: str, seq: int, current: bool = True
    ) -> str:
        highest = await self._highest(store, partner, current)
        return (
            f"pairseq {seq} is beyond reach: more than {self.config.policy.max_ahead}"
            f" past the highest number seen from {partner} ({highest}"
            f"{'' if current else ', in its older link epochs'})"
        )

    async def _unknown(
        self,
        store: Store,
        record: Inbound,
        partner: str,
        unknown: UnknownEventType,
        now: datetime,
    ) -> str:
        """A type a newer v1 may have: record it, count its number as arrived (it is never
        asked for again) and move on; never fatal."""
        event_id = _event_id(unknown.envelope)
        if event_id is None:
            return await self._dead(store, record, f"{unknown}; and its id is not a UUID", [], now)
        seq, epoch = _pair_number(unknown.envelope), _pair_epoch(unknown.envelope)
        if seq is not None:
            try:
                current = await self._follow_epoch(store, partner, epoch, now)
            except Refused as refusal:
                return await self._dead(store, record, refusal.reason, [], now)
            if not await self._within_reach(store, partner, seq, current=current):
                return await self._dead(
                    store, record, await self._beyond_reach(store, partner, seq, current), [], now
                )
        claimed = await store.claim(
            partner, event_id, unknown.event_type[:200], record, pairseq=seq, epoch=epoch
        )
        if claimed:
            store.settle(partner, event_id, "skipped_unknown_type")
        log.info("unknown event type skipped", type=unknown.event_type, partner=partner, seq=seq)
        return "skipped_unknown_type"

    # -- by type ----------------------------------------------------------------------------

    async def _dispatch(
        self, store: Store, partner: str, event: Envelope[Any], now: datetime
    ) -> str:
        data = event.data
        if isinstance(data, OriginGroupChanged):
            return await self._origin_group(store, partner, event, data)
        if isinstance(data, HostGroupChanged):
            return await self._host_group(store, partner, event, data)
        if isinstance(data, ParticipationRecorded):
            return await self._participation(store, partner, event, data)
        await store.flush()  # link events read what the batch wrote so far
        if isinstance(data, LinkHeartbeat):
            if data.source != partner or data.destination != self.node:
                raise Refused(f"heartbeat names the link {data.source}→{data.destination}")
            check_claim("heartbeat", data.last_sequence, event.pairseq)
            if event.epoch == await store.link_epoch(partner):  # a straggler's claim: none
                await store.heard_heartbeat(partner, data.last_sequence, now)
            return "link"
        if isinstance(data, LinkDigest):
            check_claim("digest", data.as_of_sequence, event.pairseq)
            as_of_epoch = event.epoch if data.as_of_epoch is None else data.as_of_epoch
            current = as_of_epoch == await store.link_epoch(partner)
            return await self._digest(store, partner, data, now, settles=current)
        if isinstance(data, LinkDigestEntries):
            return await self._digest_entries(store, partner, data, now)
        if isinstance(data, ReplicaReturned):
            return await self._replica_returned(store, partner, event, data)
        if isinstance(data, ResendRequested):
            return await self._resend(store, partner, data.wanted, event.traceparent, now)
        if isinstance(data, ReplayRequested):
            return await self._replay(store, partner, data, now)
        if isinstance(data, LinkStatusRequested):
            report = await link_report(
                store, partner, self.config.policy, now, request_id=data.request_id
            )
            await store.publish_to(partner, self._event(report, now))
            return "link"
        if isinstance(data, LinkStatusReported):
            await store.save_partner_view(partner, data.model_dump(mode="json"))
            return "link"
        if isinstance(data, VisitorClaimAsked | VisitorClaimAnswered):
            return await self._visitor(store, partner, data)
        if isinstance(data, ActivityScheduled):
            raise Refused("activities are announced on a node's local topic, not sent to partners")
        raise Refused(f"{event.type} is not handled on pair topics")  # pragma: no cover

    async def _visitor(
        self, store: Store, partner: str, data: VisitorClaimAsked | VisitorClaimAnswered
    ) -> str:
        """A claim asked of this node, or the answer to one of its own (ADR 21): kept for the
        registry, which reads it through sync's views and answers or shows it."""
        if isinstance(data, VisitorClaimAsked):
            if data.host != partner or data.origin != self.node:
                raise Refused(
                    f"a claim from {data.host} to {data.origin} came on the link"
                    f" {partner}→{self.node}"
                )
            added = await store.add_visitor_claim(data)
        else:
            if data.origin != partner or data.host != self.node:
                raise Refused(
                    f"an answer from {data.origin} to {data.host} came on the link"
                    f" {partner}→{self.node}"
                )
            added = await store.put_visitor_answer(data)
        return Outcome.APPLIED.value if added else Outcome.STALE.value

    async def _origin_group(
        self, store: Store, partner: str, event: Envelope[Any], data: OriginGroupChanged
    ) -> str:
        received = receive_origin(
            await store.movement(data.group.movement_id), data, sender=partner, node=self.node,
            mark=_mark(event), max_ahead=self.config.max_version_ahead,
        )  # fmt: skip
        if received is None:
            return Outcome.STALE.value
        await store.put_partner_origin(data.group, repair=bool(data.repair), set_by=received.set_by)
        await self._publish_local(store, data, event, data.group.movement_id)
        return Outcome.APPLIED.value

    async def _host_group(
        self, store: Store, partner: str, event: Envelope[Any], data: HostGroupChanged
    ) -> str:
        received = receive_host(
            await store.movement(data.group.movement_id), data, sender=partner, node=self.node,
            mark=_mark(event), max_ahead=self.config.max_version_ahead,
        )  # fmt: skip
        if received is None:
            return Outcome.STALE.value
        await store.put_partner_host(data.group, repair=bool(data.repair), set_by=received.set_by)
        await self._publish_local(store, data, event, data.group.movement_id)
        return Outcome.APPLIED.value

    async def _participation(
        self, store: Store, partner: str, event: Envelope[Any], data: ParticipationRecorded
    ) -> str:
        receive_participation(
            await store.movement(data.movement_id), data, sender=partner, node=self.node
        )
        if not await store.add_participation(data):
            return Outcome.STALE.value
        await self._publish_local(store, data, event, data.movement_id)
        return Outcome.APPLIED.value

    async def _replay(
        self, store: Store, partner: str, request: ReplayRequested, now: datetime
    ) -> str:
        """Send again exactly the numbers asked for, each at most once per replay interval
        however often it is asked; numbers that cannot be sent (gone, parked, never
        numbered) are settled by a digest sent at once."""
        policy = self.config.policy
        epoch, last_sent = await store.sent(partner)
        if (request.epoch or 0) != (epoch or 0):
            # numbers of another epoch (before this database was rebuilt): none can be sent
            # again; a digest settles them
            await send_digest(store, partner, policy, now)
            log.info("replay asked in another link epoch; digest sent", partner=partner,
                     asked=request.epoch or 0, mine=epoch)  # fmt: skip
            return "link"
        wanted = request.runs(last_sent)
        runs = answer_replay(
            wanted, await store.replayed_lately(partner, now - policy.replay_interval)
        )
        if not runs:
            log.info("replay asked again; answered lately", partner=partner, first=wanted[0][0])
            return "link"
        requeued, held = await store.replay(partner, epoch or 0, runs)
        await store.note_replayed(partner, runs, now)
        count = sum(last - first + 1 for first, last in runs)
        if replay_needs_digest(runs, held):
            await send_digest(store, partner, policy, now)
        log.info(
            "replay requested",
            partner=partner,
            first=runs[0][0],
            numbers=count,
            events=requeued,
            lost=count - held,
        )
        return "link"

    # -- anti-entropy -------------------------------------------------------------------------

    async def _digest(
        self, store: Store, partner: str, digest: LinkDigest, now: datetime, *, settles: bool
    ) -> str:
        """Compare a digest with this node's data; one that matches settles the numbers
        the link still misses up to its ``as_of_sequence`` if that is of the link's epoch
        (``settles``)."""
        mine = await store.entries(partner, digest.bucket_count)
        differing = differing_buckets(
            buckets(mine, digest.bucket_count, content=bool(digest.content)), digest
        )
        if not differing:
            if settles:
                await store.settle_up_to(partner, digest.as_of_sequence)
            return "link"
        wanted = set(differing)
        selected = [e for e in mine if bucket_of(e.movement_id, digest.bucket_count) in wanted]
        # buckets where this node holds nothing go with the last chunk: the partner's
        # movements in them are missing here
        empty = wanted - {bucket_of(e.movement_id, digest.bucket_count) for e in selected}
        for start in range(0, max(len(selected), 1), MAX_ENTRIES):
            chunk = selected[start : start + MAX_ENTRIES]
            chunk_buckets = {bucket_of(e.movement_id, digest.bucket_count) for e in chunk}
            if start + MAX_ENTRIES >= len(selected):
                chunk_buckets |= empty
            payload = LinkDigestEntries(
                digest_id=digest.digest_id,
                bucket_count=digest.bucket_count,
                buckets=tuple(sorted(chunk_buckets)),
                entries=tuple(chunk),
                computed_at=now,
            )
            await store.publish_to(partner, self._event(payload, now))
        log.info("digest differs", partner=partner, buckets=len(differing))
        return "link"

    async def _digest_entries(
        self, store: Store, partner: str, data: LinkDigestEntries, now: datetime
    ) -> str:
        mine = await store.entries(partner, data.bucket_count, only=data.buckets)
        repair = reconcile(self.node, mine, data.entries)
        wanted_own = [
            ResendWanted(movement_id=movement_id, group=group, have_version=0)
            for movement_id, group in repair.republish
        ]
        await self._resend(store, partner, tuple(wanted_own), None, now)
        for start in range(0, len(repair.request), MAX_ENTRIES):
            request = ResendRequested(
                request_id=uuid4(),
                wanted=tuple(repair.request[start : start + MAX_ENTRIES]),
                reason=f"anti-entropy: digest {data.digest_id} differs",
            )
            await store.publish_to(partner, self._event(request, now))
        for movement_id in repair.give_back:
            await self._give_back(store, partner, movement_id, None, now)
        log.info(
            "anti-entropy repair",
            partner=partner,
            republished=len(repair.republish),
            requested=len(repair.request),
            given_back=len(repair.give_back),
        )
        return "link"

    async def _resend(
        self,
        store: Store,
        partner: str,
        wanted: tuple[ResendWanted, ...],
        traceparent: str | None,
        now: datetime,
    ) -> str:
        """Publish again the current snapshot of each wanted group this node owns, as the
        owner's repair copy (a host group with its participations); for a group the asker
        owns, send it this node's copy back (``ReplicaReturned``)."""
        for item in wanted:
            stored = await store.copy_of(item.movement_id)
            if stored is None or partner not in (stored.origin, stored.host):
                continue
            mine = GroupName.ORIGIN if stored.origin == self.node else GroupName.HOST
            if item.group is not mine:
                await self._give_back(store, partner, item.movement_id, traceparent, now)
                continue
            group = stored.replica.origin if mine is GroupName.ORIGIN else stored.replica.host
            if group is None:
                continue
            if isinstance(group, OriginGroup):
                payload: ContractModel = OriginGroupChanged(group=group, repair=True)
            else:
                payload = HostGroupChanged(group=group, repair=True)
                for p in await store.participations(item.movement_id):
                    await store.publish_to(
                        partner,
                        self._event(
                            _participation_payload(p, group.host),
                            now,
                            item.movement_id,
                            traceparent,
                        ),
                    )
            await store.publish_to(
                partner, self._event(payload, now, item.movement_id, traceparent)
            )
        return "link"

    async def _give_back(
        self,
        store: Store,
        partner: str,
        movement_id: UUID,
        traceparent: str | None,
        now: datetime,
    ) -> None:
        """Send ``partner`` this node's copy of a movement whose group it owns (it lost it):
        both groups and, for a host, the participations received from it."""
        stored = await store.copy_of(movement_id)
        if stored is None or partner not in (stored.origin, stored.host):
            return
        host = stored.host
        returned = ReplicaReturned(
            movement_id=movement_id,
            origin_group=stored.replica.origin,
            host_group=stored.replica.host,
            participations=tuple(
                _participation_payload(p, host)
                for p in (await store.participations(movement_id))[:MAX_ENTRIES]
            )
            if partner == host
            else (),
            reason="this node's copy of a record its owner lacks or holds otherwise",
        )
        await store.publish_to(partner, self._event(returned, now, movement_id, traceparent))

    async def _replica_returned(
        self, store: Store, partner: str, event: Envelope[Any], data: ReplicaReturned
    ) -> str:
        """Take back what this node owns and lost, from the partner's copy: its own group
        where it has none, its participations it lacks. The partner's own group in it is
        applied as the partner's repair copy (it is its owner)."""
        sent_by_origin = data.origin_group is not None and data.origin_group.origin == partner
        theirs: OriginGroup | HostGroup | None = (
            data.origin_group if sent_by_origin else data.host_group
        )
        mine = data.host_group if sent_by_origin else data.origin_group
        restored = 0
        if mine is not None:  # first: a host group needs its movement's row
            if isinstance(mine, OriginGroup) and mine.origin != self.node:
                raise Refused(f"the origin group returned names origin {mine.origin}")
            if isinstance(mine, HostGroup) and mine.host != self.node:
                raise Refused(f"the host group returned names host {mine.host}")
            if isinstance(mine, OriginGroup):
                if mine.destination.jurisdiction != partner:
                    raise Refused(f"the origin group returned is for host {mine.destination}")
                restored += await store.restore_own(mine, member_id=mine.member.member_id)
            elif data.origin_group is not None:
                await self._origin_group(
                    store, partner, event, OriginGroupChanged(group=data.origin_group, repair=True)
                )
                theirs = None
                restored += await store.restore_own(
                    mine, member_id=data.origin_group.member.member_id
                )
        if isinstance(theirs, OriginGroup):
            await self._origin_group(
                store, partner, event, OriginGroupChanged(group=theirs, repair=True)
            )
        elif isinstance(theirs, HostGroup):
            await self._host_group(
                store, partner, event, HostGroupChanged(group=theirs, repair=True)
            )
        stored = await store.copy_of(data.movement_id)
        if data.participations and stored is not None and stored.host == self.node:
            for p in data.participations:
                if p.host != self.node:
                    raise Refused(f"participation {p.participation_id} names host {p.host}")
                restored += await store.add_participation(p)
        log.info("replica returned", partner=partner, movement=str(data.movement_id),
                 restored=restored)  # fmt: skip
        return Outcome.APPLIED.value if restored else Outcome.STALE.value

    # -- envelopes ----------------------------------------------------------------------------

    def _event(
        self,
        payload: ContractModel,
        now: datetime,
        movement_id: UUID | None = None,
        traceparent: str | None = None,
    ) -> Envelope[Any]:
        return make_event(
            payload,
            node=self.node,
            time=now,
            traceparent=traceparent,
            subject=str(movement_id) if movement_id else None,
            correlationid=movement_id,
        )

    async def _publish_local(
        self, store: Store, payload: ContractModel, received: Envelope[Any], movement_id: UUID
    ) -> None:
        """Announce a change applied from a partner on the local topic, in the same trace."""
        if not self.rebuilding:
            await store.publish_local(self._announce(payload, received, movement_id))

    def _announce(
        self, payload: ContractModel, received: Envelope[Any], movement_id: UUID
    ) -> Envelope[Any]:
        return make_event(
            payload,
            node=self.node,
            time=self.clock(),
            traceparent=current_traceparent() or received.traceparent,  # continues the apply
            subject=str(movement_id),
            correlationid=movement_id,
        )


def _mark(event: Envelope[Any]) -> Mark | None:
    """When the partner sent ``event``: its (link epoch, pair number); every event before
    link epochs is of epoch 0 (ADR 16)."""
    return None if event.pairseq is None else (event.epoch, event.pairseq)


def _pair_epoch(document: dict[str, Any]) -> int:
    """The ``pairepoch`` of an event not (or not yet) validated: 0 if absent or not a
    number (before epochs)."""
    epoch = document.get("pairepoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0


def _pair_number(document: dict[str, Any]) -> int | None:
    """The ``pairseq`` of an event not (or not yet) validated, if it is a number."""
    seq = document.get("pairseq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 else None


def _event_id(document: dict[str, Any]) -> UUID | None:
    try:
        return UUID(str(document.get("id")))
    except ValueError:
        return None


def _participation_payload(row: dict[str, Any], host: str) -> ParticipationRecorded:
    return ParticipationRecorded(
        participation_id=row["participation_id"],
        movement_id=row["movement_id"],
        host=host,
        host_org=OrganizationRef(org_id=row["host_org_id"], name=row["host_org_name"]),
        activity_id=row["activity_id"],
        kind=row["kind"],
        title=row["title"],
        attended_at=row["attended_at"],
        recorded_at=row["recorded_at"],
        recorded_by=row["recorded_by"],
    )
