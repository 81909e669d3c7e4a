"""Keeping each link alive and whole: heartbeats on idle links, replay requests for gaps,
periodic digests for anti-entropy, and each link's status."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from yixian.contracts import (
    LinkDigest,
    LinkHeartbeat,
    LinkState,
    LinkStatusReported,
    LinkStatusRequested,
    ReplayRequested,
    SequenceRange,
    TopicNames,
    make_event,
)
from yixian.runtime import get_logger
from yixian.sync.domain import buckets
from yixian.sync.domain.link import LinkPolicy, count_numbers, plan_replay

from .repositories import Store
from .unit_of_work import Transactions

__all__ = ["LinkKeeper", "LinkPolicy", "LinkView", "link_report", "request_replay", "send_digest"]

log = get_logger(__name__)


async def link_report(
    store: Store,
    partner: str,
    policy: LinkPolicy,
    now: datetime,
    request_id: UUID | None = None,
) -> LinkStatusReported:
    tracker = await store.tracker(partner, now)
    shared = len(await store.entries(partner, policy.bucket_count))
    return LinkStatusReported(
        request_id=request_id or uuid4(),
        state=tracker.state(now, grace=policy.gap_grace, silence=policy.silence),
        last_sequence_sent=await store.last_sent(partner),
        last_sequence_received=tracker.contiguous,
        outbox_backlog=await store.backlog(partner),
        shared_movements=shared,
        reported_at=now,
    )


async def send_digest(store: Store, partner: str, policy: LinkPolicy, now: datetime) -> None:
    """Send ``partner`` a digest of every movement the two share, as of the last number
    sent (in this node's link epoch); a digest that matches the partner's data settles the
    numbers it still misses."""
    entries = await store.entries(partner, policy.bucket_count)
    epoch, last_sent = await store.sent(partner)
    digest = LinkDigest(
        digest_id=uuid4(),
        bucket_count=policy.bucket_count,
        buckets=tuple(
            sorted(
                buckets(entries, policy.bucket_count, content=True).values(),
                key=lambda b: b.bucket,
            )
        ),
        as_of_sequence=last_sent,
        as_of_epoch=epoch or None,
        computed_at=now,
        content=True,
    )
    await store.publish_to(partner, make_event(digest, node=store.node, time=now))
    await store.note_digest_sent(partner, now)


async def request_replay(
    store: Store, partner: str, first: int, last: int | None, now: datetime, reason: str
) -> UUID:
    """Ask ``partner`` to publish its pair events ``first``..``last`` (None: its latest) to
    this node again, in the link epoch this node follows; the request's id."""
    request = ReplayRequested(
        request_id=uuid4(),
        from_sequence=first,
        to_sequence=last,
        epoch=await store.link_epoch(partner) or None,  # the numbers this link follows
        reason=reason,
    )
    await store.publish_to(partner, make_event(request, node=store.node, time=now))
    return request.request_id


@dataclass
class LinkView:
    partner: str
    epoch: int
    """The partner's link epoch the numbers below are of (ADR 16)."""
    state: LinkState
    lag: int
    contiguous: int
    max_seen: int
    partner_sent: int
    missing: list[int]
    last_event_at: datetime | None
    last_heartbeat_at: datetime | None
    last_sent: int
    backlog: int
    partner_view: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "epoch": self.epoch,
            "state": self.state.value,
            "lag": self.lag,
            "received_up_to": self.contiguous,
            "highest_seen": self.max_seen,
            "partner_says_sent": self.partner_sent,
            "missing": self.missing[:50],
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "last_heartbeat_at": self.last_heartbeat_at.isoformat()
            if self.last_heartbeat_at
            else None,
            "last_sequence_sent": self.last_sent,
            "outbox_backlog": self.backlog,
            "partner_view": self.partner_view,
        }


