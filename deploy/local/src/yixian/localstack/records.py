"""Reading back what landed on a topic, for tests and drills."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import uuid4

from aiokafka import AIOKafkaConsumer


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


async def read_records(
    bootstrap: str, topic: str, *, expected: int, within: float = 60.0, settle: float = 1.0
) -> list[Record]:
    """Every record of ``topic`` from the start: waits for ``expected`` of them, then a
    little longer (``settle`` seconds) so that duplicates would show too."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Record] = []
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        settled_at: float | None = None
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for batch in batches.values():
                records.extend(
                    Record(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple((k, bytes(v)) for k, v in r.headers),
                    )
                    for r in batch
                )
            if len(records) >= expected:
                settled_at = settled_at or loop.time()
                if loop.time() - settled_at >= settle:
                    break
    finally:
        await consumer.stop()
    return records
