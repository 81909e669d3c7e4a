"""Composition root of the sync service: the one place its parts are built."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import asyncpg

from yixian.record import schema
from yixian.runtime import get_logger, node_pool
from yixian.runtime.host import NodeRuntime, serve_node
from yixian.runtime.metrics import ConsumerLag
from yixian.runtime.service import readiness_checks

from .adapters.metrics import SyncMetrics
from .adapters.unit_of_work import PostgresTransactions
from .config import SyncSettings
from .entrypoints.consumer import IncomingConsumer
from .entrypoints.http import create_app
from .service_layer.applier import Applier, SyncConfig
from .service_layer.links import LinkKeeper
from .service_layer.subscription import incoming_topics

SERVICE = "sync"
MIGRATIONS = Path(str(resources.files("yixian.sync") / "migrations"))
log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def sync_config(settings: SyncSettings) -> SyncConfig:
    return SyncConfig(
        node=settings.node,
        topics=settings.kafka.topics,
        policy=settings.policy,
        max_version_ahead=settings.max_version_ahead,
    )


def build_applier(
    pool: asyncpg.Pool,
    config: SyncConfig,
    clock: Callable[[], datetime] = utc_now,
    *,
    rebuilding: bool = False,
) -> Applier:
    """The applier of ``config``'s node, on its database."""
    transactions = PostgresTransactions(pool, node=config.node, topics=config.topics)
    return Applier(transactions, config, clock, rebuilding=rebuilding)


async def migrate(settings: SyncSettings) -> list[str]:
    return await schema.migrate(settings.database_url, SERVICE, MIGRATIONS)


def build_keeper(settings: SyncSettings, pool: asyncpg.Pool) -> LinkKeeper:
    return LinkKeeper(
        PostgresTransactions(pool, node=settings.node, topics=settings.kafka.topics),
        node=settings.node,
        partners=settings.partner_codes,
        topics=settings.kafka.topics,
        policy=settings.policy,
        clock=utc_now,
    )


async def start_node(settings: SyncSettings) -> NodeRuntime:
    """The node's sync, started: the consumer of its linked partners' pair topics, the link
    keeper and the status app, on a pool of its own."""
    pool = await node_pool(settings, 6)
    metrics = SyncMetrics()
    stop = asyncio.Event()
    applier = build_applier(pool, sync_config(settings))
    keeper = build_keeper(settings, pool)
    readiness = readiness_checks(pool, settings.kafka, schema.with_node_schema(SERVICE, MIGRATIONS))
    lag = ConsumerLag(metrics.registry, settings.kafka, settings.consumer_group)

    async def incoming() -> list[str]:
        partners = await keeper.linked_partners()
        return incoming_topics(settings.kafka.topics, settings.node, partners)

    consumer = IncomingConsumer(settings, applier, metrics, incoming, keeper.wake)

    async def linked() -> None:
        await consumer.follow()
        keeper.wake()

    try:
        await consumer.start()
    except BaseException:
        await pool.close()
        raise
    upkeep = asyncio.create_task(keeper.run(stop, settings.link_tick_seconds), name="links")
    following = asyncio.create_task(consumer.run(stop), name="subscription")
    app = create_app(
        node=settings.node,
        pool=pool,
        keeper=keeper,
        metrics=metrics,
        readiness=readiness,
        consumer_lag=lambda: lag.refresh(consumer.topics),
        on_linked=linked,
    )

    async def closing() -> None:
        await consumer.stop()
        await pool.close()

    return NodeRuntime(
        node=settings.node,
        app=app,
        tasks=[upkeep, following],
        stop=stop,
        closing=closing,
        started={"group": settings.consumer_group},
    )


async def serve(settings: SyncSettings) -> None:
    """Consume partner events, keep the links, serve status until SIGTERM or SIGINT."""
    await serve_node(
        settings,
        migrate,
        start_node,
        http_host=settings.http_host,
        http_port=settings.http_port,
    )
