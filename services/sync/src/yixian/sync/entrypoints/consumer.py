"""Consuming every pair topic addressed to this node (FastStream, pattern subscription).

Offsets are committed only after the apply transaction committed (``NACK_ON_ERROR``: an
exception seeks back and the record is delivered again, which the inbox absorbs).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from yixian.runtime import get_logger, make_broker
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.adapters.store import Inbound
from yixian.sync.config import SyncSettings
from yixian.sync.service_layer.applier import Applier

log = get_logger(__name__)
RETRIES = 8


async def _raw_body(message: Any) -> bytes:
    """Keep the bytes: the applier decodes and validates them itself."""
    body: bytes = message.body
    return body


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
        decoder=_raw_body,
    )
    async def on_record(body: bytes, message: KafkaMessage) -> None:
        raw = message.raw_message
        record = Inbound(
            topic=raw.topic,  # type: ignore[union-attr]
            partition=raw.partition,  # type: ignore[union-attr]
            offset=raw.offset,  # type: ignore[union-attr]
            key=raw.key,  # type: ignore[union-attr]
            value=body,
        )
        partner = record.topic.rsplit(".to.", 1)[0][-6:]
        for attempt in range(1, RETRIES + 1):
            started = time.perf_counter()
            try:
                outcome = await applier.handle(record)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if attempt == RETRIES:
                    raise  # not acknowledged: delivered again after the seek
                log.warning("apply failed; retrying", error=str(exc), attempt=attempt)
                await asyncio.sleep(min(0.2 * 2**attempt, 10))
                continue
            metrics.apply_seconds.observe(time.perf_counter() - started)
            metrics.events.labels(partner=partner, outcome=outcome).inc()
            return

    return broker
