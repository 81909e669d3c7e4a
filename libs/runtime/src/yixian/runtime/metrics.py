"""Prometheus metrics every service shares: the route, and consumer lag read from Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from .logging import get_logger
from .settings import KafkaSettings

log = get_logger(__name__)
TIMEOUT = 10.0


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


def librdkafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The same connection as ``kafka``, for the confluent-kafka clients."""
    config: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers}
    if kafka.security_protocol != "PLAINTEXT":
        if kafka.username is None or kafka.password is None:
            raise ValueError("SASL needs a user name and a password")
        config |= {
            "security.protocol": kafka.security_protocol,
            "sasl.mechanism": kafka.sasl_mechanism,
            "sasl.username": kafka.username,
            "sasl.password": kafka.password.get_secret_value(),
        }
        if kafka.ssl_cafile:
            config["ssl.ca.location"] = kafka.ssl_cafile
    return config


def consumer_lag(kafka: KafkaSettings, group: str, topics: Iterable[str]) -> dict[str, int]:
    """Records not yet committed by ``group``, per topic (all of them if it never committed)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(librdkafka_config(kafka) | {"group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=TIMEOUT)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in metadata.topics and metadata.topics[topic].error is None
            for p in metadata.topics[topic].partitions
        ]
        lag: dict[str, int] = {}
        if partitions:
            for tp in consumer.committed(partitions, timeout=TIMEOUT):
                low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT)
                start = tp.offset if tp.offset >= 0 else low
                lag[tp.topic] = lag.get(tp.topic, 0) + max(high - start, 0)
        return lag
    finally:
        consumer.close()


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
        lag = await asyncio.to_thread(consumer_lag, self.kafka, self.group, list(topics))
        for topic, value in lag.items():
            self.gauge.labels(group=self.group, topic=topic).set(value)
