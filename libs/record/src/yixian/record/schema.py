"""The node's shared record as migrations: this package's ``migrations/`` (owner ``node``
in ``schema_migrations``), applied before every service's own, under the one advisory
lock of ``yixian.runtime.migrations``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from yixian.runtime.migrations import Schemas, apply_all

OWNER = "node"
"""The name the shared record's migrations are kept under (it predates this package)."""

NODE_SCHEMA = Path(str(resources.files("yixian.record") / "migrations"))


def with_node_schema(service: str, directory: Path) -> Schemas:
    """A service's migrations, after the node schema they build on."""
    return [(OWNER, NODE_SCHEMA), (service, directory)]


async def migrate(dsn: str, service: str, directory: Path) -> list[str]:
    """Apply the node schema, then the service's own migrations; the names applied."""
    return await apply_all(dsn, with_node_schema(service, directory))


async def migrate_node(dsn: str) -> list[str]:
    """Apply the node schema alone (the relay's own process)."""
    return await apply_all(dsn, [(OWNER, NODE_SCHEMA)])
