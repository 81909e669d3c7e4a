"""A node service's connections, opened together at start-up and closed together at exit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from faststream.kafka import KafkaBroker

from .kafka import make_broker
from .settings import NodeSettings

DbConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A connection, whether taken from a pool or opened alone."""


async def init_connection(conn: asyncpg.Connection) -> None:
    """Every pooled connection decodes json/jsonb to Python values and back."""
    for pg_type in ("json", "jsonb"):
        await conn.set_type_codec(
            pg_type, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def keep_session(conn: asyncpg.Connection) -> None:
    """What a pool does to a connection given back, beyond rolling back a transaction left
    open: nothing. (asyncpg's default asks the server, in one more round trip a use, to
    drop advisory locks, cursors, LISTENs and session settings: a service that takes any
    of these for a session gives it up itself before the connection goes back.)"""


async def create_pool(dsn: str, *, size: int = 4, idle_seconds: float = 300.0) -> asyncpg.Pool:
    """At most ``size`` connections; one unused for ``idle_seconds`` is closed (one stays)."""
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        max_inactive_connection_lifetime=idle_seconds,
        command_timeout=60,
        init=init_connection,
        reset=keep_session,
    )


async def node_pool(settings: NodeSettings, default_size: int) -> asyncpg.Pool:
    """The pool of one of the node's services: as large as the node's
    ``YIXIAN_DATABASE_POOL_SIZE`` says, else ``default_size`` (the service's own)."""
    return await create_pool(
        settings.database_url,
        size=settings.database_pool_size or default_size,
        idle_seconds=settings.database_idle_seconds,
    )


@dataclass(frozen=True, slots=True)
class NodeResources:
    pool: asyncpg.Pool
    broker: KafkaBroker


@asynccontextmanager
async def open_resources(
    settings: NodeSettings, *, client_id: str, pool_size: int = 4
) -> AsyncIterator[NodeResources]:
    """Connect to the node's database and to Kafka; close both on the way out."""
    pool = await create_pool(settings.database_url, size=pool_size)
    try:
        broker = make_broker(settings.kafka, client_id=client_id)
        await broker.start()
        try:
            yield NodeResources(pool=pool, broker=broker)
        finally:
            await broker.stop()
    finally:
        await pool.close()
