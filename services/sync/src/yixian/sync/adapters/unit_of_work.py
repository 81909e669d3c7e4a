"""Units of work on the node's PostgreSQL database: a connection of the pool in a
transaction, a ``SyncStore`` on it, and savepoints (asyncpg's nested transactions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from yixian.contracts import TopicNames
from yixian.runtime import DbConnection

from .store import SyncStore

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)
"""Database failures that say nothing about the record: retry the batch, never dead-letter."""


class PostgresUnitOfWork:
    """One transaction on one connection, and the store on it."""

    def __init__(self, conn: DbConnection, store: SyncStore) -> None:
        self.conn = conn
        self.store = store

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.conn.transaction():  # nested in the unit's: a savepoint
            yield


class PostgresTransactions:
    """Opens units of work on ``pool`` for ``node``."""

    transient = TRANSIENT

    def __init__(self, pool: asyncpg.Pool, *, node: str, topics: TopicNames) -> None:
        self.pool = pool
        self.node = node
        self.topics = topics

    @asynccontextmanager
    async def __call__(self, *, deferred: bool = False) -> AsyncIterator[PostgresUnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PostgresUnitOfWork(
                conn, SyncStore(conn, self.node, self.topics, deferred=deferred)
            )
