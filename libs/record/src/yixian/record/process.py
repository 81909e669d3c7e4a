"""The relay as a process: alone (``python -m yixian.record relay``, a second instance is
a hot standby) or inside the registry's (``YIXIAN_RUN_RELAY``, the default); ADR 17."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yixian.runtime import NodeSettings, create_pool, get_logger, wait_for_stop_signal
from yixian.runtime.http import start_http
from yixian.runtime.http_errors import ERROR_RESPONSES, answer_errors_in_one_body
from yixian.runtime.metrics import add_metrics_route
from yixian.runtime.service import add_health_routes, readiness_checks

from .metrics import RelayMetrics
from .parked import parked_groups
from .relay import OutboxRelay, RelaySettings
from .schema import NODE_SCHEMA, OWNER

log = get_logger(__name__)


class RelayNodeSettings(NodeSettings):
    """The node-wide settings plus the relay's HTTP endpoint (health, metrics) and pace."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8003, ge=0, le=65535)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=1.0, gt=0, le=60)

    def relay(self) -> RelaySettings:
        return RelaySettings(
            batch_size=self.relay_batch_size, poll_interval=self.relay_poll_interval
        )


def build_relay(
    settings: RelayNodeSettings, pool: asyncpg.Pool, metrics: RelayMetrics | None = None
) -> OutboxRelay:
    return OutboxRelay(
        pool,
        settings.kafka,
        metrics=metrics,
        client_id=f"yixian-relay-{settings.node}",
        settings=settings.relay(),
    )


def parked_degradation(pool: asyncpg.Pool) -> Callable[[], Awaitable[list[str]]]:
    """What ``/readyz`` reports degraded: outbox rows parked for an operator."""

    async def degraded() -> list[str]:
        try:
            return [group.note() for group in await parked_groups(pool)]
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return []  # the database check says it

    return degraded


def relay_app(settings: RelayNodeSettings, pool: asyncpg.Pool, metrics: RelayMetrics) -> FastAPI:
    """The standalone relay's HTTP endpoints: ``/healthz``, ``/readyz``, ``/metrics``."""
    app = FastAPI(
        title=f"Yixian outbox relay — node {settings.node}",
        version="1.0.0",
        responses=ERROR_RESPONSES,
    )
    answer_errors_in_one_body(app)
    readiness = readiness_checks(pool, settings.kafka, [(OWNER, NODE_SCHEMA)])
    add_health_routes(app, settings.node, readiness, parked_degradation(pool))
    add_metrics_route(app, metrics.registry, lambda: metrics.refresh(pool))
    return app


async def run_relay(settings: RelayNodeSettings) -> None:
    """Only the outbox relay, with ``/healthz``, ``/readyz`` and ``/metrics``."""
    pool = await create_pool(settings.database_url, size=3)
    stop = asyncio.Event()
    metrics = RelayMetrics()
    try:
        task = asyncio.create_task(build_relay(settings, pool, metrics).run(stop), name="relay")
        app = relay_app(settings, pool, metrics)
        http = await start_http(app, settings.http_host, settings.http_port)
        log.info("service started", role="relay", http=http.url)
        await wait_for_stop_signal(task)
        stop.set()
        await http.stop()
        await task
    finally:
        await pool.close()
    log.info("service stopped")
