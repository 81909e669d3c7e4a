"""Versioned SQL migrations, applied at start-up and by a command.

Each service keeps its own numbered files (``0001_initial.sql`` ...) and its own rows in
``schema_migrations``. Instances starting at once take one advisory lock in turn, so a
migration runs exactly once; an applied file whose text changed is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from .logging import get_logger
from .resources import DbConnection

log = get_logger(__name__)
LOCK_KEY = 0x59_49_58_49  # "YIXI": one lock for every service's migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migrations in {directory} must be numbered 1..n without gaps")
    return migrations


async def apply(dsn_or_conn: str | DbConnection, service: str, directory: Path) -> list[str]:
    """Apply the service's pending migrations; return the names applied."""
    migrations = load(directory)
    conn = await asyncpg.connect(dsn_or_conn) if isinstance(dsn_or_conn, str) else dsn_or_conn
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       service text NOT NULL,
                       version integer NOT NULL,
                       name text NOT NULL,
                       checksum char(64) NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (service, version))"""
            )
            done = {
                r["version"]: r["checksum"]
                for r in await conn.fetch(
                    "SELECT version, checksum FROM schema_migrations WHERE service = $1", service
                )
            }
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{service} migration {migration.version:04d}_{migration.name} "
                            "was changed after it was applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (service, version, name, checksum)"
                        " VALUES ($1, $2, $3, $4)",
                        service,
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied.append(f"{migration.version:04d}_{migration.name}")
                log.info("migration applied", migration=applied[-1], owner=service)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        if isinstance(dsn_or_conn, str):
            await conn.close()
    return applied


async def pending(conn: DbConnection, service: str, directory: Path) -> list[str]:
    """Names of the service's migrations not applied yet (for readiness checks)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = (
        {
            r["version"]
            for r in await conn.fetch(
                "SELECT version FROM schema_migrations WHERE service = $1", service
            )
        }
        if exists
        else set()
    )
    return [f"{m.version:04d}_{m.name}" for m in load(directory) if m.version not in done]


Schemas = Sequence[tuple[str, Path]]
"""Owners and their migration directories, in the order they apply (a service's schema
after the node's shared record, ``yixian.record.schema``)."""


async def apply_all(dsn: str, schemas: Schemas) -> list[str]:
    """Apply each owner's pending migrations, in order; the names applied, ``owner/name``."""
    applied: list[str] = []
    for owner, directory in schemas:
        applied += [f"{owner}/{name}" for name in await apply(dsn, owner, directory)]
    return applied


async def pending_all(conn: DbConnection, schemas: Schemas) -> list[str]:
    """Each owner's migrations not applied yet, ``owner/name`` (for readiness checks)."""
    return [
        f"{owner}/{n}"
        for owner, directory in schemas
        for n in await pending(conn, owner, directory)
    ]
