"""The chaos drill (``make chaos``): a run of 20,000 pair events between Gushi and Chaoyang
while every service of both nodes is killed with ``kill -9`` at random moments, the broker
is killed and restarted once and PostgreSQL once. Afterwards every replica is identical on
both sides, nothing accepted is lost, each event was applied once and every notice was
delivered once (a repeat of a notice in flight at a kill carries the same notice key, which
receivers drop). It prints the counts.

Every request the load makes carries an Idempotency-Key and is retried until it gets an
answer, as a real client of the API would do across an outage.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest

from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, Process, eventually
from yixian.localstack.sinks import HttpSink, MailSink

from .conftest import NetworkFactory, channels
from .test_sync_scenarios import CHAOYANG, GUSHI

MOVEMENTS = int(os.environ.get("YIXIAN_CHAOS_MOVEMENTS", "4000"))  # × 5 pair events each
CONCURRENCY = 24
SEED = int(os.environ.get("YIXIAN_CHAOS_SEED", str(random.randrange(1 << 30))))

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(3600)]


class Load:
    """Requests that survive outages: same Idempotency-Key, retried until answered."""

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=30)
        self.retries = 0

    async def call(
        self, node: LocalNode, method: str, path: str, key: str, body: Any = None
    ) -> Any:
        while True:
            url = node.registry.url  # a restarted registry listens on a new port
            try:
                if url is None or not node.registry.running:
                    raise httpx.ConnectError("registry down")
                response = await self.client.request(
                    method,
                    url + path,
                    json=body,
                    headers={"Authorization": f"Bearer {node.key}", "Idempotency-Key": key},
                )
            except httpx.HTTPError:
                self.retries += 1
                await asyncio.sleep(0.5)
                continue
            if response.status_code >= 500 or response.status_code == 409:  # 409: in flight
                self.retries += 1
                await asyncio.sleep(0.5)
                continue
            assert response.status_code < 400, f"{path}: {response.status_code} {response.text}"
            return response.json()


class Chaos:
    """kill -9 each service once at a random moment (then more at random), the broker once
    and PostgreSQL once."""

    def __init__(self, stack: LocalStack, nodes: dict[str, LocalNode], rng: random.Random) -> None:
        self.stack = stack
        self.rng = rng
        self.processes: list[Process] = [p for n in nodes.values() for p in n.processes]
        self.log: list[str] = []
        self.done = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        plan: list[Process | str] = list(self.processes)
        self.rng.shuffle(plan)
        plan.insert(self.rng.randrange(2, len(plan)), "kafka")
        plan.insert(self.rng.randrange(3, len(plan)), "postgres")
        while not stop.is_set():
            await asyncio.sleep(self.rng.uniform(3, 9))
            victim = plan.pop(0) if plan else self.rng.choice(self.processes)
            await asyncio.to_thread(self._strike, victim)
            if not plan:
                self.done.set()

    def _strike(self, victim: Process | str) -> None:
        started = time.monotonic()
        if victim == "kafka":
            self.stack.kafka.kill()
            time.sleep(self.rng.uniform(2, 6))
            self.stack.kafka.start()
        elif victim == "postgres":
            self.stack.postgres.kill()
            time.sleep(self.rng.uniform(1, 3))
            self.stack.postgres.start()
        else:
            assert isinstance(victim, Process)
            victim.kill()
            time.sleep(self.rng.uniform(0.5, 2))
            victim.start(timeout=120)
        name = victim if isinstance(victim, str) else victim.name
        self.log.append(f"kill -9 {name}, back after {time.monotonic() - started:.1f}s")


async def _count(node: LocalNode, sql: str, *args: Any) -> int:
    return int(await node.value(sql, *args) or 0)


async def test_chaos_drill(
    network: NetworkFactory, local_stack: LocalStack, mail: MailSink, http: HttpSink
) -> None:
    rng = random.Random(SEED)
    print(f"\nchaos drill: {MOVEMENTS} movements, 5 pair events each, seed {SEED}")
    nodes = await network(
        [GUSHI, CHAOYANG],
        **channels(mail, http),
        YIXIAN_SMS_PER_SECOND="2000",
        YIXIAN_EMAIL_PER_SECOND="2000",
        YIXIAN_DISPATCH_CONCURRENCY="16",
    )
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("外出党员支部", contact_email="branch@gushi.example")
    await chaoyang.query(
        "UPDATE organizations SET contact_email = 'root@chaoyang.example' WHERE parent_id IS NULL"
    )
    committee = await chaoyang.org("流动党员工作委员会", contact_email="wc@chaoyang.example")
    members = await gushi.import_members(branch, MOVEMENTS, phones=True)

    load = Load()
    chaos = Chaos(local_stack, nodes, rng)
    stop = asyncio.Event()
    striking = asyncio.create_task(chaos.run(stop))
    started = time.monotonic()
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def guarded(work: Awaitable[Any]) -> Any:
        """``work``, unless the chaos itself fails first: then its error, at once."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, striking}, return_when=asyncio.FIRST_COMPLETED)
        if striking.done() and not task.done() and striking.exception() is not None:
            task.cancel()
            raise AssertionError("the chaos could not go on") from striking.exception()
        return await task

    async def each(work: Any, items: list[Any]) -> list[Any]:
        async def one(item: Any) -> Any:
            async with semaphore:
                return await work(item)

        return list(await asyncio.gather(*(one(i) for i in items)))

    async def register(member: Any) -> str:
        body = {
            "member_id": str(member),
            "destination": {"jurisdiction": CHAOYANG, "place": "北京市朝阳区"},
            "period": {"departed_on": "2026-03-01"},
            "contact": {"phone": f"+86 139 {member.int % 10**8:08d}"},
            "reason": {"kind": "work"},
        }
        created = await load.call(gushi, "POST", "/v1/movements", f"register-{member}", body)
        return str(created["movement_id"])

    movements = await guarded(each(register, members))

    counts = {
        "origin_status": "SELECT count(*) FROM movements WHERE origin_status = $1 AND origin = $2",
        "host_status": "SELECT count(*) FROM movements WHERE host_status = $1 AND origin = $2",
    }

    async def host_has(state: str, node: LocalNode, column: str) -> bool:
        return await _count(node, counts[column], state, GUSHI) == MOVEMENTS

    await guarded(
        eventually(
            lambda: host_has("registered", chaoyang, "origin_status"),
            what="replicas at Chaoyang",
            within=900,
        )
    )

    async def check_in(movement: str) -> None:
        await load.call(
            chaoyang, "POST", f"/v1/movements/{movement}/check-in", f"check-in-{movement}",
            {"host_org_id": str(committee)},
        )  # fmt: skip

    await guarded(each(check_in, movements))

    async def participate(movement: str) -> None:
        body = {
            "participation_id": str(uuid.uuid5(uuid.NAMESPACE_URL, movement)),
            "kind": "theme_day",
            "title": "主题党日",
            "attended_at": "2026-04-01T01:00:00Z",
        }
        await load.call(
            chaoyang, "POST", f"/v1/movements/{movement}/participations", f"p-{movement}", body
        )

    await guarded(each(participate, movements))
    await guarded(
        eventually(
            lambda: host_has("checked_in", gushi, "host_status"),
            what="check-ins at Gushi",
            within=900,
        )
    )

    async def come_back(movement: str) -> None:
        await load.call(
            gushi, "POST", f"/v1/movements/{movement}/return", f"return-{movement}",
            {"returned_on": "2026-07-01"},
        )  # fmt: skip

    await guarded(each(come_back, movements))
    load_seconds = time.monotonic() - started
    await chaos.done.wait()  # every service, the broker and PostgreSQL had their turn
    stop.set()
    await striking

    # -- afterwards -----------------------------------------------------------------------
    for node in nodes.values():
        for process in node.processes:
            assert process.running, f"{process.name} died on its own"

    query = (
        "SELECT movement_id, origin_version, host_version, origin_group::text, host_group::text"
        " FROM movements WHERE origin = $1 ORDER BY movement_id"
    )

    async def identical() -> bool:
        return await gushi.query(query, GUSHI) == await chaoyang.query(query, GUSHI)

    await eventually(identical, what="identical replicas", within=900)
    for node in nodes.values():
        closed = await _count(
            node, "SELECT count(*) FROM movements WHERE origin = $1 AND origin_status = 'returned'"
            " AND host_status = 'checked_in'", GUSHI,
        )  # fmt: skip
        assert closed == MOVEMENTS, node.code
    participations = await _count(gushi, "SELECT count(*) FROM participations")
    assert participations == MOVEMENTS

    async def notices_settled() -> bool:
        pending = [
            await _count(n, "SELECT count(*) FROM notices WHERE status = 'pending'")
            for n in nodes.values()
        ]
        return sum(pending) == 0

    await eventually(notices_settled, what="every notice sent", within=900)
    sent_keys: Counter[str] = Counter()
    for node in nodes.values():
        for row in await node.query("SELECT notice_key, status FROM notices"):
            assert row["status"] == "sent", dict(row)
            sent_keys[row["notice_key"].strip()] += 1
    received = Counter(
        [r.json()["id"] for r in http.requests if r.path.endswith("/messages")]
        + [m.message_id.strip().strip("<>").split("@")[0] for m in mail.mails]
    )
    assert set(received) == set(sent_keys), "a notice was lost or one not planned arrived"
    repeats = sum(n - 1 for n in received.values())

    applied = {
        code: await _count(node, "SELECT count(*) FROM inbox WHERE outcome = 'applied'")
        for code, node in nodes.items()
    }
    published = {
        code: await _count(node, "SELECT count(*) FROM outbox WHERE destination IS NOT NULL")
        for code, node in nodes.items()
    }
    movement_changes = {
        code: await _count(
            node, "SELECT count(*) FROM outbox WHERE destination IS NOT NULL"
            " AND movement_id IS NOT NULL",
        )
        for code, node in nodes.items()
    }  # fmt: skip
    pair_events = sum(movement_changes.values())
    assert pair_events >= 4 * MOVEMENTS
    print(f"load: {load_seconds:.0f}s, {load.retries} retried requests")
    for line in chaos.log:
        print(f"  {line}")
    print(f"pair events (movement changes): {pair_events}")
    print(f"pair events published per node: {published}")
    print(f"events applied per node, each once: {applied}")
    print(f"movements identical on both sides: {MOVEMENTS}; participations: {participations}")
    print(f"notices sent: {len(sent_keys)}, received: {len(received)} distinct,"
          f" {repeats} repeats of in-flight notices dropped by key")  # fmt: skip
