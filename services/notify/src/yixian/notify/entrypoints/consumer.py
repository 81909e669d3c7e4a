"""Consuming the node's local topic, where every change of the node's records appears.

Notices are planned for a whole batch at once, in one transaction; the offset is committed
after it (``NACK_ON_ERROR``: a failure is delivered again, and notice keys absorb it).
"""

from __future__ import annotations

from collections.abc import Callable

from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy

from yixian.notify.config import NotifySettings
from yixian.notify.service_layer.planner import Planner
from yixian.notify.service_layer.unit_of_work import Transactions
from yixian.runtime import get_logger, make_broker
from yixian.runtime.kafka import QUIET_LOOK_MS, raw_bodies

log = get_logger(__name__)
FETCH_BYTES = 256 * 1024
FETCH_WAIT_MS = 200


def build_consumer(
    settings: NotifySettings,
    transactions: Transactions,
    planner: Planner,
    planned: Callable[[], None] = lambda: None,
) -> KafkaBroker:
    """The subscriber of the node's local topic; ``planned`` is told once a batch's notices
    are committed (the dispatcher sends them at once)."""
    # notify publishes nothing: no producer and no admin client, whose metadata refreshes
    # would each read every topic of the cluster
    broker = make_broker(
        settings.kafka, client_id=f"yixian-notify-{settings.node}", consumer_only=True
    )

    @broker.subscriber(
        settings.kafka.topics.local(settings.node),
        group_id=settings.kafka.consumer_group(settings.node, "notify"),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=100,
        # the broker answers a fetch once it holds FETCH_BYTES or after FETCH_WAIT_MS: a
        # notice waits up to that long, and a batch is planned (a transaction, an offset
        # committed) for that long's events rather than for each one as it comes
        fetch_min_bytes=FETCH_BYTES,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        decoder=raw_bodies,
        no_reply=True,  # a record's reply_to header names no topic this node writes to
        consumer_timeout_ms=QUIET_LOOK_MS,
    )
    async def on_events(bodies: list[bytes]) -> None:
        # the batch's values in order (an empty record's as b""), on a real broker and on
        # FastStream's in-memory one alike
        async with transactions() as uow:
            count = await planner.plan_batch(uow, bodies)
        if count:
            log.info("notices planned", count=count)
            planned()

    return broker
