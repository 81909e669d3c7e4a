"""The node host's figures (ADR 30): what an idle node costs on a host — memory, CPU,
database and Kafka connections — beside a host serving no node and a single node's own
processes, all measured over the same window; and the CPU a movement costs between two
nodes of one host.

Every node of this phase runs with the services' default intervals (heartbeats every 10 s,
links looked at every 10 s, the relay's fallback poll), not the faster ones of the test
network: an idle figure is what an idle production node costs. The nodes are linked in a
ring (the single node among them), so each has two partners: its sync consumes, its links
keep their heartbeats both ways.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
from pydantic import SecretStr

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.hosts import HOSTED_SERVICES, HostedNode, LocalHost
from yixian.localstack.network import LocalNode, Process, node_env
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.kafka import ClusterAdmin, TopicPolicy
from yixian.runtime.divisions import divisions
from yixian.runtime.settings import KafkaSettings

from .figures import (
    CHAOYANG,
    CLOSED_LOOP_CLIENTS,
    GUSHI,
    Say,
    Sizes,
    applied,
    closed_loop,
    postmaster_pid,
    process_cpu,
    registrations,
    stack_cpu,
)
from .report import Figure, Report

TEST_PACE = (
    "YIXIAN_HEARTBEAT_SECONDS",
    "YIXIAN_SILENCE_SECONDS",
    "YIXIAN_GAP_GRACE_SECONDS",
    "YIXIAN_DIGEST_SECONDS",
    "YIXIAN_METADATA_REFRESH_SECONDS",
    "YIXIAN_RELAY_POLL_INTERVAL",
)
"""The test network's faster intervals, left out here: the services' defaults apply."""
HOST_ENV = {"YIXIAN_HOST_SCAN_SECONDS": "2"}
"""The host's default pace of looking at its directory (the test hosts look faster)."""
SETUP_AT_ONCE = 3
"""Nodes set up (``yixian host add``, ``partner link``) at the same time."""


def idle_codes(count: int) -> list[str]:
    """``count`` county-level division codes, the first of the list (none of the bench's
    two nodes)."""
    codes = [
        code for code in sorted(divisions()) if code[4:] != "00" and code not in (GUSHI, CHAOYANG)
    ]
    return codes[:count]


# -- what /proc says of a process ---------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    rss: float
    """Resident memory, MiB."""
    pss: float
    """Proportional set size, MiB: each shared page divided among the processes sharing it."""

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.rss + other.rss, self.pss + other.pss)

    def __sub__(self, other: Memory) -> Memory:
        return Memory(self.rss - other.rss, self.pss - other.pss)

    def per(self, count: int) -> Memory:
        return Memory(self.rss / count, self.pss / count)

    def as_json(self) -> dict[str, float]:
        return {"rss_mib": round(self.rss, 2), "pss_mib": round(self.pss, 2)}


NO_MEMORY = Memory(0.0, 0.0)


def memory(pid: int) -> Memory:
    """The process's resident memory now (``VmRSS``) and its PSS (``smaps_rollup``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    pss = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
    if rss is None or pss is None:
        raise RuntimeError(f"no memory figures for process {pid}")
    return Memory(int(rss.group(1)) / 1024, int(pss.group(1)) / 1024)


def connections(pid: int) -> list[tuple[int, int]]:
    """The process's established TCP connections: (its own port, the remote port) each."""
    inodes = set()
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and fields[9] in inodes:  # 01: established
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                found.append((local, remote))
    return found


def pid_of(process: Process) -> int:
    assert process.popen is not None, f"{process.name} is not running"
    return process.popen.pid


# -- the phase ----------------------------------------------------------------------------


