"""The figures, measured on two live nodes (Gushi → Chaoyang), every service a real
process on the local stack. Times come from the databases' clocks where a figure spans
processes (commit in Gushi's outbox, apply in Chaoyang's inbox: the same machine)."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import asyncpg
from confluent_kafka import Producer

from yixian.contracts import TopicNames
from yixian.contracts.examples import origin_group_stream
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, Process, commit_and_apply, node_env
from yixian.localstack.sinks import HttpSink
from yixian.ops.trace import TopicHops, database_hops, read_topic_hops, resolve, timeline
from yixian.runtime.settings import KafkaSettings

from . import ceilings, replay
from .console import console_screens
from .report import Figure, Report

GUSHI, CHAOYANG = "411525", "110105"
CLOSED_LOOP_CLIENTS = 32
IN_FLIGHT = 128
"""The open loop's bound on outstanding registrations."""
Say = Callable[[str], None]
Register = Callable[[UUID], Coroutine[Any, Any, str | None]]


@dataclass(frozen=True)
class Sizes:
    imported: int = 100_000
    relay: int = 100_000
    apply: int = 50_000
    notices: int = 20_000
    sustained_seconds: int = 60
    rate_seconds: int = 20
    rates: tuple[int, ...] = (500, 2000)
    kafka_records: int = 200_000
    pgbench_seconds: int = 15
    trace_events: int = 2_000_000
    """Records of other movements put on the host's incoming pair topic before a trace."""
    tiny: bool = False
    """Checks the benchmark, not speed (``Sizes.smoke``)."""
    console_movements: int = 200_000
    console_requests: int = 20
    replay: int = 200_000
    """Events on the pair topic of the replay figure measured alone (``--only replay``)."""
    only_end_to_end: bool = False
    """The closed loop alone, with the members it needs and its CPU per movement: no other
    figure, no open loops after it (``--only end-to-end``)."""
    only_node_host: bool = False
    """The node host's figures alone (``--only node-host``)."""
    host_nodes: int = 20
    """Idle nodes put on one node host."""
    host_idle_seconds: int = 60
    """The window the idle nodes, the empty host and the single node are measured over."""
    host_members: int = 20_000
    host_loop_seconds: int = 30
    """The closed loop between two nodes of the host."""

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            imported=3000, relay=2000, apply=1000, notices=300, sustained_seconds=4,
            rate_seconds=3, rates=(50,), kafka_records=5000, pgbench_seconds=2,
            trace_events=5000, tiny=True, console_movements=2000, console_requests=3,
            replay=2000, host_nodes=2, host_idle_seconds=3, host_members=1000,
            host_loop_seconds=3,
        )  # fmt: skip


def produce_others(bootstrap: str, topic: str, count: int) -> None:
    """``count`` records of other movements, as fast as the broker takes them: a movement
    id for a key (as the relay keys), ~100 bytes of value."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
         "acks": "all", "compression.type": "none"}
    )  # fmt: skip
    filler = b"x" * 40
    for i in range(count):
        raw = os.urandom(16).hex()
        key = f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}".encode()
        value = b'{"movement": "%b", "filler": "%b", "n": %d}' % (key, filler, i)
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(600) != 0:
        raise RuntimeError("records left unsent")


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command's name (state first), or none
    if the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cpu(pid: int | str, *, reaped: bool = False) -> float:
    """User + system CPU a process has used so far, seconds (0 if it is gone); with
    ``reaped``, also that of its children which ended and which it waited for."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int | str) -> float:
    """User + system CPU a process has used so far, seconds (0 if it is gone)."""
    return _cpu(pid)


def cpu_seconds(process: Process) -> float:
    return 0.0 if process.popen is None else _cpu(process.popen.pid)


