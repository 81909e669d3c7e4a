"""A node service's connections, opened together at start-up and closed together at exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from faststream.kafka import KafkaBroker

from .kafka import make_broker
from .settings import NodeSettings


@dataclass(frozen=True, slots=True)
class NodeResources:
    pool: asyncpg.Pool
    broker: KafkaBroker


@asynccontextmanager
async def open_resources(
    settings: NodeSettings, *, client_id: str, pool_size: int = 4
) -> AsyncIterator[NodeResources]:
    """Connect to the node's database and to Kafka; close both on the way out."""
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=pool_size, command_timeout=60
    )
    try:
        broker = make_broker(settings.kafka, client_id=client_id)
        await broker.start()
        try:
            yield NodeResources(pool=pool, broker=broker)
        finally:
            await broker.stop()
    finally:
        await pool.close()
