"""Consuming every pair topic addressed to this node (FastStream, pattern subscription).

Offsets are committed only after the apply transaction committed (``NACK_ON_ERROR``: an
exception seeks back and the record is delivered again, which the inbox absorbs).
"""

from __future__ import annotations

import asyncio
import time

from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from yixian.runtime import get_logger, make_broker
from yixian.runtime.kafka import batch_records, raw_bodies
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.config import SyncSettings
from yixian.sync.service_layer.applier import Applier
from yixian.sync.service_layer.repositories import Inbound

log = get_logger(__name__)
RETRIES = 8


def build_consumer(settings: SyncSettings, applier: Applier, metrics: SyncMetrics) -> KafkaBroker:
    broker = make_broker(
        settings.kafka,
        client_id=f"yixian-sync-{settings.node}",
        metadata_max_age_ms=int(settings.metadata_refresh_seconds * 1000),
    )
    topics = settings.kafka.topics

    @broker.subscriber(
        pattern=topics.incoming_pattern(settings.node),
        group_id=settings.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=100,
        decoder=raw_bodies,
    )
    async def on_records(bodies: list[bytes], message: KafkaMessage) -> None:
        records = [
            Inbound(r.topic, r.partition, r.offset, r.key, r.value or b"")
            for r in batch_records(message)
        ]
        for attempt in range(1, RETRIES + 1):
            started = time.perf_counter()
            try:
                outcomes = await applier.handle_batch(records)
            except applier.transient as exc:
                if attempt == RETRIES:
                    raise  # not acknowledged: the batch is delivered again after the seek
                log.warning("apply failed; retrying", error=str(exc), attempt=attempt)
                await asyncio.sleep(_pause(attempt))
                continue
            elapsed = time.perf_counter() - started
            for record, outcome in zip(records, outcomes, strict=True):
                metrics.apply_seconds.observe(elapsed / len(records))
                partner = record.topic.rsplit(".to.", 1)[0][-6:]
                metrics.events.labels(partner=partner, outcome=outcome).inc()
            return

    return broker


def _pause(attempt: int) -> float:
    """Seconds to wait before the ``attempt``-th try again: doubling, at most ten."""
    return min(0.2 * 2.0**attempt, 10.0)
