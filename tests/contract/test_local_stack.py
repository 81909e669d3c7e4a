"""The local stack is the real thing: Kafka 4.x in KRaft mode and a PostgreSQL server,
with a fresh database and fresh topic names for every test."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.probe import FETCH, OFFSET_COMMIT, api_versions

pytestmark = pytest.mark.integration


async def test_broker_is_kafka_4(local_stack: LocalStack) -> None:
    versions = await api_versions("127.0.0.1", local_stack.config.kafka_port)
    # KIP-896: Kafka 4.0 dropped Fetch v0-v3 and OffsetCommit v0-v1; 3.x brokers had them.
    assert versions[FETCH][0] >= 4
    assert versions[OFFSET_COMMIT][0] >= 2
    assert (local_stack.kafka.reported_version() or "").startswith("4.")
    assert local_stack.kafka.version.startswith("4.")


async def test_broker_runs_in_kraft_mode(local_stack: LocalStack) -> None:
    properties = local_stack.kafka.properties.read_text()
    assert "process.roles=broker,controller" in properties
    assert "zookeeper" not in properties


async def test_postgres_is_a_real_server(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        fsync = await conn.fetchval("SHOW fsync")
    finally:
        await conn.close()
    assert int(version) >= 150000
    assert fsync == "on"


async def test_each_test_gets_an_empty_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        await conn.execute("CREATE TABLE scratch (id int)")  # gone for the next test
    finally:
        await conn.close()
    assert tables == 0


@pytest.mark.parametrize("attempt", [1, 2])
async def test_databases_are_not_shared(database_url: str, attempt: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('scratch')") is None
        await conn.execute("CREATE TABLE scratch (id int)")
    finally:
        await conn.close()


async def test_topic_names_are_unique_per_test(
    topic_names: TopicNames, kafka_bootstrap: str
) -> None:
    topic = topic_names.local("411525")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        marker = uuid4().bytes
        await producer.send_and_wait(topic, marker, key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}.check",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    values: list[bytes | None] = []
    try:
        async with asyncio.timeout(30):
            while not values:
                batches = await consumer.getmany(timeout_ms=1000)
                values += [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    assert values == [marker]  # nothing another test wrote


def test_a_namespaces_topics_are_deleted_and_no_others(
    local_stack: LocalStack, topic_names: TopicNames
) -> None:
    """What the session's end does with the namespaces its tests used: the broker restarts
    in seconds only while it keeps few partitions."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": local_stack.config.kafka_bootstrap})
    other = TopicNames(namespace=f"{topic_names.namespace}x")  # shares the prefix but the dot
    mine = [topic_names.local("411525"), topic_names.pair("411525", "110105")]
    theirs = other.local("411525")
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in [*mine, theirs]]).values():
        future.result(timeout=30)

    deleted = local_stack.kafka.delete_topics([f"{topic_names.namespace}."])

    assert sorted(deleted) == sorted(mine)
    left = set(admin.list_topics(timeout=30).topics)
    assert not left & set(mine)
    assert theirs in left
    local_stack.kafka.delete_topics([f"{other.namespace}."])
