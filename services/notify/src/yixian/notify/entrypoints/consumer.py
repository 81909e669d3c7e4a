"""Consuming the node's local topic, where every change of the node's records appears.

Notices are planned in the same transaction for a whole batch; the offset is committed
after it (``NACK_ON_ERROR``: a failure is delivered again, and notice keys absorb it).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from yixian.notify.config import NotifySettings
from yixian.notify.service_layer.planner import Planner
from yixian.runtime import get_logger, make_broker

log = get_logger(__name__)


async def _raw_bodies(message: Any) -> Any:
    return message.body


def build_consumer(settings: NotifySettings, pool: asyncpg.Pool, planner: Planner) -> KafkaBroker:
    broker = make_broker(settings.kafka, client_id=f"yixian-notify-{settings.node}")
    prefix = f"{settings.kafka.topic_namespace}." if settings.kafka.topic_namespace else ""

    @broker.subscriber(
        settings.kafka.topics.local(settings.node),
        group_id=f"{prefix}yixian.{settings.node}.notify",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=100,
        decoder=_raw_bodies,
    )
    async def on_events(bodies: list[bytes], message: KafkaMessage) -> None:
        raw = message.raw_message
        batch = raw if isinstance(raw, tuple) else (raw,)
        planned = 0
        async with pool.acquire() as conn, conn.transaction():
            for record in batch:
                planned += await planner.plan(conn, record.value or b"")
        if planned:
            log.info("notices planned", count=planned)

    return broker
