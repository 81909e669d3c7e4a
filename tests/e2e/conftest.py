"""Fixtures for networks of real nodes (see network.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import uuid4

import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.hosts import HostedNode, LocalHost
from yixian.localstack.network import LocalNode, node_env
from yixian.localstack.pytest_plugin import fresh_databases
from yixian.localstack.sinks import HttpSink, MailSink

NAMES = {
    "411525": "固始县委组织部",
    "110105": "朝阳区委组织部",
    "350300": "莆田市委组织部",
    "110114": "昌平区委组织部",
}

NetworkFactory = Callable[..., Awaitable[dict[str, LocalNode]]]


def drill_size(smoke: int, full: int) -> int:
    """How many of a thing a load drill makes: ``full`` under ``make drills``
    (``YIXIAN_DRILL_SCALE=full``), ``smoke`` in ``make test``. The smoke size exercises the
    same properties (order, once-only, rate limits, a kill mid-way) in a fraction of the time."""
    return full if os.environ.get("YIXIAN_DRILL_SCALE") == "full" else smoke


WEBHOOK_SECRET = "webhook-secret-of-the-test-network"


@pytest.fixture
def mail() -> Iterator[MailSink]:
    """A local mail server; it refuses nobody@gushi.example for good (550)."""
    sink = MailSink(refuse={"nobody@gushi.example"}).start()
    yield sink
    sink.stop()


@pytest.fixture
def http() -> Iterator[HttpSink]:
    """A local HTTP receiver: the SMS gateway, webhooks and the app channel post to it."""
    sink = HttpSink().start()
    yield sink
    sink.stop()


def channels(mail: MailSink, http: HttpSink, **extra: str) -> dict[str, str]:
    """The notify settings that send every notice to the local sinks."""
    return {
        "YIXIAN_SMTP_HOST": "127.0.0.1",
        "YIXIAN_SMTP_PORT": str(mail.port),
        "YIXIAN_SMS_GATEWAY": f"{http.url}/sms",
        "YIXIAN_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "YIXIAN_QUIET_START": "00:00",  # no quiet hours here: the clock of the test is real
        "YIXIAN_QUIET_END": "00:00",
        **extra,
    }


@asynccontextmanager
async def _network(
    local_stack: LocalStack,
    make_database: Callable[[], Awaitable[str]],
    topic_names: TopicNames,
    logs: Path,
) -> AsyncIterator[NetworkFactory]:
    nodes: list[LocalNode] = []

    async def create(
        codes: list[str],
        *,
        secure: bool = False,
        env_of: dict[str, dict[str, str]] | None = None,
        with_console: bool = False,
        **notify_env: str,
    ) -> dict[str, LocalNode]:
        """Nodes with every service running; ``secure``: each connects to Kafka as its own
        SASL principal, with the topics and ACLs ``yixian node init`` and ``partner link`` made;
        ``env_of``: one node's own settings (e.g. its deadlines), by its code;
        ``with_console``: each also serves its console.
        """
        made = {}
        for code in codes:
            url = await make_database()
            partners = [c for c in codes if c != code]
            env = {
                **node_env(local_stack, code, url, topic_names, partners, secure=secure),
                **notify_env,
                **(env_of or {}).get(code, {}),
            }
            node = LocalNode(
                code, NAMES.get(code, code), url, env, logs, with_notify=bool(notify_env),
                with_console=with_console,
            )  # fmt: skip
            node.init()
            made[code] = node
        if secure:
            for i, a in enumerate(codes):
                for b in codes[i + 1 :]:
                    made[a].link(b)
        for node in made.values():
            node.start()
            nodes.append(node)
        return made

    try:
        yield create
    finally:
        for node in nodes:
            if node.http is not None:
                await node.http.aclose()
            node.stop()


@pytest.fixture
async def network(
    local_stack: LocalStack,
    make_database: Callable[[], Awaitable[str]],
    topic_names: TopicNames,
    tmp_path: Path,
) -> AsyncIterator[NetworkFactory]:
    async with _network(local_stack, make_database, topic_names, tmp_path) as create:
        yield create


@pytest.fixture(scope="module")
async def module_network(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NetworkFactory]:
    """As ``network``, shared by the tests of one module (one set of started nodes), in
    databases and a topic namespace of its own."""
    topics = TopicNames(namespace=f"t{uuid4().hex[:12]}")
    async with (
        fresh_databases(local_stack) as make_database,
        _network(local_stack, make_database, topics, tmp_path_factory.mktemp("network")) as create,
    ):
        yield create


HostedNetworkFactory = Callable[..., Awaitable[tuple[dict[str, LocalHost], dict[str, HostedNode]]]]


@asynccontextmanager
async def _hosted_network(
    local_stack: LocalStack,
    make_database: Callable[[], Awaitable[str]],
    topic_names: TopicNames,
    root: Path,
) -> AsyncIterator[HostedNetworkFactory]:
    hosts: list[LocalHost] = []
    nodes: list[HostedNode] = []

    async def create(
        layout: dict[str, list[str]],
        *,
        secure: bool = True,
        env_of: dict[str, dict[str, str]] | None = None,
        **notify_env: str,
    ) -> tuple[dict[str, LocalHost], dict[str, HostedNode]]:
        """Node hosts by name, each serving the nodes ``layout`` gives it, every node linked
        with every other; the nodes are added with ``yixian host add`` and linked with
        ``yixian partner link``, as an operator does, while the hosts start."""
        codes = [code for served in layout.values() for code in served]
        made_hosts = {name: LocalHost(name, root / name) for name in layout}
        for host in made_hosts.values():  # every host's processes start side by side
            host.launch()
            hosts.append(host)
        made: dict[str, HostedNode] = {}
        for name, served in layout.items():
            for code in served:
                url = await make_database()
                partners = [c for c in codes if c != code]
                env = {
                    **node_env(local_stack, code, url, topic_names, partners, secure=secure),
                    **notify_env,
                    **(env_of or {}).get(code, {}),
                }
                made[code] = HostedNode(
                    code, NAMES.get(code, code), url, env, root, host=made_hosts[name]
                )
        # while the hosts start: each node added, then each link made, side by side (one
        # operator command each); a host starts the nodes it finds once it runs
        await asyncio.gather(*(asyncio.to_thread(node.init) for node in made.values()))
        if secure:
            pairs = [(a, b) for i, a in enumerate(codes) for b in codes[i + 1 :]]
            await asyncio.gather(*(asyncio.to_thread(made[a].link, b) for a, b in pairs))
        for host in made_hosts.values():
            await asyncio.to_thread(host.wait_started)
        for node in made.values():
            node.start()
            nodes.append(node)
        return made_hosts, made

    try:
        yield create
    finally:
        for node in nodes:
            if node.http is not None:
                await node.http.aclose()
        await asyncio.gather(*(asyncio.to_thread(host.stop) for host in hosts))


@pytest.fixture(scope="module")
async def module_hosted_network(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HostedNetworkFactory]:
    """Node hosts shared by the tests of one module, in databases and a topic namespace of
    their own."""
    topics = TopicNames(namespace=f"t{uuid4().hex[:12]}")
    async with (
        fresh_databases(local_stack) as make_database,
        _hosted_network(
            local_stack, make_database, topics, tmp_path_factory.mktemp("hosts")
        ) as create,
    ):
        yield create
