"""Consuming the pair topics addressed to this node by its linked partners (FastStream).

The subscription is an explicit list of topics, never a pattern (ADR 27): a pattern makes
the broker authorize every topic at each metadata refresh, and would read a topic nobody
linked. ``IncomingConsumer`` checks the linked partners every
``YIXIAN_METADATA_REFRESH_SECONDS`` and, when the list changed, subscribes the running
aiokafka consumer to the new list (one rebalance of the group, no restart; what is already
committed stays committed). A linked partner's topic that does not exist yet is simply
not assigned until it does.

Offsets are committed only after the apply transaction committed (``NACK_ON_ERROR``: an
exception seeks back and the record is delivered again, which the inbox absorbs).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from yixian.runtime import get_logger, make_broker
from yixian.runtime.kafka import QUIET_FETCH_WAIT_MS, QUIET_LOOK_MS, batch_records, raw_bodies
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.config import SyncSettings
from yixian.sync.service_layer.applier import Applier
from yixian.sync.service_layer.repositories import Inbound
from yixian.sync.service_layer.subscription import resubscription

__all__ = ["IncomingConsumer", "build_consumer"]

log = get_logger(__name__)
RETRIES = 8


class _Subscribable(Protocol):
    """What ``IncomingConsumer`` uses of aiokafka's consumer."""

    def subscription(self) -> set[str]: ...

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None: ...


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Logs what the group gives this node; the same instance serves every subscription."""

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        log.info(
            "partitions revoked", partitions=sorted(f"{p.topic}:{p.partition}" for p in revoked)
        )

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned", partitions=sorted(f"{p.topic}:{p.partition}" for p in assigned)
        )


def build_consumer(
    settings: SyncSettings,
    applier: Applier,
    metrics: SyncMetrics,
    incoming: Sequence[str],
    listener: ConsumerRebalanceListener | None = None,
    applied: Callable[[], None] = lambda: None,
) -> KafkaBroker:
    """A broker whose one subscriber applies the records of the ``incoming`` pair topics;
    ``applied`` is told after each batch (the link keeper folds its numbers in at once)."""
    broker = make_broker(
        settings.kafka,
        client_id=f"yixian-sync-{settings.node}",
        metadata_max_age_ms=int(settings.metadata_refresh_seconds * 1000),
        # sync publishes through the outbox only: no producer and no admin client, whose
        # metadata refreshes would each read every topic of the cluster
        consumer_only=True,
    )

    @broker.subscriber(
        *incoming,
        group_id=settings.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=100,
        decoder=raw_bodies,
        no_reply=True,  # a record's reply_to header names no topic this node writes to
        fetch_max_wait_ms=QUIET_FETCH_WAIT_MS,
        consumer_timeout_ms=QUIET_LOOK_MS,
        listener=listener,
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
            applied()
            return

    return broker


class IncomingConsumer:
    """The node's consumer of its partners' pair topics, kept subscribed to exactly the
    topics ``wanted`` names (the linked partners' ones).

    FastStream needs at least one topic to declare a subscriber: while the node has no
    linked partner, nothing is consumed and no broker runs."""

    def __init__(
        self,
        settings: SyncSettings,
        applier: Applier,
        metrics: SyncMetrics,
        wanted: Callable[[], Awaitable[list[str]]],
        applied: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.applier = applier
        self.metrics = metrics
        self.wanted = wanted
        self.applied = applied
        self.broker: KafkaBroker | None = None
        self.topics: list[str] = []
        """The topics asked for last (the consumer follows them after its next rebalance)."""
        self._listener = _Rebalances()

    async def start(self) -> None:
        await self.follow()

    async def follow(self) -> None:
        """Subscribe to the topics wanted now, if they changed."""
        wanted = await self.wanted()
        if self.broker is None:
            if wanted:
                broker = build_consumer(
                    self.settings, self.applier, self.metrics, wanted, self._listener, self.applied
                )
                try:
                    await broker.start()
                except BaseException:
                    # e.g. a partner's topic not yet readable by this node's principal (linked
                    # after the node started): the clients it did start would stay connected,
                    # refreshing their metadata, for as long as the process lives
                    await broker.stop()
                    raise
                self.broker, self.topics = broker, wanted
                log.info("consuming", topics=wanted)
            return
        if not wanted:  # links are never dropped while running; a restart reads the rest
            return
        consumer = self._consumer()
        if consumer is None:
            return  # FastStream is restarting it; it comes back with its first list
        change = resubscription(consumer.subscription(), wanted)
        if change is not None:
            consumer.subscribe(topics=change, listener=self._listener)
            self.topics = change
            log.info("subscription changed", topics=change)

    def _consumer(self) -> _Subscribable | None:
        assert self.broker is not None
        [subscriber] = self.broker.subscribers
        consumer: _Subscribable | None = getattr(subscriber, "consumer", None)
        return consumer

    async def run(self, stop: asyncio.Event) -> None:
        """Check the linked partners every ``metadata_refresh_seconds`` until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.metadata_refresh_seconds)
            if stop.is_set():
                return
            try:
                await self.follow()
            except self.applier.transient as exc:
                log.warning("checking the links failed; retrying", error=str(exc))
            except Exception:
                log.exception("checking the links failed unexpectedly; retrying")

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None


def _pause(attempt: int) -> float:
    """Seconds to wait before the ``attempt``-th try again: doubling, at most ten."""
    return min(0.2 * 2.0**attempt, 10.0)
