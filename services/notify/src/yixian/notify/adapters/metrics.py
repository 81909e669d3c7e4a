"""Prometheus metrics of the notify service."""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "yixian_notify_attempts_total",
            "Delivery attempts by channel and outcome (sent, pending = retry later, dead,"
            " suppressed).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "yixian_notify_send_seconds",
            "Time a channel took to accept one notice.",
            ["channel"],
            registry=self.registry,
        )
        self.notices = Gauge(
            "yixian_notify_notices",
            "Notices in the node's store by channel and status.",
            ["channel", "status"],
            registry=self.registry,
        )

    async def refresh(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetch(
            "SELECT channel, status, count(*) AS n FROM notices GROUP BY channel, status"
        )
        for row in rows:
            self.notices.labels(channel=row["channel"], status=row["status"]).set(row["n"])
