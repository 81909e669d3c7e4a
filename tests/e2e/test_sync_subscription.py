"""Sync reads exactly its linked partners' pair topics (ADR 27): a partner linked while
sync runs is read from then on, without a restart; a topic named like a pair topic to the
node that nobody linked is never read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import uuid4

import httpx
import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.kafka import ClusterAdmin, TopicPolicy, principal
from yixian.runtime.kafka import errors
from yixian.runtime.settings import KafkaSettings
from yixian.sync.bootstrap import migrate, start_node
from yixian.sync.config import SyncSettings

from .conftest import NetworkFactory
from .test_sync_resilience import _produce, _register
from .test_sync_scenarios import CHANGPING, CHAOYANG, GUSHI, PUTIAN

pytestmark = pytest.mark.e2e

UNLINKED = "999999"


async def _applied_from(node: LocalNode, partner: str) -> int:
    return int(await node.value("SELECT count(*) FROM inbox WHERE source = $1", partner))


async def test_a_partner_linked_while_sync_runs_is_read_and_an_unlinked_topic_never(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    # Chaoyang starts linked with Gushi only; Putian already sends to Chaoyang
    only = {code: {"YIXIAN_PARTNERS": p} for code, p in
            {CHAOYANG: GUSHI, GUSHI: CHAOYANG, PUTIAN: CHAOYANG}.items()}  # fmt: skip
    nodes = await network([GUSHI, CHAOYANG, PUTIAN], env_of=only)
    gushi, chaoyang, putian = nodes[GUSHI], nodes[CHAOYANG], nodes[PUTIAN]
    unlinked = topic_names.pair(UNLINKED, CHAOYANG)  # the old pattern would have read it
    await _produce(local_stack, unlinked, [(b"k", b"not an event")])

    from_gushi = await _register(gushi, 2)
    from_putian = await _register(putian, 2)

    async def have(movements: list[str]) -> bool:
        rows = await chaoyang.query("SELECT movement_id::text AS id FROM movements")
        return set(movements) <= {r["id"] for r in rows}

    await eventually(lambda: have(from_gushi), what="Gushi's movements at Chaoyang")
    await eventually(
        lambda: putian.value(
            "SELECT bool_and(published_at IS NOT NULL) FROM outbox WHERE destination = $1"
            " AND event_type = 'yixian.movement.origin_group.v1'",
            CHAOYANG,
        ),
        what="Putian's events on its pair topic",
    )
    assert await _applied_from(chaoyang, PUTIAN) == 0, "no link with Putian yet"

    assert chaoyang.sync.url is not None
    async with httpx.AsyncClient(base_url=chaoyang.sync.url, timeout=30) as sync:
        refused = await sync.put(f"/v1/links/{UNLINKED}")
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "partner"
        itself = await sync.put(f"/v1/links/{CHAOYANG}")
        assert (itself.status_code, itself.json()["field"]) == (422, "partner")
        assert (await sync.put("/v1/links/11010x")).status_code == 422

        linked = await sync.put(f"/v1/links/{PUTIAN}")
        assert (linked.status_code, linked.json()["status"]) == (201, "linked")
        assert (await sync.put(f"/v1/links/{PUTIAN}")).status_code == 200
        # a partner linked before its topic exists does not break the consumer
        assert (await sync.put(f"/v1/links/{CHANGPING}")).status_code == 201

    await eventually(lambda: have(from_putian), what="Putian's movements at Chaoyang")
    more = await _register(gushi, 1)
    await eventually(lambda: have(more), what="Gushi's later movement at Chaoyang")

    assert await chaoyang.value("SELECT count(*) FROM inbox WHERE topic = $1", unlinked) == 0
    assert await chaoyang.value("SELECT count(*) FROM dead_letters") == 0
    partners = {view["partner"] for view in await chaoyang.sync_get("/v1/links")}
    assert partners == {GUSHI, PUTIAN, CHANGPING}


async def test_a_start_refused_by_the_cluster_leaves_no_client_running(
    local_stack: LocalStack, topic_names: TopicNames, make_database: Callable[[], Awaitable[str]]
) -> None:
    """A node put on a host before ``partner link`` granted it its partners' topics: sync's
    start is refused (the host retries it later), and none of the Kafka clients it started
    stays connected, refreshing its metadata for the life of the process."""
    password = f"{GUSHI}-{uuid4().hex}"
    admin = ClusterAdmin(
        KafkaSettings(
            bootstrap_servers=local_stack.config.sasl_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            username=ADMIN_USER,
            password=ADMIN_PASSWORD,
            topic_namespace=topic_names.namespace,
        ),
        KafkaSettings(topic_namespace=topic_names.namespace),
    )
    await asyncio.to_thread(admin.init_node, GUSHI, password, TopicPolicy(partitions=1))
    settings = SyncSettings(
        node=GUSHI,
        partners=CHAOYANG,  # not linked: Gushi may not read Chaoyang's topic yet
        database_url=await make_database(),
        kafka=KafkaSettings(
            bootstrap_servers=local_stack.config.sasl_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            username=principal(GUSHI, topic_names),
            password=password,
            topic_namespace=topic_names.namespace,
        ),
    )
    await migrate(settings)

    def kafka_tasks() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if "aiokafka" in repr(t.get_coro()).lower()]

    before = kafka_tasks()
    with pytest.raises(errors.TopicAuthorizationFailedError):
        await start_node(settings)
    await asyncio.sleep(0)  # cancelled tasks end on the next turn of the loop
    assert [t for t in kafka_tasks() if t not in before and not t.done()] == []
