"""Prometheus metrics of the outbox relay and the outbox it publishes."""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .parked import parked_groups


def topic_kind(topic: str) -> str:
    if ".to." in topic:
        return "pair"
    return "dead_letter" if ".dlq." in topic else "local"


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.published = Counter(
            "yixian_relay_published_total",
            "Outbox events acknowledged by Kafka, by kind of topic (pair, local, dead_letter).",
            ["kind"],
            registry=self.registry,
        )
        self.publish_latency = Histogram(
            "yixian_relay_publish_latency_seconds",
            "From the outbox commit to Kafka's acknowledgement.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600),
            registry=self.registry,
        )
        self.backlog = Gauge(
            "yixian_outbox_backlog",
            "Outbox events waiting to be published (parked ones not counted).",
            registry=self.registry,
        )
        self.oldest = Gauge(
            "yixian_outbox_oldest_pending_seconds",
            "Age of the oldest waiting outbox event (0 when there is none).",
            registry=self.registry,
        )
        self.parked = Gauge(
            "yixian_outbox_parked",
            "Outbox events parked for an operator (they cannot be published as they are),"
            " by topic and reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.parked_total = Counter(
            "yixian_relay_parked_total",
            "Outbox events the relay parked, by kind of topic and reason.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "yixian_relay_leader",
            "1 while this relay holds the leader lock.",
            registry=self.registry,
        )

    def published_rows(self, rows: list[asyncpg.Record]) -> None:
        """Rows of ``(topic, latency)`` just marked published."""
        for row in rows:
            self.published.labels(kind=topic_kind(row["topic"])).inc()
            self.publish_latency.observe(max(float(row["latency"]), 0.0))

    def parked_row(self, topic: str, reason: str) -> None:
        self.parked_total.labels(kind=topic_kind(topic), reason=reason).inc()

    async def refresh(self, pool: asyncpg.Pool) -> None:
        row = await pool.fetchrow(
            "SELECT count(*) AS backlog, coalesce(extract(epoch FROM clock_timestamp()"
            " - min(created_at)), 0) AS oldest FROM outbox"
            " WHERE published_at IS NULL AND parked_at IS NULL"
        )
        assert row is not None
        self.backlog.set(row["backlog"])
        self.oldest.set(float(row["oldest"]))
        self.parked.clear()
        for group in await parked_groups(pool):
            self.parked.labels(topic=group.topic, reason=group.reason).set(group.rows)
