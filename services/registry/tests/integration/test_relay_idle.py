"""An idle relay waits for a notification, not for its next look: a registration and pair
events put back in its queue (a partner's replay request) are sent at once, though the
relay would look again on its own only much later."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from yixian.record.outbox import Outbox
from yixian.record.relay import OutboxRelay, RelaySettings

from .conftest import CHAOYANG, Node, outflow

pytestmark = pytest.mark.integration


@asynccontextmanager
async def idle_relay(node: Node) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(
        node.pool,
        node.settings.kafka,
        client_id="idle-relay-test",
        settings=RelaySettings(idle_wait=600),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _sent(node: Node, published: int, within: float = 20) -> None:
    async with asyncio.timeout(within):
        while True:
            rows = await node.outbox()
            if sum(r["published_at"] is not None for r in rows) >= published and all(
                r["published_at"] is not None for r in rows
            ):
                return
            await asyncio.sleep(0.05)


async def test_an_idle_relay_sends_what_is_queued_and_requeued_at_once(gushi: Node) -> None:
    branch = await gushi.org("支部")
    member = await gushi.member(branch)
    async with idle_relay(gushi) as relay:
        async with asyncio.timeout(20):  # nothing to send yet: the relay waits, leading
            while not relay.is_leader:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # into its idle wait
        await gushi.post("/v1/movements", outflow(member), expect=201)
        await _sent(gushi, 2)  # the pair event and the local one
        first = relay.published
        assert first == 2

        async with gushi.pool.acquire() as conn, conn.transaction():
            epoch = await conn.fetchval(
                "SELECT epoch FROM pair_sequences WHERE destination = $1", CHAOYANG
            )
            requeued, held = await Outbox(conn).requeue(CHAOYANG, epoch, [(1, 1)])
        assert (requeued, held) == (1, 1)
        async with asyncio.timeout(20):
            while relay.published < first + 1:
                await asyncio.sleep(0.05)
        assert all(r["published_at"] is not None for r in await gushi.outbox())
