"""A trace reads what the node recorded and what sync has not read, never the history.

A pair topic holds 20,000 records of other movements and a movement's few: two events
sync applied, one it refused (its number beyond reach), a record that is not an event,
and an event sync has not read yet. The movement's records went through the real sync
applier (so the inbox and the dead letters point at their real offsets); the others are
in the inbox as sync would have them, and sync's group has committed past them all but
the tail. The trace finds exactly what the full read from the start finds, while the
cluster hands it no more records than the node recorded for the movement plus the tail.
"""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from click.testing import Result
from confluent_kafka import Producer
from typer.testing import CliRunner

from yixian.contracts import OriginGroupChanged, TopicNames, make_event
from yixian.contracts.examples import AT, MOVEMENT, TRACEPARENT, origin_group
from yixian.ops.cli import app
from yixian.ops.trace import Hop, database_hops, read_topic_hops, resolve, timeline, topic_hops
from yixian.record.schema import with_node_schema
from yixian.registry import bootstrap as registry
from yixian.runtime import create_pool
from yixian.runtime.kafka import Position, TopicPartition, client_options
from yixian.runtime.migrations import apply_all
from yixian.runtime.settings import KafkaSettings
from yixian.sync import bootstrap as sync
from yixian.sync.service_layer.applier import SyncConfig
from yixian.sync.service_layer.links import LinkPolicy
from yixian.sync.service_layer.repositories import Inbound

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

GUSHI, CHAOYANG = "411525", "110105"
OTHERS = 20_000
TAIL_OTHERS = 30
BEYOND_REACH = 10_000_000
"""A pair number far past anything Gushi sent: sync refuses the event as a dead letter."""


def _event(version: int, pairseq: int) -> tuple[str, bytes]:
    event = make_event(
        OriginGroupChanged(group=origin_group(version=version)),
        node=GUSHI,
        time=AT,
        traceparent=TRACEPARENT,
        subject=str(MOVEMENT),
        correlationid=MOVEMENT,
    ).with_pairseq(pairseq)
    return str(event.id), event.encode()


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> list[Position]:
    """Records in order, batched (the plaintext super-user); where each one landed."""
    placed: list[Position | None] = [None] * len(records)

    def landed(index: int):  # type: ignore[no-untyped-def]
        def report(error, message):  # type: ignore[no-untyped-def]
            assert error is None, error
            placed[index] = Position(message.topic(), message.partition(), message.offset())

        return report

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    for index, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(topic, value, key=key, on_delivery=landed(index))
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    assert all(p is not None for p in placed)
    return [p for p in placed if p is not None]


def _others(count: int) -> list[tuple[bytes, bytes]]:
    """Records of other movements: realistic keys, ~100-byte values."""
    out = []
    for i in range(count):
        key = str(uuid4()).encode()
        out.append(
            (key, b'{"movement": "' + key + b'", "filler": "' + b"x" * 40 + b'", "n": %d}' % i)
        )
    return out


def _identities(hops: list[Hop]) -> set[tuple[object, ...]]:
    return {(h.at, h.node, h.service, h.step, h.outcome, h.detail, h.event_id) for h in hops}


