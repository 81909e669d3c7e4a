"""One unpublishable row never stops a node's relay (issue 13), on the local broker's
SASL listener and its authorizer: a destination the node's principal may not write to is
parked and every other destination keeps flowing; after the grant, ``yixian outbox retry``
publishes it; ``yixian outbox discard`` gives up on another, audited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import uuid4

import asyncpg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.records import read_records
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.cli import app
from yixian.ops.kafka import ClusterAdmin, TopicPolicy, principal
from yixian.record.process import build_relay
from yixian.registry.bootstrap import init_node, migrate
from yixian.registry.config import RegistrySettings
from yixian.runtime import KafkaSettings, create_pool

GUSHI, CHAOYANG, PUTIAN = "411525", "110105", "350300"
pytestmark = pytest.mark.e2e


def _kafka(stack: LocalStack, namespace: str, user: str, password: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=stack.config.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        username=user,
        password=SecretStr(password),
        topic_namespace=namespace,
    )


async def _waiting(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
        )
    )


async def _settled(pool: asyncpg.Pool, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await _waiting(pool):
            await asyncio.sleep(0.2)


@pytest.fixture
async def pool_and_settings(
    make_database: Callable[[], Awaitable[str]], local_stack: LocalStack, topic_names: TopicNames
) -> AsyncIterator[tuple[asyncpg.Pool, RegistrySettings, ClusterAdmin]]:
    password = f"{GUSHI}-{uuid4().hex}"
    node_kafka = _kafka(local_stack, topic_names.namespace, principal(GUSHI, topic_names), password)
    admin = ClusterAdmin(
        _kafka(local_stack, topic_names.namespace, ADMIN_USER, ADMIN_PASSWORD), node_kafka
    )
    policy = TopicPolicy(partitions=1)
    admin.init_node(GUSHI, password, policy)
    admin.link(GUSHI, CHAOYANG, policy)  # not Putian: Gushi may not write there yet
    settings = RegistrySettings(
        node=GUSHI,
        partners=f"{CHAOYANG},{PUTIAN}",
        database_url=await make_database(),
        national_id_key=SecretStr("national-id-key-of-gushi-never-shared-0123"),
        kafka=node_kafka,
    )
    await migrate(settings)
    pool = await create_pool(settings.database_url, size=4)
    try:
        yield pool, settings, admin
    finally:
        await pool.close()


async def test_a_destination_the_node_may_not_write_to_is_parked_and_the_others_flow(
    pool_and_settings: tuple[asyncpg.Pool, RegistrySettings, ClusterAdmin],
    local_stack: LocalStack,
    topic_names: TopicNames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool, settings, admin = pool_and_settings
    t = topic_names
    async with pool.acquire() as conn:
        await init_node(conn, GUSHI, root_name="固始县委组织部")

    async def queue(topic: str, destination: str | None, body: bytes) -> int:
        return int(
            await pool.fetchval(
                "INSERT INTO outbox (event_id, event_type, topic, destination, record_key,"
                " value, trace_id) VALUES (gen_random_uuid(), 'yixian.test', $1, $2, 'k', $3,"
                " $4) RETURNING id",
                topic,
                destination,
                body,
                "0" * 32,
            )
        )

    to_putian = await queue(t.pair(GUSHI, PUTIAN), PUTIAN, b'{"to": "putian"}')  # no ACL at all
    inbound = await queue(t.pair(CHAOYANG, GUSHI), None, b'{"to": "itself"}')  # READ only
    to_chaoyang = await queue(t.pair(GUSHI, CHAOYANG), CHAOYANG, b'{"to": "chaoyang"}')
    local = await queue(t.local(GUSHI), None, b'{"to": "local"}')
    bootstrap = local_stack.config.kafka_bootstrap  # the stack's admin door, to read back

    stop = asyncio.Event()
    relay = asyncio.create_task(build_relay(settings, pool).run(stop))
    try:
        await _settled(pool)
        assert [r.value for r in await read_records(bootstrap, t.local(GUSHI), expected=1)] == [
            b'{"to": "local"}'
        ]
        (sent,) = await read_records(bootstrap, t.pair(GUSHI, CHAOYANG), expected=1)
        assert sent.value.startswith(b'{"to": "chaoyang"')
        reasons = {
            r["id"]: r["park_reason"]
            for r in await pool.fetch("SELECT * FROM outbox WHERE parked_at IS NOT NULL")
        }
        assert reasons == {to_putian: "not_authorized", inbound: "not_authorized"}
        published = {
            r["id"]
            for r in await pool.fetch("SELECT id FROM outbox WHERE published_at IS NOT NULL")
        }
        assert published == {to_chaoyang, local}

        env = {
            "YIXIAN_NODE": GUSHI,
            "YIXIAN_PARTNERS": f"{CHAOYANG},{PUTIAN}",
            "YIXIAN_DATABASE_URL": settings.database_url,
            "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": local_stack.config.sasl_bootstrap,
            "YIXIAN_KAFKA_TOPIC_NAMESPACE": t.namespace,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        cli = CliRunner()
        listed = await asyncio.to_thread(cli.invoke, app, ["outbox", "parked", "--json"])
        assert listed.exit_code == 0, listed.output
        parked = {(r["id"], r["park_reason"]) for r in json.loads(listed.output)}
        assert parked == {(to_putian, "not_authorized"), (inbound, "not_authorized")}

        await asyncio.to_thread(admin.link, GUSHI, PUTIAN, TopicPolicy(partitions=1))
        retried = await asyncio.to_thread(
            cli.invoke, app, ["outbox", "retry", str(to_putian), "--actor", "cli:ops"]
        )
        assert retried.exit_code == 0, retried.output
        await _settled(pool)
        (late,) = await read_records(bootstrap, t.pair(GUSHI, PUTIAN), expected=1)
        assert late.value.startswith(b'{"to": "putian"')
        assert b'"pairseq":1' in late.value.replace(b" ", b"")  # the number it was given

        discard = ["outbox", "discard", str(inbound), "--reason", "not ours", "--actor", "cli:ops"]
        dropped = await asyncio.to_thread(cli.invoke, app, discard)
        assert dropped.exit_code == 0, dropped.output
    finally:
        stop.set()
        await asyncio.wait_for(relay, 30)
    state = {r["id"]: r for r in await pool.fetch("SELECT * FROM outbox")}
    assert state[to_putian]["published_at"] is not None
    assert state[inbound]["discarded_at"] is not None
    audit = [
        (r["actor"], r["action"], r["detail"]["outbox_id"])
        for r in await pool.fetch(
            "SELECT * FROM audit_log WHERE action LIKE 'outbox.%' ORDER BY id"
        )
    ]
    assert audit == [("cli:ops", "outbox.retry", to_putian), ("cli:ops", "outbox.discard", inbound)]