class LinkKeeper:
    """Periodic work on every link of the node, each link in a transaction of its own.

    Each tick first asks which links are astir (numbers received or missing, a gap being
    repaired). A link at rest is left alone until its heartbeat or digest can fall due:
    the keeper knows when from its last look (something sent to the partner, a digest
    made since, only puts them off). While every link is at rest the keeper does not tick
    either: it waits until the first of them falls due, or until :meth:`wake` says the
    partners' events were applied (the consumer says so) or a link was made."""

    def __init__(
        self,
        transactions: Transactions,
        *,
        node: str,
        partners: frozenset[str],
        topics: TopicNames,
        policy: LinkPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.transactions = transactions
        self.node = node
        self.partners = partners
        self.topics = topics
        self.policy = policy
        self.clock = clock
        self._next_look: dict[str, datetime] = {}
        """When each link at rest next needs a look: its heartbeat or its digest due."""
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Partners' events were applied, or a link was made: look at the links now."""
        self._wake.set()

    async def known_partners(self, store: Store) -> list[str]:
        """The partners this node is linked with: ``YIXIAN_PARTNERS`` and every partner
        with a row in ``links`` (one added while the node runs, one heard from before)."""
        return sorted(self.partners | set(await store.partners()))

    async def linked_partners(self) -> list[str]:
        async with self.transactions() as uow:
            return await self.known_partners(uow.store)

    async def link(self, partner: str) -> bool:
        """Keep a link with ``partner`` from now on (its pair topic is read, heartbeats and
        digests go to it); whether it is new."""
        async with self.transactions() as uow:
            made = await uow.store.add_link(partner)
        return made and partner not in self.partners

    async def run(self, stop: asyncio.Event, tick: float = 1.0) -> None:
        """Tick every ``tick`` seconds while a link is astir; while all are at rest, when
        the first falls due (at least every heartbeat interval) or when woken."""
        while not stop.is_set():
            self._wake.clear()  # a wake during the tick makes the next one start at once
            rest = tick
            try:
                if await self.tick():
                    rest = self._rest(tick)
            except self.transactions.transient as exc:
                log.warning("link upkeep failed; retrying", error=str(exc) or type(exc).__name__)
            except Exception:
                log.exception("link upkeep failed unexpectedly; retrying")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=rest, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    def _rest(self, tick: float) -> float:
        """Seconds until the first link at rest falls due: at least ``tick``, at most the
        heartbeat interval (events applied elsewhere than by this process's consumer, a
        rebuild's, are looked at within it)."""
        most = self.policy.heartbeat_interval.total_seconds()
        if not self._next_look:
            return tick
        due = (min(self._next_look.values()) - self.clock()).total_seconds()
        return min(max(due, tick), most)

    async def tick(self) -> bool:
        """Look at every link that is astir or due; whether every link is at rest now."""
        now = self.clock()
        async with self.transactions() as uow:
            astir = await uow.store.links_astir()
        at_rest = True
        for partner in sorted(self.partners | set(astir)):
            # a partner without a row yet is looked at: its first look makes the row
            if not astir.get(partner, True) and now < self._next_look.get(partner, now):
                continue
            async with self.transactions() as uow:
                heartbeat = await self._heartbeat(uow.store, partner, now)
                settled = await self._repair_gaps(uow.store, partner, now)
                digest = await self._digest(uow.store, partner, now)
            self._next_look[partner] = min(heartbeat, digest)
            at_rest = at_rest and settled
        return at_rest

    async def _heartbeat(self, store: Store, partner: str, now: datetime) -> datetime:
        """Send a heartbeat if the link is idle; when the next one can be due."""
        last_sent_at = await store.last_sent_at(partner)
        if not self.policy.heartbeat_due(last_sent_at, now):
            assert last_sent_at is not None
            return last_sent_at + self.policy.heartbeat_interval  # the link is not idle
        heartbeat = LinkHeartbeat(
            source=self.node,
            destination=partner,
            last_sequence=await store.last_sent(partner),
            sent_at=now,
        )
        await store.publish_to(partner, make_event(heartbeat, node=self.node, time=now))
        await store.note_heartbeat_sent(partner, now)
        return now + self.policy.heartbeat_interval

    async def _repair_gaps(self, store: Store, partner: str, now: datetime) -> bool:
        """Ask for exactly the missing numbers, less often each time; every few requests
        for a gap still open, send a digest at once (it settles what cannot be replayed).
        Whether the link is at rest: nothing missing, no gap being asked for."""
        tracker = await store.tracker(partner, now)
        asked = await store.replay_asked(partner)
        plan = plan_replay(tracker, now, self.policy, attempts=asked.attempts, asked_at=asked.at)
        if not plan.runs:
            if plan.attempts != asked.attempts:
                await store.note_replay_attempts(partner, plan.attempts)
            return tracker.missing_since is None and plan.attempts == 0
        runs = plan.runs
        count = count_numbers(runs)
        request = ReplayRequested(
            request_id=uuid4(),
            from_sequence=runs[0][0],
            to_sequence=runs[-1][1],
            ranges=tuple(SequenceRange(first=f, last=la) for f, la in runs)
            if len(runs) > 1
            else None,
            epoch=asked.epoch or None,
            reason=f"{count} event(s) missing from {runs[0][0]} (request {plan.attempts})",
        )
        await store.publish_to(partner, make_event(request, node=self.node, time=now))
        await store.note_replay_asked(partner, now, runs[-1][1], plan.attempts)
        log.warning(
            "gap on link; replay requested",
            partner=partner,
            first=runs[0][0],
            count=count,
            request=plan.attempts,
        )
        if plan.with_digest:
            await send_digest(store, partner, self.policy, now)
        return False

    async def _digest(
        self, store: Store, partner: str, now: datetime, force: bool = False
    ) -> datetime:
        """Send the periodic digest if it is due (or ``force``); when the next one is."""
        last = await store.last_digest_sent_at(partner)
        if not force and not self.policy.digest_due(last, now):
            assert last is not None
            return last + self.policy.digest_interval
        await send_digest(store, partner, self.policy, now)
        return now + self.policy.digest_interval

    async def anti_entropy_now(self, partner: str) -> None:
        """Send a digest to ``partner`` at once (the on-demand repair)."""
        async with self.transactions() as uow:
            await self._digest(uow.store, partner, self.clock(), force=True)

    async def ask_status(self, partner: str) -> None:
        async with self.transactions() as uow:
            request = LinkStatusRequested(request_id=uuid4())
            await uow.store.publish_to(
                partner, make_event(request, node=self.node, time=self.clock())
            )

    async def views(self) -> list[LinkView]:
        now = self.clock()
        out = []
        async with self.transactions() as uow:
            partners = await self.known_partners(uow.store)
        for partner in partners:
            async with self.transactions() as uow:
                store = uow.store
                tracker = await store.tracker(partner, now)
                out.append(
                    LinkView(
                        partner=partner,
                        epoch=await store.link_epoch(partner),
                        state=tracker.state(
                            now, grace=self.policy.gap_grace, silence=self.policy.silence
                        ),
                        lag=tracker.lag(),
                        contiguous=tracker.contiguous,
                        max_seen=tracker.max_seen,
                        partner_sent=tracker.partner_sent,
                        missing=tracker.missing(50),
                        last_event_at=tracker.last_event_at,
                        last_heartbeat_at=tracker.last_heartbeat_at,
                        last_sent=await store.last_sent(partner),
                        backlog=await store.backlog(partner),
                        partner_view=await store.partner_view(partner),
                    )
                )
        return out
