"""Prometheus metrics of the sync service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SyncMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "yixian_sync_events_total",
            "Records consumed from pair topics, by partner and outcome.",
            ["partner", "outcome"],
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "yixian_sync_apply_seconds",
            "Time to apply one record (one database transaction).",
            registry=self.registry,
        )
        self.link_lag = Gauge(
            "yixian_sync_link_lag",
            "Pair sequence numbers the partner sent that have not arrived.",
            ["partner"],
            registry=self.registry,
        )
        self.link_state = Gauge(
            "yixian_sync_link_state",
            "1 for the link's current state, 0 for the others.",
            ["partner", "state"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "yixian_sync_outbox_backlog",
            "Events to a partner waiting in the outbox.",
            ["partner"],
            registry=self.registry,
        )
