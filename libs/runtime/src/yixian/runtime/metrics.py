"""Prometheus metrics every service shares: the route, and consumer lag read from Kafka."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from .kafka import consumer_lag
from .logging import get_logger
from .settings import KafkaSettings

log = get_logger(__name__)


def add_metrics_route(
    app: FastAPI,
    registry: CollectorRegistry,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """``/metrics``; ``refresh`` brings the gauges up to date first (on each scrape)."""

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        if refresh is not None:
            try:
                await refresh()
            except Exception as exc:  # a scrape still returns what is known
                log.warning("metrics refresh failed", error=str(exc) or type(exc).__name__)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class ConsumerLag:
    """The gauge ``yixian_consumer_lag{group,topic}``, read from the cluster on each scrape."""

    def __init__(self, registry: CollectorRegistry, kafka: KafkaSettings, group: str) -> None:
        self.kafka = kafka
        self.group = group
        self.gauge = Gauge(
            "yixian_consumer_lag",
            "Records on the topic the service's consumer group has not committed yet.",
            ["group", "topic"],
            registry=registry,
        )

    async def refresh(self, topics: Iterable[str]) -> None:
        lag = await consumer_lag(self.kafka, self.group, list(topics))
        for topic, value in lag.items():
            self.gauge.labels(group=self.group, topic=topic).set(value)
