"""The simulation's nodes, set up as an operator would: node hosts started first, each node
put on its host with ``yixian host add`` (its own database, SASL principal, topics and
ACLs), the partner graph linked with ``yixian partner link``; then, through each node's HTTP
API, its organizations (with the secretaries' contacts notices go to) and its members."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from uuid import UUID

import aiohttp
import asyncpg

from yixian.contracts import TopicNames
from yixian.localstack.hosts import HostedNode, LocalHost
from yixian.localstack.network import node_env
from yixian.localstack.sinks import HttpSink, MailSink
from yixian.localstack.stack import LocalStack
from yixian.runtime.divisions import division_name

from .plan import Graph, Story

Say = Callable[[str], None]
MakeDatabase = Callable[[str], Awaitable[str]]
"""A fresh, empty database for the node of a code; its URL."""

SETUP_CONCURRENCY = 3
"""``yixian`` commands run at once while setting up (each is a Python process: its start is
most of its cost, and the machine has few cores)."""

LINK_TUNING = (
    "YIXIAN_HEARTBEAT_SECONDS",
    "YIXIAN_SILENCE_SECONDS",
    "YIXIAN_GAP_GRACE_SECONDS",
    "YIXIAN_DIGEST_SECONDS",
    "YIXIAN_METADATA_REFRESH_SECONDS",
)
"""The test network's quick link timings, left out here: the nodes keep the defaults an
operator's would (a heartbeat every 10 s on each of hundreds of links, not every second)."""


HOSTED_PACE = {
    "YIXIAN_LINK_TICK_SECONDS": "5",
    "YIXIAN_RELAY_POLL_INTERVAL": "5",
    "YIXIAN_FOLLOW_INTERVAL_SECONDS": "10",
}
"""How often a node's loops look for work when nothing wakes them: each look is a query per
node (per link astir, for the link upkeep), and fifty nodes share one server. The relay is
woken by the outbox's NOTIFY, so its poll is a fallback; links still send a heartbeat every
10 s and ask for a gap within the 5 s grace plus a tick."""


def root_name(code: str) -> str:
    return f"{division_name(code) or code}委组织部"


@dataclass
class SimNode:
    """A node of the simulation and what its secretaries use."""

    code: str
    node: HostedNode
    host: LocalHost
    committee: UUID | None = None
    """The working committee that checks visiting members in."""
    branch: UUID | None = None
    """The branch of the node's own members who leave."""
    members: list[UUID] = field(default_factory=list)
    """Members not yet registered as leaving, in the order the stories take them."""

    @property
    def database_url(self) -> str:
        return self.node.database_url

    @property
    def key(self) -> str:
        return self.node.key

    def registry_url(self) -> str | None:
        """Where the node's registry answers now (a restarted host listens on a new port)."""
        url = self.host.processes["registry"].url
        return None if url is None else f"{url}/nodes/{self.code}"