async def test_a_trace_reads_the_recorded_records_and_the_unread_tail_only(
    database_url: str, topic_names: TopicNames, kafka_bootstrap: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_namespace=topic_names.namespace)
    topic = topic_names.pair(GUSHI, CHAOYANG)
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    await apply_all(
        database_url,
        [*with_node_schema(registry.SERVICE, registry.MIGRATIONS), (sync.SERVICE, sync.MIGRATIONS)],
    )
    key = str(MOVEMENT).encode()
    first_id, first = _event(1, 1)
    second_id, second = _event(2, 2)
    refused_id, refused = _event(3, BEYOND_REACH)
    unread_id, unread = _event(4, 3)

    # what sync has read: the movement's records among 20,000 others
    half = OTHERS // 2
    records = [
        *_others(half), (key, first), (key, refused), (key, b"not an event"),
        *_others(half // 2), (key, second), *_others(half - half // 2),
    ]  # fmt: skip
    placed = await asyncio.to_thread(_produce, kafka_bootstrap, topic, records)
    mine = [p for p, (k, _) in zip(placed, records, strict=True) if k == key]
    partition = mine[0].partition
    assert {p.partition for p in mine} == {partition}

    pool = await create_pool(database_url, size=2)
    try:
        applier = sync.build_applier(
            pool, SyncConfig(CHAOYANG, topic_names, LinkPolicy()), lambda: AT
        )
        outcomes = [
            await applier.handle(Inbound(p.topic, p.partition, p.offset, k, v))
            for p, (k, v) in zip(placed, records, strict=True)
            if k == key
        ]
        assert outcomes == ["applied", "dead_letter", "dead_letter", "applied"]
        async with pool.acquire() as conn:
            # the other movements' events, in the inbox as sync would have put them
            others = [(p, k) for p, (k, _) in zip(placed, records, strict=True) if k != key]
            await conn.execute(
                "INSERT INTO inbox (source, event_id, event_type, topic, partition, \"offset\","
                " movement_id, outcome) SELECT $1, gen_random_uuid(),"
                " 'yixian.movement.origin_group.v1', $2, p, o, m, 'applied'"
                " FROM unnest($3::integer[], $4::bigint[], $5::uuid[]) AS x(p, o, m)",
                GUSHI, topic, [p.partition for p, _ in others], [p.offset for p, _ in others],
                [UUID(k.decode()) for _, k in others],
            )  # fmt: skip
        ends: dict[TopicPartition, int] = {}
        for p in placed:
            tp = TopicPartition(p.topic, p.partition)
            ends[tp] = max(ends.get(tp, 0), p.offset + 1)
        group = AIOKafkaConsumer(
            **client_options(kafka),
            group_id=kafka.consumer_group(CHAOYANG, "sync"),
            enable_auto_commit=False,
        )
        await group.start()
        try:
            group.assign(list(ends))
            await group.commit(ends)
        finally:
            await group.stop()

        # what sync has not read yet: a few others and the movement's latest event
        tail = [*_others(TAIL_OTHERS), (key, unread)]
        await asyncio.to_thread(_produce, kafka_bootstrap, topic, tail)

        async with pool.acquire() as conn:
            movements, _ = await resolve(conn, MOVEMENT)
            assert movements == {MOVEMENT}
            found = await read_topic_hops(kafka, CHAOYANG, movements, conn)
            on_this_node = await database_hops(conn, CHAOYANG, movements)

        assert found.recorded == 4  # two applied, two refused
        assert found.missing == 0
        assert found.tail == TAIL_OTHERS + 1
        assert found.read <= found.recorded + found.tail
        assert found.read == 4 + TAIL_OTHERS + 1  # the unreadable record is fetched too
        by_event: dict[str | None, set[str]] = {}
        for hop in found.hops:
            assert hop.via == "topic"
            by_event.setdefault(hop.event_id, set()).add(f"{hop.service} {hop.step}")
        both = {"registry commit origin_group", "relay publish origin_group"}
        assert by_event == {first_id: both, second_id: both, refused_id: both, unread_id: both}
        published = {h.event_id: h.detail for h in found.hops if h.service == "relay"}
        assert published[refused_id] == f"to {topic} #{BEYOND_REACH}"

        # the database's own hops: the applies, and each refusal with its reason
        steps = {(h.service, h.step, h.outcome, h.event_id) for h in on_this_node}
        assert ("sync", "apply origin_group", "applied", first_id) in steps
        assert ("sync", "apply origin_group", "applied", second_id) in steps
        assert ("sync", "refuse origin_group", "dead_letter", refused_id) in steps
        assert ("sync", "refuse record", "dead_letter", None) in steps
        refusals = {h.step: h.detail for h in on_this_node if h.step.startswith("refuse")}
        assert "beyond reach" in refusals["refuse origin_group"]
        assert f"@{mine[2].offset}: not JSON" in refusals["refuse record"]
        assert not any(h.event_id == unread_id for h in on_this_node)  # not applied yet
        assert [h.event_id for h in timeline(on_this_node + found.hops)].count(unread_id) == 2

        # the full read from the start shows exactly the same, reading every record
        everything = await read_topic_hops(kafka, CHAOYANG, movements)
        assert everything.read == OTHERS + 4 + TAIL_OTHERS + 1
        assert _identities(everything.hops) == _identities(found.hops)
        assert _identities(await topic_hops(kafka, CHAOYANG, movements)) == _identities(found.hops)

        # the operator's command says when a record the node received is gone from the topic
        env = {
            "YIXIAN_NODE": CHAOYANG,
            "YIXIAN_DATABASE_URL": database_url,
            "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "YIXIAN_KAFKA_TOPIC_NAMESPACE": topic_names.namespace,
        }
        admin = AIOKafkaAdminClient(**client_options(kafka))
        await admin.start()
        try:  # as a retention would: the first event and everything before it
            await admin.delete_records(
                {TopicPartition(topic, partition): RecordsToDelete(mine[0].offset + 1)}
            )
        finally:
            await admin.close()
        async with pool.acquire() as conn:
            after = await read_topic_hops(kafka, CHAOYANG, movements, conn)
        assert after.missing == 1
        assert first_id not in {h.event_id for h in after.hops}
        printed = await _yixian(env, "trace", str(MOVEMENT))
        assert printed.exit_code == 0, printed.output
        assert "1 record(s) this node received are no longer on the pair topics" in printed.stderr
        assert "sync     apply origin_group" in printed.stdout

        # a broker that does not answer: the setting named, not a traceback
        down = env | {"YIXIAN_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
        printed = await _yixian(down, "trace", str(MOVEMENT))
        assert printed.exit_code == 1
        assert "YIXIAN_KAFKA_BOOTSTRAP_SERVERS: no Kafka broker answers" in printed.stderr
        assert "Traceback" not in printed.output
    finally:
        await pool.close()


async def _yixian(env: dict[str, str], *args: str) -> Result:
    """``yixian`` in this process (its own event loop, in a thread)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)
