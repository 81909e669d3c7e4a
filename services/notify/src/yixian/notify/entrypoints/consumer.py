"""Consuming the node's local topic, where every change of the node's records appears.

Notices are planned in the same transaction for a whole batch; the offset is committed
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
from yixian.runtime.kafka import QUIET_FETCH_WAIT_MS, QUIET_LOOK_MS, raw_bodies

log = get_logger(__name__)


def build_consumer(
    settings: NotifySettings,
    transactions: Transactions,
    planner: Planner,
    planned: Callable[[], None] = lambda: None,
) -> KafkaBroker:
    """The subscriber of the node's local topic; ``planned`` is told once a batch's notices
    are committed (the dispatcher sends them at once)."""
    broker = make_broker(settings.kafka, client_id=f"yixian-notify-{settings.node}")

    @broker.subscriber(
        settings.kafka.topics.local(settings.node),
        group_id=settings.kafka.consumer_group(settings.node, "notify"),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=100,
        decoder=raw_bodies,
        no_reply=True,  # a record's reply_to header names no topic this node writes to
        fetch_max_wait_ms=QUIET_FETCH_WAIT_MS,
        consumer_timeout_ms=QUIET_LOOK_MS,
    )
    async def on_events(bodies: list[bytes]) -> None:
        # the batch's values in order (an empty record's as b""), on a real broker and on
        # FastStream's in-memory one alike
        count = 0
        async with transactions() as uow:
            for body in bodies:
                count += await planner.plan(uow, body)
        if count:
            log.info("notices planned", count=count)
            planned()

    return broker