@dataclass
class World:
    stack: LocalStack
    graph: Graph
    layout: dict[str, list[str]]
    root: Path
    topics: TopicNames
    make_database: MakeDatabase
    mail: MailSink
    http: HttpSink
    say: Say
    hosts: dict[str, LocalHost] = field(default_factory=dict)
    nodes: dict[str, SimNode] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def host_of(self, code: str) -> LocalHost:
        return self.nodes[code].host

    async def build(self, stories: list[Story]) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await self._start_hosts()
        self.timings["hosts started"] = loop.time() - began
        await self._add_nodes()
        self.timings["nodes added (yixian host add)"] = loop.time() - began
        await self._link()
        self.timings["links made (yixian partner link)"] = loop.time() - began
        await self._wait_running()
        self.timings["nodes running"] = loop.time() - began
        await self._organizations(stories)
        self.timings["organizations and members"] = loop.time() - began

    async def _start_hosts(self) -> None:
        for name in self.layout:
            self.hosts[name] = LocalHost(name, self.root / "hosts" / name)
        await asyncio.gather(*(asyncio.to_thread(h.start) for h in self.hosts.values()))
        self.say(
            f"  {len(self.hosts)} node hosts started (registry, sync and notify each):"
            f" {', '.join(self.hosts)}"
        )

    def _env(self, code: str, database_url: str) -> dict[str, str]:
        partners = self.graph.partners(code)
        env = node_env(self.stack, code, database_url, self.topics, partners, secure=True)
        for name in LINK_TUNING:
            env.pop(name, None)
        return env | {
            "YIXIAN_SMTP_HOST": "127.0.0.1",
            "YIXIAN_SMTP_PORT": str(self.mail.port),
            "YIXIAN_SMS_GATEWAY": f"{self.http.url}/sms",
            "YIXIAN_QUIET_START": "00:00",  # the simulated day is not the clock's
            "YIXIAN_QUIET_END": "00:00",
            "YIXIAN_EMAIL_PER_SECOND": "200",
            "YIXIAN_SMS_PER_SECOND": "200",
            **HOSTED_PACE,
        }

    async def _add_nodes(self) -> None:
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def add(host: LocalHost, code: str) -> None:
            url = await self.make_database(code)
            node = HostedNode(
                code, root_name(code), url, self._env(code, url), self.root / "logs", host=host
            )
            async with gate:
                await asyncio.to_thread(node.init)
            self.nodes[code] = SimNode(code, node, host)

        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        await asyncio.gather(
            *(add(self.hosts[name], code) for name, codes in self.layout.items() for code in codes)
        )
        self.say(
            f"  {len(self.nodes)} nodes put on their hosts with yixian host add (each its own"
            " database, SASL principal, topics and ACLs)"
        )

    async def _link(self) -> None:
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        commands = self.graph.link_commands()

        async def link(code: str, partners: list[str]) -> None:
            async with gate:
                await asyncio.to_thread(
                    self.nodes[code].node.ops, "partner", "link", code, *partners
                )

        await asyncio.gather(*(link(code, partners) for code, partners in commands))
        self.say(
            f"  {len(self.graph.links)} links ({self.graph.ordered_pairs()} pair topics) made with"
            f" {len(commands)} yixian partner link commands"
        )

    async def _wait_running(self) -> None:
        await asyncio.gather(
            *(
                asyncio.to_thread(self.hosts[name].wait_for_all, codes, "running", 300)
                for name, codes in self.layout.items()
            )
        )

    async def _organizations(self, stories: list[Story]) -> None:
        """Each node's root gets its secretary's address, a working committee (visitors
        check in there) and a branch with the members its stories take."""
        leaving = {code: 0 for code in self.nodes}
        for story in stories:
            leaving[story.origin] += 1
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            await asyncio.gather(
                *(self._organize(session, sim, leaving[sim.code]) for sim in self.nodes.values())
            )
        self.say(f"  organizations and {sum(leaving.values()):,} members imported")

    async def _organize(self, session: aiohttp.ClientSession, sim: SimNode, members: int) -> None:
        base = sim.registry_url()
        assert base is not None, f"{sim.code}: its host's registry is not running"
        assert sim.node.root_id is not None
        headers = {"Authorization": f"Bearer {sim.key}"}
        code = sim.code

        async def send(method: str, path: str, body: object) -> dict[str, str]:
            async with session.request(method, base + path, json=body, headers=headers) as r:
                if r.status >= 300:
                    raise RuntimeError(f"{code} {method} {path}: {r.status} {await r.text()}")
                answer: dict[str, str] = await r.json()
                return answer

        await send(
            "PATCH",
            f"/v1/organizations/{sim.node.root_id}",
            {"contact_email": f"zzb@n{code}.example"},
        )
        committee = await send(
            "POST",
            "/v1/organizations",
            {"name": "流动党员工作委员会", "kind": "working_committee",
             "parent_id": str(sim.node.root_id), "contact_email": f"wc@n{code}.example"},
        )  # fmt: skip
        branch = await send(
            "POST",
            "/v1/organizations",
            {"name": "外出务工党员支部", "kind": "branch", "parent_id": str(sim.node.root_id),
             "contact_email": f"branch@n{code}.example"},
        )  # fmt: skip
        sim.committee, sim.branch = UUID(committee["org_id"]), UUID(branch["org_id"])
        if members:
            rows = io.StringIO()
            writer = csv.writer(rows, lineterminator="\n")
            writer.writerow(["org_id", "name", "joined_on", "phone"])
            joined = _not_today()
            seed = random.Random(code)  # noqa: S311
            for n in range(members):
                phone = f"+86 138 {seed.randrange(10**8):08d}"
                writer.writerow([sim.branch, f"党员{code}-{n:05d}", joined, phone])
            async with session.post(
                base + "/v1/members/import",
                data=rows.getvalue().encode(),
                headers=headers | {"Content-Type": "text/csv"},
            ) as r:
                text = await r.text()
                if r.status >= 300 or json.loads(text).get("accepted") != members:
                    raise RuntimeError(f"{code} import: {r.status} {text}")
            conn = await asyncpg.connect(sim.database_url)
            try:
                found = await conn.fetch(
                    "SELECT member_id FROM members WHERE org_id = $1 ORDER BY name", sim.branch
                )
            finally:
                await conn.close()
            sim.members = [row["member_id"] for row in found]

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()


def _not_today() -> str:
    """A joining date whose anniversary is not today, so no political-birthday greeting is
    planned in the middle of the day (nor a day's greetings counted twice)."""
    today = date.today()
    day = 1 if today.day != 1 else 2
    month = today.month % 12 + 1
    return date(2010, month, day).isoformat()