class NodeHostPhase:
    """Starts a node host that gets ``sizes.host_nodes`` idle nodes, a host that stays
    empty and a single node (four processes), measures them, stops them."""

    def __init__(
        self, stack: LocalStack, report: Report, sizes: Sizes, say: Say, logs: Path
    ) -> None:
        self.stack = stack
        self.report = report
        self.sizes = sizes
        self.say = say
        self.root = logs / "hosts"
        self.topics = TopicNames(f"benchhost{uuid4().hex[:6]}")
        self.count = sizes.host_nodes
        codes = idle_codes(self.count + 1)
        self.codes, self.single_code = codes[:-1], codes[-1]
        self.host = LocalHost("loaded", self.root / "loaded", env=HOST_ENV)
        self.empty = LocalHost("empty", self.root / "empty", env=HOST_ENV)
        self.hosted: list[HostedNode] = []
        self.single: LocalNode | None = None
        self.databases: list[str] = []

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._stop()

    async def _run(self) -> None:
        for host in (self.host, self.empty):
            await asyncio.to_thread(host.start)
        await self._quiet(self._host_processes())
        before = self._memory(self.host)
        self.say(f"node host with no node: {sum(before.values(), NO_MEMORY).rss:.0f} MiB RSS")
        started = time.monotonic()
        await self._add_nodes()
        self.say(
            f"{self.count} idle nodes on the host and a single node, linked in a ring, in"
            f" {time.monotonic() - started:.0f} s"
        )
        await self._settle()
        await self._idle(before)
        await self._movements()

    # -- the nodes ----------------------------------------------------------------------

    def _env(self, code: str, url: str, partners: list[str]) -> dict[str, str]:
        env = node_env(self.stack, code, url, self.topics, partners, secure=True)
        if self.sizes.tiny:  # the test network's pace: healthy links within seconds
            return env
        return {name: value for name, value in env.items() if name not in TEST_PACE}

    def _ring(self) -> list[str]:
        return [*self.codes, self.single_code]

    def _partners(self, code: str) -> list[str]:
        ring = self._ring()
        at = ring.index(code)
        return sorted({ring[at - 1], ring[(at + 1) % len(ring)]} - {code})

    async def _database(self, code: str) -> str:
        name = f"{self.topics.namespace}_{code}"  # a run's own: two runs never share one
        self.databases.append(name)
        return await self.stack.fresh_database(name)

    async def _add_nodes(self) -> None:
        """The ring's pair topics and grants first, as ``yixian partner link`` makes them (in
        this process: a command's start for each of twenty links is minutes on two cores):
        a node put on the host before it may read its partners' topics would start only
        at its sync's next try. Then each node as ``yixian host add`` puts it on the host,
        and the single node as ``yixian node init`` sets it up."""
        admin = ClusterAdmin(
            KafkaSettings(
                bootstrap_servers=self.stack.config.sasl_bootstrap,
                security_protocol="SASL_PLAINTEXT",
                username=ADMIN_USER,
                password=SecretStr(ADMIN_PASSWORD),
                topic_namespace=self.topics.namespace,
            ),
            KafkaSettings(topic_namespace=self.topics.namespace),
        )
        ring = self._ring()
        pairs = {
            tuple(sorted((code, partner))) for code in ring for partner in self._partners(code)
        }
        for a, b in sorted(pairs):
            await asyncio.to_thread(admin.link, a, b, TopicPolicy())
        at_once = asyncio.Semaphore(SETUP_AT_ONCE)

        async def add(code: str) -> HostedNode:
            url = await self._database(code)
            node = HostedNode(
                code, f"bench host {code}", url, self._env(code, url, self._partners(code)),
                self.root, host=self.host,
            )  # fmt: skip
            async with at_once:
                await asyncio.to_thread(node.init)
            return node

        async def single() -> LocalNode:
            code = self.single_code
            url = await self._database(code)
            node = LocalNode(
                code, f"bench single {code}", url, self._env(code, url, self._partners(code)),
                self.root, with_notify=True,
            )  # fmt: skip
            if not self.sizes.tiny:
                node.relay.env.pop("YIXIAN_RELAY_POLL_INTERVAL", None)  # the default, as hosted
            async with at_once:
                await asyncio.to_thread(node.init)
            return node

        *hosted, alone = await asyncio.gather(*(add(code) for code in self.codes), single())
        self.hosted = [node for node in hosted if isinstance(node, HostedNode)]
        self.single = alone
        await asyncio.to_thread(alone.start)
        for node in self.hosted:
            await asyncio.to_thread(node.start)

    def _nodes(self) -> list[LocalNode]:
        assert self.single is not None
        return [*self.hosted, self.single]

    async def _settle(self, within: float = 240) -> None:
        """Until every link of every node is healthy (heartbeats have gone both ways, each
        node's sync reads its partners' topics) and the processes have gone quiet."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=10) as client:

            async def unhealthy() -> list[str]:
                found = []
                for node in self._nodes():
                    response = await client.get(f"{_sync_url(node)}/v1/links")
                    states = {link["partner"]: link["state"] for link in response.json()}
                    if set(states) != set(self._partners(node.code)):
                        found.append(f"{node.code}: links {sorted(states)}")
                    found += [f"{node.code}→{p}: {s}" for p, s in states.items() if s != "healthy"]
                return found

            while waiting := await unhealthy():
                if time.monotonic() > deadline:
                    self.say(f"links not all healthy ({waiting[:3]}…); measuring anyway")
                    break
                await asyncio.sleep(1)
        await self._quiet(self._host_processes() + list(self._single_processes()))

    async def _quiet(self, processes: list[Process], within: float = 120) -> None:
        """Until what ``processes`` spend settles: under a twentieth of a core together over
        five seconds (one at tiny sizes), or no less than over the five before (what
        starting left them to do is done; the rest is what they spend idle)."""
        deadline = time.monotonic() + within
        window = 1 if self.sizes.tiny else 5
        last = None
        while time.monotonic() < deadline:
            before = sum(process_cpu(pid_of(p)) for p in processes)
            await asyncio.sleep(window)
            spent = sum(process_cpu(pid_of(p)) for p in processes) - before
            if spent < 0.05 * window or (last is not None and spent >= last * 0.9):
                return
            last = spent
        self.say("the node host phase's processes did not settle; measuring anyway")

    def _host_processes(self) -> list[Process]:
        return [*self.host.processes.values(), *self.empty.processes.values()]

    def _single_processes(self) -> tuple[Process, ...]:
        assert self.single is not None
        return self.single.processes

    def _memory(self, host: LocalHost) -> dict[str, Memory]:
        return {service: memory(pid_of(p)) for service, p in host.processes.items()}

    # -- idle -----------------------------------------------------------------------------

    async def _idle(self, before: dict[str, Memory]) -> None:
        """Memory, CPU and connections of the idle nodes, their host, the empty host and
        the single node, over the same window."""
        window = self.sizes.host_idle_seconds
        count = self.count
        assert self.single is not None
        groups: dict[str, list[Process]] = {
            "host": list(self.host.processes.values()),
            "empty": list(self.empty.processes.values()),
            "single": list(self.single.processes),
        }
        hosted_dbs = [node.database_url.rsplit("/", 1)[1] for node in self.hosted]
        single_db = self.single.database_url.rsplit("/", 1)[1]
        conn = await asyncpg.connect(self.stack.config.database_dsn("postgres"))
        try:
            backends_before = await _backends(conn, [*hosted_dbs, single_db])
            cpu_before = {
                name: {p.name: process_cpu(pid_of(p)) for p in processes}
                for name, processes in groups.items()
            }
            postmaster = await postmaster_pid(self.stack.config.database_dsn("postgres"))
            kafka_first = stack_cpu(postmaster, self.stack.kafka.pid())["kafka"]
            started = time.monotonic()
            most: Counter[str] = Counter()
            while (left := started + window - time.monotonic()) > 0:
                for database, open_now in (await _held(conn, [*hosted_dbs, single_db])).items():
                    most[database] = max(most[database], open_now)
                await asyncio.sleep(min(left, 5))
            elapsed = time.monotonic() - started
            cpu_after = {
                name: {p.name: process_cpu(pid_of(p)) for p in processes}
                for name, processes in groups.items()
            }
            kafka_spent = stack_cpu(postmaster, self.stack.kafka.pid())["kafka"] - kafka_first
            backends_after = await _backends(conn, [*hosted_dbs, single_db])
            pg_ports = await _client_ports(conn, [*hosted_dbs, single_db])
        finally:
            await conn.close()

        def rate(name: str) -> dict[str, float]:
            """ms of CPU a second, per process of the group."""
            return {
                process: (cpu_after[name][process] - first) * 1000 / elapsed
                for process, first in cpu_before[name].items()
            }

        def backend_rate(databases: Iterable[str]) -> float:
            after = {d: backends_after.get(d, {}) for d in databases}
            return _spent_by_backends(backends_before, after) * 1000 / elapsed

        after = self._memory(self.host)
        empty = self._memory(self.empty)
        single = {p.name: memory(pid_of(p)) for p in self.single.processes}
        per_node = {s: (after[s] - before[s]).per(count) for s in HOSTED_SERVICES}
        node_memory = sum(per_node.values(), NO_MEMORY)
        single_memory = sum(single.values(), NO_MEMORY)
        how = f"{count} idle nodes added to a running host: (after − before) / {count}"
        self.report.add("host_node_memory", Figure(
            "memory per idle node on a host (RSS)", node_memory.rss, "MiB", how,
            target="≤ 25 MB", against="single_node_memory",
            detail={"per_service": {s: m.as_json() for s, m in per_node.items()},
                    "host_before": {s: m.as_json() for s, m in before.items()},
                    "host_after": {s: m.as_json() for s, m in after.items()}},
        ))  # fmt: skip
        self.report.add("host_node_pss", Figure(
            "memory per idle node on a host (PSS)", node_memory.pss, "MiB", how,
            target="≤ 25 MB", against="single_node_pss",
        ))  # fmt: skip
        self.report.add("single_node_memory", Figure(
            "a single node's four processes, idle (RSS)", single_memory.rss, "MiB",
            "registry, relay, sync, notify, each its own process",
            detail={name: m.as_json() for name, m in single.items()},
        ))  # fmt: skip
        self.report.add("single_node_pss", Figure(
            "a single node's four processes, idle (PSS)", single_memory.pss, "MiB",
            "registry, relay, sync, notify, each its own process",
        ))  # fmt: skip
        self.report.add("host_empty_memory", Figure(
            "a node host serving no node (RSS)", sum(empty.values(), NO_MEMORY).rss, "MiB",
            "its three processes, at the end of the window",
            detail={s: m.as_json() for s, m in empty.items()},
        ))  # fmt: skip

        host_cpu, empty_cpu, single_cpu = rate("host"), rate("empty"), rate("single")
        self.report.add("host_node_cpu", Figure(
            "idle CPU per node on a host", sum(host_cpu.values()) / count, "ms/s",
            f"user + system CPU of the host's three processes over {window} s of idleness,"
            f" / {count} nodes", target="~0", against="single_node_cpu",
            detail={"per_service_ms_s": {n: v / count for n, v in host_cpu.items()},
                    "host_ms_s": sum(host_cpu.values()), "seconds": elapsed},
        ))  # fmt: skip
        self.report.add("host_empty_cpu", Figure(
            "a node host serving no node, idle CPU", sum(empty_cpu.values()), "ms/s",
            "its three processes over the same window", detail=empty_cpu,
        ))  # fmt: skip
        self.report.add("single_node_cpu", Figure(
            "a single node's four processes, idle CPU", sum(single_cpu.values()), "ms/s",
            "over the same window", detail=single_cpu,
        ))  # fmt: skip
        self.report.add("host_node_pg_cpu", Figure(
            "PostgreSQL CPU per idle node on a host", backend_rate(hosted_dbs) / count, "ms/s",
            "the backends serving the hosted nodes' databases over the window, / nodes",
            against="single_node_pg_cpu", detail={"kafka_broker_ms_s": kafka_spent * 1000
                                                  / elapsed},
        ))  # fmt: skip
        self.report.add("single_node_pg_cpu", Figure(
            "PostgreSQL CPU of the single node", backend_rate([single_db]), "ms/s",
            "the backends serving its database over the window",
        ))  # fmt: skip

        # connections, as the processes hold them at the end of the window
        pg_port = self.stack.config.postgres_port
        listeners = (self.stack.config.kafka_bootstrap, self.stack.config.sasl_bootstrap)
        kafka_ports = {int(address.rsplit(":", 1)[1]) for address in listeners}

        def held(process: Process) -> tuple[int, int]:
            """(PostgreSQL connections to the phase's databases, Kafka connections)."""
            found = connections(pid_of(process))
            pg = sum(1 for local, remote in found if remote == pg_port and local in pg_ports)
            kafka = sum(1 for _, remote in found if remote in kafka_ports)
            return pg, kafka

        host_held = {s: held(p) for s, p in self.host.processes.items()}
        empty_kafka = sum(held(p)[1] for p in self.empty.processes.values())
        single_held = {p.name: held(p) for p in self.single.processes}
        hosted_counts = [most[d] for d in hosted_dbs]
        self.report.add("host_node_pg_connections", Figure(
            "PostgreSQL connections per idle node on a host",
            sum(h[0] for h in host_held.values()) / count, "connections",
            "held by the host's processes to the hosted nodes' databases at the end of the"
            " window, / nodes", against="single_node_pg_connections",
            detail={"per_service": {s: h[0] / count for s, h in host_held.items()},
                    "most_per_database_in_window": {"min": min(hosted_counts),
                                                    "max": max(hosted_counts)}},
        ))  # fmt: skip
        self.report.add("single_node_pg_connections", Figure(
            "PostgreSQL connections of the single node",
            sum(h[0] for h in single_held.values()), "connections",
            "held by its four processes at the end of the window",
            detail={name: h[0] for name, h in single_held.items()}
            | {"most_in_window": most[single_db]},
        ))  # fmt: skip
        self.report.add("host_node_kafka_connections", Figure(
            "Kafka connections per idle node on a host",
            (sum(h[1] for h in host_held.values()) - empty_kafka) / count, "connections",
            "the host's connections to the broker, less the empty host's, / nodes",
            against="single_node_kafka_connections",
            detail={"per_service": {s: h[1] / count for s, h in host_held.items()}},
        ))  # fmt: skip
        self.report.add("single_node_kafka_connections", Figure(
            "Kafka connections of the single node", sum(h[1] for h in single_held.values()),
            "connections", "its four processes' connections to the broker",
            detail={name: h[1] for name, h in single_held.items()},
        ))  # fmt: skip
        self.say(
            f"idle node on a host: {node_memory.rss:.1f} MiB RSS ({node_memory.pss:.1f} PSS),"
            f" {sum(host_cpu.values()) / count:.2f} ms CPU/s; empty host"
            f" {sum(empty_cpu.values()):.2f} ms/s; single node {single_memory.rss:.0f} MiB,"
            f" {sum(single_cpu.values()):.2f} ms/s"
        )

    # -- movements ------------------------------------------------------------------------

    async def _movements(self) -> None:
        """A closed loop of registrations between two nodes of the host, the others idle
        beside them: the CPU of the host's processes, PostgreSQL and Kafka per movement."""
        origin, destination = self.hosted[0], self.hosted[1]
        branch = await origin.org("外出党员支部")
        members = await origin.import_members(branch, self.sizes.host_members)
        window = self.sizes.host_loop_seconds
        processes = list(self.host.processes.values())
        databases = [node.database_url.rsplit("/", 1)[1] for node in (origin, destination)]
        conn = await asyncpg.connect(self.stack.config.database_dsn("postgres"))
        try:
            backends = await _backends(conn, databases)
            before = {p.name: process_cpu(pid_of(p)) for p in processes}
            postmaster = await postmaster_pid(self.stack.config.database_dsn("postgres"))
            shared = stack_cpu(postmaster, self.stack.kafka.pid())
            started = time.monotonic()
            async with registrations(
                origin.url("registry"), origin.key, destination.code
            ) as register:
                done, failed = await closed_loop(members, register, window)
            throughput = await applied(origin, destination, done)
            elapsed = time.monotonic() - started
            seconds = {p.name: process_cpu(pid_of(p)) - before[p.name] for p in processes}
            seconds |= {
                name: cpu - shared[name]
                for name, cpu in stack_cpu(postmaster, self.stack.kafka.pid()).items()
            }
            # the backends of the two nodes' databases alone (the server is shared)
            ours = _spent_by_backends(backends, await _backends(conn, databases))
        finally:
            await conn.close()
        count = max(len(done), 1)
        spent = {name: cpu * 1000 / count for name, cpu in seconds.items()}
        pipeline = sum(v for name, v in spent.items() if name != "load generator")
        idle = self.report.figures["host_node_cpu"].detail["host_ms_s"]
        idle_share = idle * elapsed * (self.count - 2) / self.count / count
        self.report.add("host_e2e_throughput", Figure(
            "end-to-end throughput, two nodes of one host", throughput, "movements/s",
            f"as the end-to-end figure: {window} s of closed-loop HTTP load"
            f" ({CLOSED_LOOP_CLIENTS} clients), {self.count - 2} idle nodes beside them",
            against="e2e_throughput", detail={"movements": len(done), "failed": failed},
        ))  # fmt: skip
        self.report.add("host_cpu_per_movement", Figure(
            "CPU per movement, two nodes of one host", pipeline, "ms/movement",
            "the host's three processes, PostgreSQL and Kafka during the closed loop,"
            " / movements", target="≤ 5 ms", against="e2e_cpu_per_movement",
            detail={"per_process_ms": spent, "postgresql_backends_ms": ours * 1000 / count,
                    "idle_nodes_share_ms": idle_share, "seconds": elapsed},
        ))  # fmt: skip
        self.say(
            f"two nodes of one host: {throughput:,.0f} movements/s, {pipeline:.1f} ms CPU per"
            f" movement ({idle_share:.1f} of it the idle nodes'; {failed} failed)"
        )

    # -- the end --------------------------------------------------------------------------

    async def _stop(self) -> None:
        for node in self._all_nodes():
            if node.http is not None:
                await node.http.aclose()
        if self.single is not None:
            await asyncio.to_thread(self.single.stop)
        for host in (self.host, self.empty):
            await asyncio.to_thread(host.stop)
        conn = await asyncpg.connect(self.stack.config.database_dsn("postgres"))
        try:
            for name in self.databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        await asyncio.to_thread(self.stack.kafka.delete_topics, [f"{self.topics.namespace}."])

    def _all_nodes(self) -> list[LocalNode]:
        return [*self.hosted, *([self.single] if self.single is not None else [])]


def _sync_url(node: LocalNode) -> str:
    url = node.url("sync") if isinstance(node, HostedNode) else node.sync.url
    assert url is not None, f"{node.code}'s sync is not running"
    return url


async def _backends(conn: asyncpg.Connection, databases: list[str]) -> dict[str, dict[int, float]]:
    """The CPU seconds so far of each backend serving ``databases``, by database and pid."""
    rows = await conn.fetch(
        "SELECT datname, pid FROM pg_stat_activity WHERE datname = ANY($1::text[])", databases
    )
    found: dict[str, dict[int, float]] = {}
    for row in rows:
        found.setdefault(row["datname"], {})[row["pid"]] = process_cpu(row["pid"])
    return found


def _spent_by_backends(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> float:
    """CPU seconds the backends of ``after``'s databases spent since ``before`` (one that
    started meanwhile counts whole)."""
    return sum(
        cpu - before.get(database, {}).get(pid, 0.0)
        for database, pids in after.items()
        for pid, cpu in pids.items()
    )


async def _held(conn: asyncpg.Connection, databases: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT datname, count(*) AS held FROM pg_stat_activity"
        " WHERE datname = ANY($1::text[]) GROUP BY datname",
        databases,
    )
    return {row["datname"]: int(row["held"]) for row in rows}


async def _client_ports(conn: asyncpg.Connection, databases: list[str]) -> set[int]:
    rows = await conn.fetch(
        "SELECT client_port FROM pg_stat_activity WHERE datname = ANY($1::text[])"
        " AND client_port IS NOT NULL",
        databases,
    )
    return {int(row["client_port"]) for row in rows}
