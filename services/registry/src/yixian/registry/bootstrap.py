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

from yixian.record import schema
from yixian.record.metrics import RelayMetrics
from yixian.record.process import build_relay, parked_degradation
from yixian.runtime import DbConnection, get_logger, node_pool
from yixian.runtime.host import NodeRuntime, serve_node
from yixian.runtime.metrics import add_metrics_route
from yixian.runtime.service import readiness_checks

from .adapters.auth import Role, create_api_key
from .config import ForwardPolicy, RegistrySettings
from .domain import OrgKind
from .entrypoints.answerer import ClaimAnswerer
from .entrypoints.follower import ForwardFollower
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
    return await schema.migrate(settings.database_url, SERVICE, MIGRATIONS)


def _readiness(
    settings: RegistrySettings, pool: asyncpg.Pool
) -> Callable[[], Awaitable[dict[str, str]]]:
    return readiness_checks(pool, settings.kafka, schema.with_node_schema(SERVICE, MIGRATIONS))


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
        degradation=parked_degradation(pool),
    )
    metrics = metrics or RelayMetrics()
    add_metrics_route(app, metrics.registry, lambda: metrics.refresh(pool))
    return app


async def start_node(settings: RegistrySettings) -> NodeRuntime:
    """The node's registry, started: its HTTP app, the outbox relay and (policy ``follow``)
    the forward follower and the claim answerer, on a pool of its own."""
    pool = await node_pool(settings, 10)
    stop = asyncio.Event()
    metrics = RelayMetrics()
    loops = []
    if settings.run_relay:
        loops.append(
            asyncio.create_task(build_relay(settings, pool, metrics).run(stop), name="relay")
        )
    if settings.forward_policy is ForwardPolicy.FOLLOW:
        follower = ForwardFollower(
            pool,
            TransactionRunner(pool, node_config(settings)),
            utc_now,
            settings.follow_interval_seconds,
        )
        loops.append(asyncio.create_task(follower.run(stop), name="forward-follower"))
    answerer = ClaimAnswerer(
        pool,
        TransactionRunner(pool, node_config(settings)),
        utc_now,
        settings.follow_interval_seconds,
    )
    loops.append(asyncio.create_task(answerer.run(stop), name="claim-answerer"))
    return NodeRuntime(
        node=settings.node,
        app=build_app(settings, pool, metrics=metrics),
        tasks=loops,
        stop=stop,
        closing=pool.close,
        started={"forward_policy": settings.forward_policy.value},
    )


async def serve(settings: RegistrySettings) -> None:
    """Migrate, serve the HTTP API, relay the outbox and (policy ``follow``) follow hosts'
    forwards, until SIGTERM or SIGINT."""
    await serve_node(
        settings,
        migrate,
        start_node,
        http_host=settings.http_host,
        http_port=settings.http_port,
    )
