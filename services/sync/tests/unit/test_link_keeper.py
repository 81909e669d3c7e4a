"""The link keeper on a node held in memory (``fakes.py``): heartbeats on idle links only,
replay requests for exactly the missing numbers and less often each time, digests on
their interval, and each link's view. No database, no broker."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from yixian.contracts import (
    LinkDigest,
    LinkHeartbeat,
    LinkStatusRequested,
    ReplayRequested,
    TopicNames,
)
from yixian.contracts.examples import AT
from yixian.sync.service_layer.links import LinkKeeper, LinkPolicy

from .fakes import FakeTransactions, NodeTables

GUSHI, CHAOYANG = "411525", "110105"
TOPICS = TopicNames()
POLICY = LinkPolicy()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def _keeper(clock: Clock) -> tuple[LinkKeeper, NodeTables]:
    tables = NodeTables(CHAOYANG, clock=clock)
    keeper = LinkKeeper(
        FakeTransactions(tables, TOPICS),
        node=CHAOYANG,
        partners=frozenset({GUSHI}),
        topics=TOPICS,
        policy=POLICY,
        clock=clock,
    )
    return keeper, tables


def _sent(tables: NodeTables, kind: type) -> list:  # type: ignore[type-arg]
    return [e.data for e in tables.sent_to(GUSHI) if isinstance(e.data, kind)]


async def test_an_idle_link_gets_a_heartbeat_a_busy_one_does_not() -> None:
    clock = Clock(AT)
    keeper, tables = _keeper(clock)

    await keeper.tick()  # never sent anything: idle
    [heartbeat] = _sent(tables, LinkHeartbeat)
    assert (heartbeat.source, heartbeat.destination, heartbeat.last_sequence) == (
        CHAOYANG,
        GUSHI,
        0,
    )
    assert tables.links[GUSHI].last_heartbeat_sent_at == AT

    clock.advance(POLICY.heartbeat_interval / 2)
    await keeper.tick()  # the heartbeat itself was the last thing sent
    assert len(_sent(tables, LinkHeartbeat)) == 1

    clock.advance(POLICY.heartbeat_interval)
    await keeper.ask_status(GUSHI)  # the link carries something of its own
    await keeper.tick()
    assert len(_sent(tables, LinkHeartbeat)) == 1
    assert len(_sent(tables, LinkStatusRequested)) == 1

    clock.advance(POLICY.heartbeat_interval)
    await keeper.tick()
    assert len(_sent(tables, LinkHeartbeat)) == 2


async def test_a_link_at_rest_is_looked_at_only_when_something_can_be_due() -> None:
    clock = Clock(AT)
    keeper, tables = _keeper(clock)
    transactions = keeper.transactions
    assert isinstance(transactions, FakeTransactions)
    await keeper.tick()  # the first look: the link's row, a heartbeat
    assert len(_sent(tables, LinkHeartbeat)) == 1

    opened = len(transactions.opened)
    for _ in range(9):  # a second apart, all within the heartbeat interval
        clock.advance(timedelta(seconds=1))
        await keeper.tick()
    assert len(transactions.opened) - opened == 9  # the one question a tick, nothing more
    assert len(_sent(tables, LinkHeartbeat)) == 1

    async with keeper.transactions() as uow:  # the partner's first number arrives
        await uow.store.count_received(GUSHI, 0, 1)
    clock.advance(timedelta(seconds=0.5))
    opened = len(transactions.opened)
    await keeper.tick()  # astir: folded in at once, though nothing is due
    assert len(transactions.opened) - opened == 2
    assert tables.links[GUSHI].contiguous == 1
    assert tables.link_received == {}

    clock.advance(timedelta(seconds=0.5))  # the heartbeat interval since the first
    await keeper.tick()
    assert len(_sent(tables, LinkHeartbeat)) == 2

    async with keeper.transactions() as uow:  # the partner says it sent 3: 2 and 3 missing
        await uow.store.heard_heartbeat(GUSHI, 3, clock.now)
    await keeper.tick()
    assert tables.links[GUSHI].missing_since == clock.now
    clock.advance(POLICY.gap_grace + timedelta(seconds=1))
    await keeper.tick()  # a gap keeps the link astir until it is repaired
    [asked] = _sent(tables, ReplayRequested)
    assert (asked.from_sequence, asked.to_sequence) == (2, 3)


async def test_with_every_link_at_rest_the_keeper_waits_to_be_woken_or_for_what_falls_due() -> None:
    clock = Clock(AT)  # the node's clock stands still: nothing falls due for 10 s
    keeper, tables = _keeper(clock)
    transactions = keeper.transactions
    assert isinstance(transactions, FakeTransactions)
    stop = asyncio.Event()
    running = asyncio.create_task(keeper.run(stop, tick=0.01))

    async def looks(count: int) -> None:
        async with asyncio.timeout(5):
            while len(transactions.opened) < count:
                await asyncio.sleep(0.005)

    await looks(2)  # the question, and the first look at the link: a heartbeat
    await asyncio.sleep(0.3)
    assert len(transactions.opened) == 2  # at rest: thirty ticks' worth, not a question
    async with keeper.transactions() as uow:  # the partner's number 1, applied
        await uow.store.count_received(GUSHI, 0, 1)
    keeper.wake()
    await looks(5)  # at once: the question and the fold
    assert tables.links[GUSHI].contiguous == 1
    async with keeper.transactions() as uow:  # number 3 without 2: astir until repaired
        await uow.store.count_received(GUSHI, 0, 3)
    keeper.wake()
    await looks(12)  # a tick apart while something is missing
    assert tables.links[GUSHI].missing_since == AT
    stop.set()
    await asyncio.wait_for(running, 1)


async def test_a_gap_is_asked_for_exactly_and_less_often_each_time() -> None:
    clock = Clock(AT)
    keeper, tables = _keeper(clock)
    async with keeper.transactions() as uow:
        for seq in (1, 2, 5, 7):
            await uow.store.count_received(GUSHI, 0, seq)

    await keeper.tick()  # within the grace period: the gap may still fill
    assert _sent(tables, ReplayRequested) == []

    clock.advance(POLICY.gap_grace + timedelta(seconds=1))
    await keeper.tick()
    [first] = _sent(tables, ReplayRequested)
    assert (first.from_sequence, first.to_sequence) == (3, 6)
    assert [(r.first, r.last) for r in first.ranges or ()] == [(3, 4), (6, 6)]
    assert tables.links[GUSHI].replay_attempts == 1

    now = clock.advance(timedelta(seconds=1))
    async with keeper.transactions() as uow:
        await uow.store.heard_heartbeat(GUSHI, 7, now)
    await keeper.tick()  # asked a moment ago: not again yet
    assert len(_sent(tables, ReplayRequested)) == 1

    waits = []
    for _ in range(3):
        asked = tables.links[GUSHI].replay_requested_at
        before = len(_sent(tables, ReplayRequested))
        for _ in range(100):  # the partner's heartbeats keep the link from going silent
            now = clock.advance(timedelta(seconds=3))
            async with keeper.transactions() as uow:
                await uow.store.heard_heartbeat(GUSHI, 7, now)
            await keeper.tick()
            if len(_sent(tables, ReplayRequested)) > before:
                break
        assert asked is not None
        waits.append(tables.links[GUSHI].replay_requested_at - asked)  # type: ignore[operator]
    assert waits == sorted(waits)  # backs off
    assert waits[-1] > waits[0]
    assert max(waits) <= POLICY.replay_backoff_max + timedelta(seconds=3)

    async with keeper.transactions() as uow:  # the numbers arrive
        for seq in (3, 4, 6):
            await uow.store.count_received(GUSHI, 0, seq)
    clock.advance(POLICY.replay_backoff_max * 2)
    asked = len(_sent(tables, ReplayRequested))
    await keeper.tick()
    assert len(_sent(tables, ReplayRequested)) == asked
    assert tables.links[GUSHI].contiguous == 7
    assert tables.links[GUSHI].replay_attempts == 0


async def test_a_digest_goes_on_its_interval_and_at_once_on_demand() -> None:
    clock = Clock(AT)
    keeper, tables = _keeper(clock)

    await keeper.tick()
    [digest] = _sent(tables, LinkDigest)
    assert digest.bucket_count == POLICY.bucket_count
    assert digest.as_of_sequence == 0
    assert tables.links[GUSHI].last_digest_sent_at == AT

    clock.advance(POLICY.digest_interval - timedelta(seconds=1))
    await keeper.tick()
    assert len(_sent(tables, LinkDigest)) == 1

    await keeper.anti_entropy_now(GUSHI)
    assert len(_sent(tables, LinkDigest)) == 2

    clock.advance(POLICY.digest_interval)
    await keeper.tick()
    assert len(_sent(tables, LinkDigest)) == 3


async def test_the_views_say_what_each_link_knows() -> None:
    clock = Clock(AT)
    keeper, _ = _keeper(clock)
    async with keeper.transactions() as uow:
        await uow.store.count_received(GUSHI, 0, 1)
        await uow.store.count_received(GUSHI, 0, 3)
        await uow.store.heard_heartbeat(GUSHI, 4, AT)
        await uow.store.save_partner_view(GUSHI, {"state": "healthy"})

    [view] = await keeper.views()
    assert (view.partner, view.epoch, view.contiguous, view.max_seen) == (GUSHI, 0, 1, 3)
    assert view.partner_sent == 4
    assert view.missing == [2, 4]
    assert view.partner_view == {"state": "healthy"}
    assert view.last_sent == 0
    assert view.as_json()["received_up_to"] == 1
