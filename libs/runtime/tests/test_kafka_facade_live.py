"""The Kafka facade on the real broker: reading to the end, lag, topics, reachability."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER, LocalStack
from yixian.runtime.kafka import (
    Position,
    TopicPartition,
    client_options,
    committed_offsets,
    consumer_lag,
    kafka_reachable,
    make_producer,
    partitions_matching,
    read_records,
    read_topics,
    topics_matching,
)
from yixian.runtime.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


async def _topic(kafka: KafkaSettings, partitions: int = 3) -> str:
    name = f"facade-{uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def _produce(kafka: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = make_producer(kafka, client_id="facade-test", acks="all")
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value, key=f"k{i % 5}".encode())
    finally:
        await producer.stop()


async def test_reading_stops_where_the_topics_ended_and_misses_nothing(
    kafka: KafkaSettings,
) -> None:
    first, second = await _topic(kafka), await _topic(kafka, partitions=1)
    await _produce(kafka, first, [f"a{i}".encode() for i in range(40)])
    await _produce(kafka, second, [b"b0", b"b1"])
    seen: list[bytes] = []
    async with read_topics(kafka, [first, second, "no-such-topic"], max_records=7) as reading:
        assert reading.total == 42
        await _produce(kafka, first, [b"later"])  # after reading began: not read
        async for records in reading.batches():
            assert len(records) <= 7
            seen += [r.value or b"" for r in records]
    assert sorted(seen) == sorted([f"a{i}".encode() for i in range(40)] + [b"b0", b"b1"])
    by_partition: dict[int, list[int]] = {}
    async with read_topics(kafka, [first]) as reading:
        async for records in reading.batches():
            for r in records:
                by_partition.setdefault(r.partition, []).append(r.offset)
    assert all(offsets == sorted(offsets) for offsets in by_partition.values())
    assert sum(len(o) for o in by_partition.values()) == 41


async def test_reading_topics_none_of_which_exists_reads_nothing(kafka: KafkaSettings) -> None:
    for since in (None, datetime.now(UTC)):
        async with read_topics(kafka, ["no-such-topic"], since=since) as reading:
            assert reading.total == 0
            assert [r async for r in reading.batches()] == []


async def _placed(kafka: KafkaSettings, topic: str, count: int, partition: int) -> list[Position]:
    """``count`` records ``v<offset>`` on one partition, in one batch; their positions."""
    producer = make_producer(kafka, client_id="facade-test", acks="all")
    await producer.start()
    try:
        first = await producer.send_and_wait(topic, b"first", partition=partition)
        futures = [
            await producer.send(topic, f"v{first.offset + 1 + i}".encode(), partition=partition)
            for i in range(count - 1)
        ]
        placed = [first] + [await f for f in futures]
    finally:
        await producer.stop()
    return [Position(topic, m.partition, m.offset) for m in placed]


async def test_records_by_position_read_those_and_no_others(kafka: KafkaSettings) -> None:
    topic = await _topic(kafka, partitions=2)
    zero = await _placed(kafka, topic, 300, partition=0)
    one = await _placed(kafka, topic, 50, partition=1)
    # scattered single records, a run of three, the same position twice, and positions
    # the cluster has no record at: past a partition's end, a partition or a topic it lacks
    wanted = [zero[7], zero[150], zero[151], zero[152], zero[299], one[20], one[20]]
    absent = [
        Position(topic, 0, 300),
        Position(topic, 5, 0),
        Position("no-such-topic", 0, 3),
    ]
    found = await read_records(kafka, wanted + absent)
    assert [(r.partition, r.offset) for r in found.records] == [
        (0, 7), (0, 150), (0, 151), (0, 152), (0, 299), (1, 20),
    ]  # fmt: skip
    assert [r.value for r in found.records[1:4]] == [b"v150", b"v151", b"v152"]
    assert sorted(found.missing) == sorted(absent)
    assert found.read == 6  # in batches of up to 300 records: only the six asked for
    assert await read_records(kafka, []) == type(found)()
    # the partitions the caller found on the cluster: positions elsewhere are not asked for
    known = await read_records(kafka, wanted + absent, partitions=[TopicPartition(topic, 0)])
    assert [r.offset for r in known.records] == [7, 150, 151, 152, 299]
    assert sorted(known.missing) == sorted([*absent, one[20]])


async def test_reading_from_offsets_reads_only_the_rest(kafka: KafkaSettings) -> None:
    topic = await _topic(kafka, partitions=2)
    await _placed(kafka, topic, 100, partition=0)
    await _placed(kafka, topic, 10, partition=1)
    zero, one = TopicPartition(topic, 0), TopicPartition(topic, 1)
    async with read_topics(kafka, [topic], start_offsets={zero: 95, one: 500}) as reading:
        assert reading.starts == {zero: 95, one: 10}  # beyond the end: nothing to read
        assert reading.total == 5
        values = [r.value async for batch in reading.batches() for r in batch]
    assert values == [b"v95", b"v96", b"v97", b"v98", b"v99"]
    assert reading.read == 5
    async with read_topics(kafka, [topic], start_offsets={zero: -3}) as reading:
        assert reading.starts == {zero: 0, one: 0}  # below the start, or not given: the start
        assert reading.total == 110


async def test_committed_offsets_of_a_group(kafka: KafkaSettings) -> None:
    topic = await _topic(kafka, partitions=2)
    await _placed(kafka, topic, 4, partition=0)
    group = f"facade-{uuid4().hex[:8]}"
    zero, one = TopicPartition(topic, 0), TopicPartition(topic, 1)
    assert await committed_offsets(kafka, group, [zero, one]) == {zero: None, one: None}
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([zero])
        await consumer.commit({zero: 3})
    finally:
        await consumer.stop()
    assert await committed_offsets(kafka, group, [one, zero, zero]) == {zero: 3, one: None}


async def test_reading_from_a_time_skips_what_came_before(kafka: KafkaSettings) -> None:
    topic = await _topic(kafka, partitions=1)
    await _produce(kafka, topic, [b"old"])
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    await _produce(kafka, topic, [b"new"])
    async with read_topics(kafka, [topic], since=since) as reading:
        values = [r.value async for batch in reading.batches() for r in batch]
    assert values == [b"new"]
    async with read_topics(kafka, [topic], since=since + timedelta(days=1)) as reading:
        assert reading.total == 0
        assert [r async for r in reading.batches()] == []


async def test_lag_counts_what_a_group_has_not_committed(kafka: KafkaSettings) -> None:
    topic = await _topic(kafka)
    await _produce(kafka, topic, [b"x"] * 12)
    group = f"facade-{uuid4().hex[:8]}"
    assert await consumer_lag(kafka, group, [topic, "no-such-topic"]) == {topic: 12}
    assert await consumer_lag(kafka, group, ["no-such-topic"]) == {}


async def test_topics_by_pattern_and_reachability(kafka: KafkaSettings) -> None:
    topic = await _topic(kafka, partitions=1)
    assert await topics_matching(kafka, rf"^{topic}$") == [topic]
    assert await partitions_matching(kafka, rf"^{topic}$") == [TopicPartition(topic, 0)]
    assert await kafka_reachable(kafka)
    assert not await kafka_reachable(KafkaSettings(bootstrap_servers="127.0.0.1:9"))


async def test_every_client_logs_in_over_scram(local_stack: LocalStack) -> None:
    sasl = KafkaSettings(
        bootstrap_servers=local_stack.config.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        username=ADMIN_USER,
        password=ADMIN_PASSWORD,
    )
    topic = await _topic(sasl, partitions=1)
    await _produce(sasl, topic, [b"over scram"])
    async with read_topics(sasl, [topic]) as reading:
        assert [r.value async for batch in reading.batches() for r in batch] == [b"over scram"]
    assert await consumer_lag(sasl, f"facade-{uuid4().hex[:8]}", [topic]) == {topic: 1}
    assert await kafka_reachable(sasl)
    wrong = KafkaSettings(**(sasl.model_dump() | {"password": "wrong"}))
    assert not await kafka_reachable(wrong)