async def postmaster_pid(database_url: str) -> int:
    """The PostgreSQL server's main process: the parent of a backend (a local server)."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(_stat(await conn.fetchval("SELECT pg_backend_pid()"))[1])
    finally:
        await conn.close()


def stack_cpu(postmaster: int, broker: int | None) -> dict[str, float]:
    """CPU used so far by what the services share: the PostgreSQL server (its main process,
    its live processes and those that ended, so that a connection closed during a window
    does not take its CPU out of it), the stack's Kafka broker (every broker on the machine
    if its pid is not known), and this process, the load generator (seconds, by name)."""
    totals = {"postgresql": _cpu(postmaster, reaped=True), "kafka": 0.0}
    if broker is not None:
        totals["kafka"] = _cpu(broker)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            command = (entry / "cmdline").read_bytes() if comm == "java" else b""
        except OSError:
            continue
        if comm == "postgres" and _stat(entry.name)[1:2] == [str(postmaster)]:
            totals["postgresql"] += _cpu(entry.name)
        elif broker is None and b"kafka.Kafka" in command:
            totals["kafka"] += _cpu(entry.name)
    totals["load generator"] = _cpu(os.getpid())
    return totals


def peak_rss_mib(process: Process) -> float:
    """The process's peak resident memory (VmHWM), MiB."""
    if process.popen is None:
        return 0.0
    status = Path(f"/proc/{process.popen.pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out: {what}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def registrations(registry_url: str, key: str, destination: str) -> AsyncIterator[Register]:
    """Registrations of outflows to ``destination`` at the registry of ``registry_url``
    (under a node host, ``<host>/nodes/<code>``), one request each: ``register(member)``
    is the movement's id, or None if refused."""
    # aiohttp: an eighth of httpx's CPU per request, which the load generator takes from
    # the same two cores as the services it measures
    client = aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {key}"},
        timeout=aiohttp.ClientTimeout(total=60),
        connector=aiohttp.TCPConnector(limit=IN_FLIGHT),
    )
    url = f"{registry_url}/v1/movements"

    async def register(member: UUID) -> str | None:
        body = {
            "member_id": str(member),
            "destination": {"jurisdiction": destination, "place": "北京市朝阳区"},
            "period": {"departed_on": "2026-03-01"},
            "contact": {"phone": "+86 139 0000 0000"},
            "reason": {"kind": "work"},
        }
        try:
            async with client.post(url, json=body) as response:
                if response.status != 201:
                    return None
                return str((await response.json())["movement_id"])
        except (aiohttp.ClientError, TimeoutError):
            return None

    try:
        yield register
    finally:
        await client.close()


async def closed_loop(
    members: list[UUID], register: Register, seconds: float
) -> tuple[list[str], int]:
    """As fast as the origin takes commits for ``seconds``, ``CLOSED_LOOP_CLIENTS`` clients
    each sending its next registration when the last one is answered: the movements made,
    how many failed."""
    done: list[str] = []
    failed = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal failed
        while time.monotonic() < deadline and members:
            movement = await register(members.pop())
            if movement is None:
                failed += 1
            else:
                done.append(movement)

    await asyncio.gather(*(worker() for _ in range(CLOSED_LOOP_CLIENTS)))
    return done, failed


async def applied(origin: LocalNode, host: LocalNode, movements: list[str]) -> float:
    """Wait until ``host`` applied every movement ``origin`` registered; movements/s from
    the first commit to the last apply."""
    ids = [UUID(m) for m in movements]
    if not ids:
        return 0.0

    async def arrived() -> bool:
        count = await host.value(
            "SELECT count(*) FROM inbox WHERE movement_id = ANY($1::uuid[])", ids
        )
        return int(count) >= len(ids)

    await _until(arrived, 900, "the host applies the movements")
    times = await commit_and_apply(origin, host, ids)
    span = (
        max(applied for _, applied in times.values())
        - min(committed for committed, _ in times.values())
    ).total_seconds()
    return len(ids) / span


