"""What the figures are compared with, measured in the same run on the same servers:
Kafka's own producer and consumer performance tools, pgbench running the writes sync makes
for each event, and a peer relay (faststream-outbox) on the same PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from confluent_kafka import Consumer, Producer, TopicPartition

from yixian.localstack import LocalStack

PGBENCH_EVENTS_PER_TRANSACTION = 50
"""Sync applies a consumer batch in one transaction; the ceiling does the same."""


def _run(command: list[str], timeout: float) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def kafka_producer_ceiling(stack: LocalStack, topic: str, records: int, size: int) -> float:
    """Records/s from Kafka's ProducerPerformance (acks=all, idempotent, as the relay)."""
    command = stack.kafka._java(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(size),
        "--throughput", "-1", "--producer-props",
        f"bootstrap.servers={stack.config.kafka_bootstrap}", "acks=all",
        "enable.idempotence=true", "linger.ms=5", "batch.size=65536",
        heap="512m",
    )  # fmt: skip
    out = _run(command, timeout=600)
    found = re.findall(r"records sent, ([\d.]+) records/sec", out)
    if not found:
        raise RuntimeError(f"ProducerPerformance printed no summary:\n{out[-2000:]}")
    return float(found[-1])


def kafka_consumer_ceiling(stack: LocalStack, topic: str, records: int) -> float:
    """Records/s from Kafka's ConsumerPerformance reading ``records`` of ``topic``."""
    command = stack.kafka._java(
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server", stack.config.kafka_bootstrap, "--topic", topic,
        "--messages", str(records), "--group", f"bench-{uuid4().hex[:8]}", "--hide-header",
        heap="512m",
    )  # fmt: skip
    out = _run(command, timeout=600)
    for line in out.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) >= 6 and re.fullmatch(r"[\d.]+", fields[5]):
            return float(fields[5])
    raise RuntimeError(f"ConsumerPerformance printed no summary:\n{out[-2000:]}")


def pgbench_script(group_json: str) -> str:
    """One transaction of ``PGBENCH_EVENTS_PER_TRANSACTION`` events, each with the writes
    sync makes to apply a partner's group: inbox claim, link arrival, the replica, its
    history, and the local announcement in the outbox (a pgbench script, not a query)."""
    event = """
\\set linkseq :seq + 1000000000 * :client_id
INSERT INTO inbox (source, event_id, event_type, topic, partition, "offset", pairseq,
    movement_id, outcome, trace_id, event_time)
    VALUES ('411525', gen_random_uuid(), 'yixian.movement.origin_group.v1', 'bench', 0,
    :seq, :seq, gen_random_uuid(), 'applied', repeat('a', 32), now());
INSERT INTO link_received (partner, seq) VALUES ('411525', :linkseq)
    ON CONFLICT DO NOTHING;
WITH m AS (SELECT gen_random_uuid() AS id)
INSERT INTO movements (movement_id, origin, host, member_id, origin_version, origin_status,
    origin_group) SELECT id, '411525', '110105', id, 1, 'registered', ':group'::jsonb FROM m
    ON CONFLICT (movement_id) DO UPDATE SET origin_version = EXCLUDED.origin_version,
    origin_group = EXCLUDED.origin_group;
INSERT INTO movement_history (movement_id, group_name, version, snapshot, event_id)
    VALUES (gen_random_uuid(), 'origin', 1, ':group'::jsonb, gen_random_uuid());
INSERT INTO outbox (event_id, event_type, topic, record_key, value, movement_id, trace_id)
    VALUES (gen_random_uuid(), 'yixian.movement.origin_group.v1', 'bench.local', 'k',
    convert_to(':group', 'UTF8'), gen_random_uuid(), repeat('a', 32));
\\set seq :seq + 1""".replace(":group", group_json)
    body = "\n".join([event] * PGBENCH_EVENTS_PER_TRANSACTION)
    return f"\\set seq random(1, 1000000000)\nBEGIN;{body}\nEND;\n"


def postgres_ceiling(stack: LocalStack, database: str, script: Path, seconds: int) -> float:
    """Events/s pgbench reaches with the apply's writes (4 clients, fsync on)."""
    pgbench = stack.postgres.bin_dir() / "pgbench"
    command = [
        str(pgbench), "-h", "127.0.0.1", "-p", str(stack.config.postgres_port),
        "-U", stack.config.postgres_user, "-n", "-c", "4", "-j", "2",
        "-T", str(seconds), "-f", str(script), database,
    ]  # fmt: skip
    out = _run(command, timeout=seconds + 120)
    found = re.search(r"tps = ([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out[-2000:]}")
    return float(found.group(1)) * PGBENCH_EVENTS_PER_TRANSACTION


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Put (key, value) records on ``topic`` as a relay would (acks=all)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all", "compression.type": "none"}
    )
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120) != 0:
        raise RuntimeError("records left unsent")


def topic_size(bootstrap: str, topic: str) -> int:
    return sum(high - low for low, high in _watermarks(bootstrap, topic).values())


def watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset of each partition of ``topic``."""
    return {p: high for p, (_, high) in _watermarks(bootstrap, topic).items()}


def _watermarks(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-size"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in partitions
        }
    finally:
        consumer.close()


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``offsets`` (partition -> next offset) of ``topic`` for ``group``, as its
    consumer would after applying everything before them."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, offset) for p, offset in offsets.items()],
            asynchronous=False,
        )
    finally:
        consumer.close()


async def peer_relay(stack: LocalStack, dsn: str, topic: str, value: bytes, rows: int) -> float:
    """Rows/s the faststream-outbox relay moves from its PostgreSQL table to Kafka, for a
    backlog of ``rows`` — the same shape as the relay figure (its best settings here:
    batches of 500, four workers, a millisecond between fetches)."""
    from faststream.kafka import KafkaBroker
    from faststream_outbox import OutboxBroker, make_outbox_table
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    metadata = MetaData()
    table = make_outbox_table(metadata, table_name="peer_outbox")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    # per-message log lines at DEBUG, as our services have them; its lifecycle lines quiet
    quiet = logging.getLogger("yixian.bench.peer")
    quiet.setLevel(logging.WARNING)
    outbox = OutboxBroker(engine, outbox_table=table, logger=quiet, log_level=logging.DEBUG)
    for start in range(0, rows, 1000):
        async with engine.begin() as conn:
            count = min(1000, rows - start)
            await outbox.publish_batch(*([value] * count), queue="bench", session=conn)
    kafka = KafkaBroker(stack.config.kafka_bootstrap, logger=quiet, log_level=logging.DEBUG)
    publisher = kafka.publisher(topic)

    @publisher
    @outbox.subscriber(
        "bench", fetch_batch_size=500, max_workers=4, min_fetch_interval=0.001,
        max_fetch_interval=0.05,
    )  # fmt: skip
    async def relay(body: dict[str, Any]) -> dict[str, Any]:  # its quickstart's relay
        return body

    await kafka.start()
    started = time.monotonic()
    await outbox.start()
    try:
        while True:
            if await asyncio.to_thread(topic_size, stack.config.kafka_bootstrap, topic) >= rows:
                break
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        await outbox.stop()
        await kafka.stop()
        await engine.dispose()
    return rows / elapsed
