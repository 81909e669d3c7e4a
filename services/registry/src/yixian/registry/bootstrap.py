"""Composition root of the registry: the one place its connections and parts are built."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
from fastapi import FastAPI

from yixian.runtime import (
    DbConnection,
    create_pool,
    get_logger,
    wait_for_stop_signal,
)
from yixian.runtime import migrations as schema
from yixian.runtime.http import start_http
from yixian.runtime.metrics import add_metrics_route
from yixian.runtime.service import add_health_routes, readiness_checks

from .adapters.auth import Role, create_api_key
from .adapters.metrics import RelayMetrics
from .adapters.parked import parked_groups
from .adapters.relay import OutboxRelay, RelaySettings
from .config import RegistrySettings
from .domain import OrgKind
from .entrypoints.http import create_app
from .service_layer.unit_of_work import NodeConfig, TransactionRunner

SERVICE = "registry"
MIGRATIONS = Path(str(resources.files("yixian.registry") / "migrations"))
log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def node_config(settings: RegistrySettings) -> NodeConfig:
    return NodeConfig(
        node=settings.node,
        topics=settings.kafka.topics,
        deadlines=settings.deadlines.to_domain(),
        id_hash_key=settings.national_id_key.get_secret_value().encode(),
        partners=settings.partner_codes,
    )


class NodeAlreadyInitialised(Exception):
    pass


async def init_node(
    conn: DbConnection, node: str, *, root_name: str, operator: str = "operator"
) -> tuple[UUID, str]:
    """Create the node's root organization and a first operator key: (root id, the key)."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM organizations WHERE parent_id IS NULL"):
            raise NodeAlreadyInitialised("this node already has its root organization")
        org_id = uuid4()
        await conn.execute(
            "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path)"
            " VALUES ($1, NULL, $2, $3, $4, $5)",
            org_id,
            root_name,
            OrgKind.COMMITTEE.value,
            node,
            f"/{org_id}/",
        )
        _, key = await create_api_key(conn, name=operator, role=Role.OPERATOR, org_id=org_id)
    return org_id, key


async def migrate(settings: RegistrySettings) -> list[str]:
    return await schema.apply_with_node_schema(settings.database_url, SERVICE, MIGRATIONS)


def _readiness(
    settings: RegistrySettings, pool: asyncpg.Pool
) -> Callable[[], Awaitable[dict[str, str]]]:
    return readiness_checks(pool, settings.kafka, SERVICE, MIGRATIONS)


def _degradation(pool: asyncpg.Pool) -> Callable[[], Awaitable[list[str]]]:
    """What ``/readyz`` reports degraded: outbox rows parked for an operator."""

    async def degraded() -> list[str]:
        try:
            return [group.note() for group in await parked_groups(pool)]
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return []  # the database check says it

    return degraded


def build_app(
    settings: RegistrySettings,
    pool: asyncpg.Pool,
    clock: Callable[[], datetime] = utc_now,
    metrics: RelayMetrics | None = None,
) -> FastAPI:
    runner = TransactionRunner(pool, node_config(settings))
    app = create_app(
        node=settings.node,
        pool=pool,
        runner=runner,
        broker=None,
        clock=clock,
        readiness=_readiness(settings, pool),
        degradation=_degradation(pool),
    )
    metrics = metrics or RelayMetrics()
    add_metrics_route(app, metrics.registry, lambda: metrics.refresh(pool))
    return app


def build_relay(
    settings: RegistrySettings, pool: asyncpg.Pool, metrics: RelayMetrics | None = None
) -> OutboxRelay:
    return OutboxRelay(
        pool,
        settings.kafka,
        metrics=metrics,
        client_id=f"yixian-{SERVICE}-relay-{settings.node}",
        settings=RelaySettings(
            batch_size=settings.relay_batch_size, poll_interval=settings.relay_poll_interval
        ),
    )


async def serve(settings: RegistrySettings) -> None:
    """Migrate, serve the HTTP API and relay the outbox until SIGTERM or SIGINT."""
    applied = await migrate(settings)
    log.info("schema ready", applied=applied)
    pool = await create_pool(settings.database_url, size=10)
    stop = asyncio.Event()
    metrics = RelayMetrics()
    try:
        relay = (
            asyncio.create_task(build_relay(settings, pool, metrics).run(stop), name="relay")
            if (settings.run_relay)
            else None
        )
        app = build_app(settings, pool, metrics=metrics)
        http = await start_http(app, settings.http_host, settings.http_port)
        log.info("service started", http=http.url)
        await wait_for_stop_signal(*([relay] if relay is not None else []))
        log.info("service stopping")
        stop.set()
        await http.stop()
        if relay is not None:
            await relay
    finally:
        await pool.close()
    log.info("service stopped")


async def run_relay(settings: RegistrySettings) -> None:
    """Only the outbox relay (a second instance is a hot standby)."""
    pool = await create_pool(settings.database_url, size=3)
    stop = asyncio.Event()
    metrics = RelayMetrics()
    try:
        relay = build_relay(settings, pool, metrics)
        task = asyncio.create_task(relay.run(stop), name="relay")
        app = FastAPI(title=f"Yixian outbox relay — node {settings.node}", version="1.0.0")
        add_health_routes(app, settings.node, _readiness(settings, pool), _degradation(pool))
        add_metrics_route(app, metrics.registry, lambda: metrics.refresh(pool))
        http = await start_http(app, settings.http_host, settings.http_port)
        log.info("service started", role="relay", http=http.url)
        await wait_for_stop_signal(task)
        stop.set()
        await http.stop()
        await task
    finally:
        await pool.close()
    log.info("service stopped")