class Bench:
    def __init__(self, stack: LocalStack, sizes: Sizes, say: Say) -> None:
        self.stack = stack
        self.sizes = sizes
        self.say = say
        self.topics = TopicNames(f"bench{uuid4().hex[:6]}")
        self.report = Report(smoke=sizes.tiny)
        self.nodes: dict[str, LocalNode] = {}
        self.webhook = HttpSink()
        self.logs = Path(tempfile.mkdtemp(prefix="yixian-bench-"))

    # -- network ------------------------------------------------------------------------

    async def start(self) -> None:
        self.webhook.start()
        for code in (GUSHI, CHAOYANG):
            url = await self.stack.fresh_database(f"bench_{code}")
            partners = [c for c in (GUSHI, CHAOYANG) if c != code]
            env = node_env(self.stack, code, url, self.topics, partners) | {
                "YIXIAN_WEBHOOK_SECRET": "bench-webhook-secret",
                "YIXIAN_WEBHOOK_PER_SECOND": "1000000",
                "YIXIAN_QUIET_START": "00:00",
                "YIXIAN_QUIET_END": "00:00",
                "YIXIAN_HEARTBEAT_SECONDS": "5",
            }
            node = LocalNode(code, f"bench {code}", url, env, self.logs, with_notify=True)
            node.init()
            node.start()
            self.nodes[code] = node
        self.say(f"two nodes up; logs in {self.logs}")

    async def stop(self) -> None:
        for node in self.nodes.values():
            if node.http is not None:
                await node.http.aclose()
            node.stop()
        self.webhook.stop()

    @property
    def gushi(self) -> LocalNode:
        return self.nodes[GUSHI]

    @property
    def chaoyang(self) -> LocalNode:
        return self.nodes[CHAOYANG]

    # -- figures ------------------------------------------------------------------------

    async def run(self) -> Report:
        if self.sizes.only_node_host:
            await self.node_host()
            return self.report
        if self.sizes.only_end_to_end:
            await self.start()
            try:
                await self.import_members()
                # what autovacuum would do after the import, before the window, not in it
                await self.gushi.query("VACUUM ANALYZE members")
                await self.end_to_end()
            finally:
                await self.stop()
            return self.report
        # first, while no node's processes share the cores
        await console_screens(
            self.stack, self.report, movements=self.sizes.console_movements,
            requests=self.sizes.console_requests, say=self.say,
        )  # fmt: skip
        await self.node_host()  # before the two nodes start: idle figures want them gone
        await self.start()
        try:
            await self.import_members()
            await self.relay()
            await self.apply_and_replay()
            await self.end_to_end()
            await self.notify()
            self.memory()
            await self.ceilings()
            await self.trace()  # last: it leaves the host's inbox millions of rows larger
        finally:
            await self.stop()
        return self.report

    async def import_members(self) -> None:
        n = self.sizes.imported
        branch = await self.gushi.org("外出党员支部")
        self.branch = branch
        rows = "".join(f"{branch},党员{i},2008-07-01,+86 138 {i:08d}\n" for i in range(n))
        body = f"org_id,name,joined_on,phone\n{rows}".encode()
        assert self.gushi.http is not None
        started = time.monotonic()
        response = await self.gushi.http.post(
            "/v1/members/import", content=body, headers={"Content-Type": "text/csv"}, timeout=600
        )
        elapsed = time.monotonic() - started
        assert response.json()["accepted"] == n, response.text
        rows_back = await self.gushi.query(
            "SELECT member_id FROM members WHERE org_id = $1", branch
        )
        self.members = [r["member_id"] for r in rows_back]
        self.report.add("import", Figure(
            "import", n / elapsed, "members/s", f"{n:,} members, one streamed CSV request",
            target="≥ 100,000 members/s",
        ))  # fmt: skip
        self.say(f"import: {n / elapsed:,.0f} members/s")

    async def _event_value(self) -> bytes:
        return origin_group_stream(GUSHI, 1)[0][1]

    async def relay(self) -> None:
        n = self.sizes.relay
        self.gushi.relay.stop()
        value = await self._event_value()
        topic = self.topics.local(GUSHI) + ".relaybench"
        await self.gushi.query(
            "INSERT INTO outbox (event_id, event_type, topic, record_key, value, trace_id)"
            " SELECT gen_random_uuid(), 'yixian.movement.origin_group.v1', $1,"
            " convert_to(g::text, 'UTF8'), $2, repeat('0', 32) FROM generate_series(1, $3) g",
            topic, value, n,
        )  # fmt: skip
        started = time.monotonic()
        self.gushi.relay.start()

        async def drained() -> bool:
            left = await self.gushi.value("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            return int(left) == 0

        await _until(drained, 900, "the relay drains the outbox")
        elapsed = time.monotonic() - started
        self.report.add("relay", Figure(
            "relay", n / elapsed, "rows/s", f"a backlog of {n:,} outbox rows of {len(value)} B,"
            " process start included", target="≥ 2× faststream-outbox", against="peer_relay",
        ))  # fmt: skip
        self.say(f"relay: {n / elapsed:,.0f} rows/s")
        peer_topic = f"{self.topics.namespace}.peer.relaybench"
        rate = await ceilings.peer_relay(self.stack, self.gushi.database_url, peer_topic, value, n)
        self.report.add("peer_relay", Figure(
            "faststream-outbox relay (peer)", rate, "rows/s",
            "the same backlog in its own table, same PostgreSQL and Kafka",
        ))  # fmt: skip
        self.say(f"peer relay: {rate:,.0f} rows/s")

    async def apply_and_replay(self) -> None:
        n = self.sizes.apply
        chaoyang = self.chaoyang
        chaoyang.sync.stop()
        topic = self.topics.pair(GUSHI, CHAOYANG)
        records = origin_group_stream(GUSHI, n)
        # the pair topic already carries this run's heartbeats: number after them
        await asyncio.to_thread(ceilings.produce, self.stack.config.kafka_bootstrap, topic, records)
        before = int(await chaoyang.value("SELECT count(*) FROM inbox"))
        started = time.monotonic()
        chaoyang.sync.start()

        async def applied() -> bool:
            return int(await chaoyang.value("SELECT count(*) FROM inbox")) >= before + n

        await _until(applied, 900, "sync applies the backlog")
        elapsed = time.monotonic() - started
        self.report.add("apply", Figure(
            "apply", n / elapsed, "events/s", f"a backlog of {n:,} partner events,"
            " process start included", against="postgres", target="",
        ))  # fmt: skip
        self.say(f"apply: {n / elapsed:,.0f} events/s")

        chaoyang.sync.stop()
        self.gushi.sync.stop()  # no heartbeats arriving while the topic is read back
        bootstrap = self.stack.config.kafka_bootstrap
        total = await asyncio.to_thread(ceilings.topic_size, bootstrap, topic)
        rebuilt = await replay.rebuild(chaoyang.sync.env, GUSHI, self.logs / "rebuild.log")
        consumed = await asyncio.to_thread(
            ceilings.kafka_consumer_ceiling, self.stack, topic, total
        )
        replay.add_replay(self.report, rebuilt, consumed, what="after live apply")
        self.say(f"replay: {rebuilt.rate:,.0f} events/s ({rebuilt.wall:.1f} s wall); Kafka's"
                 f" consumer on the same topic {consumed:,.0f} records/s")  # fmt: skip
        chaoyang.sync.start()
        self.gushi.sync.start()

    async def end_to_end(self) -> None:
        members = list(self.members)
        gushi = self.gushi
        # aiohttp: an eighth of httpx's CPU per request, which the load generator takes
        # from the same two cores as the services it measures
        client = aiohttp.ClientSession(
            base_url=gushi.registry.url or "",
            headers={"Authorization": f"Bearer {gushi.key}"},
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=IN_FLIGHT),
        )

        async def register(member: UUID) -> str | None:
            """The movement's id, or None if the registry refused or dropped the request."""
            body = {
                "member_id": str(member),
                "destination": {"jurisdiction": CHAOYANG, "place": "北京市朝阳区"},
                "period": {"departed_on": "2026-03-01"},
                "contact": {"phone": "+86 139 0000 0000"},
                "reason": {"kind": "work"},
            }
            try:
                async with client.post("/v1/movements", json=body) as response:
                    if response.status != 201:
                        return None
                    return str((await response.json())["movement_id"])
            except (aiohttp.ClientError, TimeoutError):
                return None

        try:
            sustained = await self._sustained(members, register)
            if self.sizes.only_end_to_end:
                return
            # where the pipeline is not saturated: what a movement waits for, not a queue
            await self._quiet()
            await self._open_loop(members, register, max(1, round(sustained / 2)), "half")
            for rate in self.sizes.rates:
                await self._quiet()
                await self._open_loop(members, register, rate)
        finally:
            await client.close()

    async def _quiet(self, within: float = 180) -> None:
        """Wait until the services have worked off what the last phase left them (notices
        to plan, events to announce): together under a tenth of a core for a second."""
        processes = [p for node in self.nodes.values() for p in node.processes]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            before = sum(cpu_seconds(p) for p in processes)
            await asyncio.sleep(1)
            if sum(cpu_seconds(p) for p in processes) - before < 0.1:
                return
        self.say("the services did not go quiet; measuring anyway")

    async def _sustained(self, members: list[UUID], register: Register) -> float:
        """As fast as the origin takes commits, for the whole window (closed loop); with
        the CPU each service spent per movement."""
        window = self.sizes.sustained_seconds
        processes = [p for node in self.nodes.values() for p in node.processes]
        postmaster = await postmaster_pid(self.gushi.database_url)
        broker = self.stack.kafka.pid()
        cpu_before = {p.name: cpu_seconds(p) for p in processes} | stack_cpu(postmaster, broker)
        done, failed = await closed_loop(members, register, window)
        throughput, latencies = await self._applied(done, "sustained")
        p50, p95, p99 = _percentiles(latencies)
        self.report.add("e2e_throughput", Figure(
            "end-to-end throughput", throughput, "movements/s",
            f"origin commit → host replica applied, {window} s of closed-loop HTTP load"
            f" ({CLOSED_LOOP_CLIENTS} clients); each movement is 2 pair events + 2 local",
            target="≥ 10,000 events/s; ≥ 0.5× PostgreSQL", against="postgres",
            detail={"movements": len(done), "failed": failed, "p50_ms": p50, "p95_ms": p95,
                    "p99_ms": p99},
        ))  # fmt: skip
        self.say(f"end-to-end: {throughput:,.0f} movements/s ({failed} failed)")
        cpu_after = {p.name: cpu_seconds(p) for p in processes} | stack_cpu(postmaster, broker)
        per_movement = {
            name: (cpu_after[name] - before) * 1000 / max(len(done), 1)
            for name, before in cpu_before.items()
        }
        for name, ms in per_movement.items():
            self.report.add(f"cpu_{name.replace(' ', '_')}", Figure(
                f"CPU per movement, {name}", ms,
                "ms/movement", "user + system CPU during the closed loop, / movements",
            ))  # fmt: skip
        pipeline = sum(ms for name, ms in per_movement.items() if name != "load generator")
        self.report.add("e2e_cpu_per_movement", Figure(
            "CPU per movement, whole pipeline", pipeline, "ms/movement", "the eight service"
            " processes, PostgreSQL and Kafka (not the load generator) during the closed loop,"
            " / movements", target="≤ 5 ms",
        ))  # fmt: skip
        shares = ", ".join(f"{name} {ms:.2f}" for name, ms in per_movement.items())
        self.say(f"CPU per movement: {sum(per_movement.values()):.2f} ms ({shares})")
        return throughput

    async def node_host(self) -> None:
        """Idle nodes on a node host and two of them exchanging movements (``hosting``)."""
        from .hosting import NodeHostPhase  # it builds on this module's loops

        await NodeHostPhase(self.stack, self.report, self.sizes, self.say, self.logs).run()

    async def _open_loop(
        self, members: list[UUID], register: Register, rate: int, name: str | None = None
    ) -> None:
        """Registrations offered at a fixed rate, whatever the registry's pace; at most
        ``IN_FLIGHT`` outstanding: a registration due while that many are pending is shed
        (counted), so an overloaded registry is reported, not piled up on."""
        count = min(rate * self.sizes.rate_seconds, len(members))
        chosen = [members.pop() for _ in range(count)]
        pending: set[asyncio.Task[str | None]] = set()
        tasks: list[asyncio.Task[str | None]] = []
        shed = 0
        started = time.monotonic()
        for i, member in enumerate(chosen):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            if len(pending) >= IN_FLIGHT:
                shed += 1
                continue
            task = asyncio.create_task(register(member))
            pending.add(task)
            task.add_done_callback(pending.discard)
            tasks.append(task)
        outcomes = await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        ids = [m for m in outcomes if m is not None]
        failed = len(outcomes) - len(ids)
        achieved = len(ids) / elapsed
        _, latencies = await self._applied(ids, f"{rate}/s")
        p50, p95, p99 = _percentiles(latencies)
        label = f"{rate}/s" if name is None else f"{rate}/s (half the sustained rate)"
        self.report.add(f"latency_{name or rate}", Figure(
            f"e2e latency at {label}", p99, "ms p99",
            f"open loop, {self.sizes.rate_seconds} s, ≤ {IN_FLIGHT} in flight;"
            f" committed {achieved:,.0f}/s, shed {shed}, failed {failed}",
            target="p99 ≤ 100 ms at 500/s" if rate == 500 else "",
            detail={"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "offered": rate,
                    "achieved": achieved, "shed": shed, "failed": failed},
        ))  # fmt: skip
        self.say(f"latency at {label} (committed {achieved:,.0f}/s, shed {shed}, failed"
                 f" {failed}): p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")  # fmt: skip

    async def _applied(self, movements: list[str], what: str) -> tuple[float, list[float]]:
        """Wait until the host applied every movement; (movements/s from the first commit
        to the last apply, each one's commit → apply latency in ms)."""
        ids = [UUID(m) for m in movements]
        if not ids:
            return 0.0, []

        # one connection for the polls: a connection's start is a process of the server,
        # whose CPU the figures count
        conn = await asyncpg.connect(self.chaoyang.database_url)
        try:

            async def arrived() -> bool:
                count = await conn.fetchval(
                    "SELECT count(*) FROM inbox WHERE movement_id = ANY($1::uuid[])", ids
                )
                return int(count) >= len(ids)

            await _until(arrived, 900, f"the host applies the {what} movements")
        finally:
            await conn.close()
        times = await commit_and_apply(self.gushi, self.chaoyang, ids)
        latencies = [
            (applied - committed).total_seconds() * 1000 for committed, applied in times.values()
        ]
        span = (
            max(applied for _, applied in times.values())
            - min(committed for committed, _ in times.values())
        ).total_seconds()
        return len(ids) / span, latencies

    async def notify(self) -> None:
        n = self.sizes.notices
        gushi = self.gushi
        gushi.notify.stop()
        await gushi.query(
            "INSERT INTO notices (notice_key, reason, recipient, channel, address, language,"
            " subject, body, status) SELECT encode(sha256(convert_to($1 || g::text, 'UTF8')),"
            " 'hex'), 'bench', 'origin_secretary', 'webhook', $2, 'zh-CN', '通知', '正文',"
            " 'pending' FROM generate_series(1, $3) g",
            uuid4().hex, f"{self.webhook.url}/hook", n,
        )  # fmt: skip
        started = time.monotonic()
        gushi.notify.start()

        async def sent() -> bool:
            left = await gushi.value("SELECT count(*) FROM notices WHERE status = 'pending'")
            return int(left) == 0

        await _until(sent, 900, "notify sends every notice")
        elapsed = time.monotonic() - started
        keys = [r.headers.get("X-Yixian-Notice-Id") for r in self.webhook.requests]
        distinct = len(set(keys))
        self.report.add("notify", Figure(
            "notify", n / elapsed, "notices/s", f"{n:,} webhook notices to a local receiver"
            f" that drops repeats by key ({len(keys) - distinct} repeats)",
            detail={"received": len(keys), "distinct": distinct},
        ))  # fmt: skip
        self.say(f"notify: {n / elapsed:,.0f} notices/s")

    def memory(self) -> None:
        for node in self.nodes.values():
            for process in node.processes:
                self.report.add(f"rss_{process.name}", Figure(
                    f"peak RSS {process.name}", peak_rss_mib(process), "MiB",
                    "VmHWM after the run", target="≤ 150 MB",
                ))  # fmt: skip

    async def ceilings(self) -> None:
        sizes, stack = self.sizes, self.stack
        topic = f"{self.topics.namespace}.kafka-ceiling"
        produced = await asyncio.to_thread(
            ceilings.kafka_producer_ceiling, stack, topic, sizes.kafka_records, 1024
        )
        self.report.add("kafka_producer", Figure(
            "Kafka ProducerPerformance", produced, "records/s", "1 KiB records, acks=all,"
            " idempotent, same broker",
        ))  # fmt: skip
        consumed = await asyncio.to_thread(
            ceilings.kafka_consumer_ceiling, stack, topic, sizes.kafka_records
        )
        self.report.add("kafka_consumer", Figure(
            "Kafka ConsumerPerformance", consumed, "records/s", "the same records, same broker"
        ))  # fmt: skip
        group = await self.chaoyang.query(
            "SELECT origin_group::text FROM movements WHERE origin_group IS NOT NULL LIMIT 1"
        )
        group_json = group[0][0].replace("'", "''") if group else "{}"
        script = self.logs / "apply.sql"
        script.write_text(ceilings.pgbench_script(group_json))
        database = self.chaoyang.database_url.rsplit("/", 1)[1]
        events = await asyncio.to_thread(
            ceilings.postgres_ceiling, stack, database, script, sizes.pgbench_seconds
        )
        self.report.add("postgres", Figure(
            "pgbench, the apply's writes", events, "events/s",
            f"{ceilings.PGBENCH_EVENTS_PER_TRANSACTION} events per transaction, 4 clients,"
            " fsync on, same server",
        ))  # fmt: skip
        self.say(f"ceilings: Kafka {produced:,.0f}/{consumed:,.0f} records/s,"
                 f" PostgreSQL {events:,.0f} events/s")  # fmt: skip

    async def trace(self) -> None:
        """``yixian trace`` of one movement at the host, once its incoming pair topic holds
        ``trace_events`` more records of other movements that sync has applied (in the
        inbox at their positions, the consumer group committed past them); beside the
        same trace reading the topics from the start, as it did before."""
        n = self.sizes.trace_events
        gushi, chaoyang = self.gushi, self.chaoyang
        topic = self.topics.pair(GUSHI, CHAOYANG)
        bootstrap = self.stack.config.kafka_bootstrap
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_namespace=self.topics.namespace)
        # both syncs stopped: no heartbeats among the records, whose offsets are the inbox's
        await asyncio.gather(*(asyncio.to_thread(node.sync.stop) for node in (chaoyang, gushi)))
        before = await asyncio.to_thread(ceilings.watermarks, bootstrap, topic)
        started = time.monotonic()
        await asyncio.to_thread(produce_others, bootstrap, topic, n)
        produced = time.monotonic() - started
        after = await asyncio.to_thread(ceilings.watermarks, bootstrap, topic)
        for partition, end in after.items():
            await chaoyang.query(
                'INSERT INTO inbox (source, event_id, event_type, topic, partition, "offset",'
                " movement_id, outcome) SELECT $1, gen_random_uuid(),"
                " 'yixian.movement.origin_group.v1', $2, $3, o, gen_random_uuid(), 'applied'"
                " FROM generate_series($4::bigint, $5::bigint - 1) o",
                GUSHI, topic, partition, before.get(partition, 0), end,
            )  # fmt: skip
        await asyncio.to_thread(
            ceilings.commit, bootstrap, kafka.consumer_group(CHAOYANG, "sync"), topic, after
        )
        self.say(f"trace: {n:,} records produced in {produced:.0f} s, applied in the inbox")
        await asyncio.gather(*(asyncio.to_thread(node.sync.start) for node in (chaoyang, gushi)))

        body = {
            "member_id": str(self.members[0]),
            "destination": {"jurisdiction": CHAOYANG, "place": "北京市朝阳区"},
            "period": {"departed_on": "2026-03-01"},
            "contact": {"phone": "+86 139 0000 0000"},
            "reason": {"kind": "work"},
        }
        movement = UUID((await gushi.post("/v1/movements", body, 201))["movement_id"])

        async def applied() -> bool:
            return bool(
                await chaoyang.value("SELECT count(*) FROM inbox WHERE movement_id = $1", movement)
            )

        await _until(applied, 300, "the host applies the traced movement")
        conn = await asyncpg.connect(chaoyang.database_url)
        try:
            bounded = [await _trace(conn, kafka, movement, bounded=True) for _ in range(3)]
            full = await _trace(conn, kafka, movement, bounded=False)
        finally:
            await conn.close()
        seconds, hops, reading = sorted(bounded, key=lambda run: run[0])[1]  # the median
        if _seen(reading) != _seen(full[2]):
            raise RuntimeError(
                f"the bounded trace read other hops than the full read: {_seen(reading)}"
                f" ≠ {_seen(full[2])}"
            )
        started = time.monotonic()
        await asyncio.to_thread(chaoyang.ops, "trace", str(movement))
        command = time.monotonic() - started
        total = await asyncio.to_thread(ceilings.topic_size, bootstrap, topic)
        self.report.add("trace", Figure(
            "trace of one movement", seconds, "s", f"the host's incoming pair topic holding"
            f" {total:,} records ({n:,} of other movements added); resolve, database hops and"
            " topic hops in process, median of 3", target="< 2 s", against="trace_full_read",
            detail={"records_on_topics": total, "read": reading.read, "recorded": reading.recorded,
                    "tail": reading.tail, "runs_s": [run[0] for run in bounded],
                    "command_s": command, "hops": len(hops)},
        ))  # fmt: skip
        self.report.add("trace_full_read", Figure(
            "trace, reading the topics from the start (before)", full[0], "s",
            "the same trace, every record of the incoming pair topics read and filtered by key",
            detail={"read": full[2].read},
        ))  # fmt: skip
        self.say(
            f"trace: {seconds:.2f} s reading {reading.read:,} records (full read"
            f" {full[0]:.1f} s, {full[2].read:,} records); `yixian trace` {command:.1f} s"
        )


async def _trace(
    conn: asyncpg.Connection, kafka: KafkaSettings, movement: UUID, *, bounded: bool
) -> tuple[float, list[tuple[Any, ...]], TopicHops]:
    """One trace at the host as ``yixian trace`` makes it: seconds, its timeline, and what
    reading the topics took."""
    started = time.monotonic()
    movements, _ = await resolve(conn, movement)
    hops = await database_hops(conn, CHAOYANG, movements)
    reading = await read_topic_hops(kafka, CHAOYANG, movements, conn if bounded else None)
    ordered = timeline(hops + reading.hops)
    elapsed = time.monotonic() - started
    return elapsed, [(h.at, h.node, h.service, h.step, h.event_id) for h in ordered], reading


def _seen(reading: TopicHops) -> set[tuple[Any, ...]]:
    return {(h.at, h.node, h.service, h.step, h.detail, h.event_id) for h in reading.hops}


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        only = values[0] if values else 0.0
        return only, only, only
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


async def run_bench(stack: LocalStack, sizes: Sizes, say: Say = print) -> Report:
    return await Bench(stack, sizes, say).run()
