"""API keys as the registry keeps them: it owns ``api_keys`` (only a hash of each secret)
and issues, lists and revokes keys. Parsing and verifying a presented key is shared by every
service of the node (``yixian.runtime.apikeys``) and re-exported here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from yixian.registry.domain import AlreadyExists
from yixian.runtime import DbConnection
from yixian.runtime.apikeys import Principal, Role, authenticate, new_api_key

__all__ = [
    "ConsoleOperator",
    "NodeProcess",
    "Principal",
    "Role",
    "active_root_operator_keys",
    "api_keys_within",
    "authenticate",
    "create_api_key",
    "find_api_key",
    "new_api_key",
    "revoke_api_key",
]


@dataclass(frozen=True, slots=True)
class NodeProcess(Principal):
    """A part of the registry acting on its own (the forward follower, ADR 19), as the node's
    root operator: no key stands behind it, and the audit log and a group's ``changed_by``
    name it ``registry:<name>``."""

    @property
    def actor(self) -> str:
        return f"registry:{self.name}"


@dataclass(frozen=True, slots=True)
class ConsoleOperator(Principal):
    """The operator at the node's console (the ``yixian`` command over the node's database),
    as the root's operator: no key stands behind it, and the audit log names it by who ran
    the command (``cli:<login>``, or the ``--actor`` given)."""

    console_actor: str

    @property
    def actor(self) -> str:
        return self.console_actor


async def create_api_key(
    conn: DbConnection, *, name: str, role: Role, org_id: UUID
) -> tuple[UUID, str]:
    """A new key: (its id, the key to hand out once). AlreadyExists: the name is taken on
    this node (decided by the unique index, so concurrent requests cannot both take it)."""
    key_id, key, secret_hash = new_api_key()
    try:
        await conn.execute(
            "INSERT INTO api_keys (key_id, secret_hash, name, role, org_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            key_id,
            secret_hash,
            name,
            role.value,
            org_id,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "api_keys_name":
            raise
        raise AlreadyExists(
            f"a key named {name!r} already exists on this node", field="name"
        ) from None
    return key_id, key


async def api_keys_within(conn: DbConnection, org_path: str) -> Sequence[asyncpg.Record]:
    """Every key bound to an organization of the subtree, revoked ones too; never a secret
    or its hash."""
    return await conn.fetch(
        "SELECT k.key_id, k.name, k.role, k.org_id, k.created_at, k.revoked_at"
        " FROM api_keys k JOIN organizations o USING (org_id)"
        " WHERE o.path LIKE $1 || '%' ORDER BY k.created_at, k.key_id",
        org_path,
    )


async def find_api_key(conn: DbConnection, key_id: UUID) -> asyncpg.Record | None:
    """A key with its organization's path and whether that is the root (``node_wide``)."""
    return await conn.fetchrow(
        "SELECT k.key_id, k.name, k.role, k.org_id, k.created_at, k.revoked_at,"
        " o.path AS org_path, o.parent_id IS NULL AS node_wide"
        " FROM api_keys k JOIN organizations o USING (org_id) WHERE k.key_id = $1",
        key_id,
    )


async def active_root_operator_keys(conn: DbConnection) -> list[UUID]:
    """The active operator keys bound to the root, locked (in one order, so concurrent
    revocations queue instead of deadlocking) until the transaction ends."""
    rows = await conn.fetch(
        "SELECT k.key_id FROM api_keys k JOIN organizations o USING (org_id)"
        " WHERE o.parent_id IS NULL AND k.role = 'operator' AND k.revoked_at IS NULL"
        " ORDER BY k.key_id FOR UPDATE OF k"
    )
    return [r["key_id"] for r in rows]


async def revoke_api_key(conn: DbConnection, key_id: UUID, at: datetime) -> datetime:
    """Revoke the key (a revoked key stays revoked, from its first revocation); when."""
    revoked_at: datetime = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE key_id = $1"
        " RETURNING revoked_at",
        key_id,
        at,
    )
    return revoked_at
