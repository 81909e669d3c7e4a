"""API keys: ``yx_<key id>_<secret>``, bound to a role and an organization subtree.

The registry issues and revokes keys (it owns ``api_keys`` and keeps only a hash of each
secret); every service of the node authenticates them here, the same way, through the read
interface the registry publishes: the view ``api_key_principals`` (active keys only, with
their organization's path). A key is identified by its id, never by its name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID, uuid4

import asyncpg

from .resources import DbConnection

KEY_PATTERN = re.compile(r"^yx_([0-9a-f]{32})_([A-Za-z0-9_-]{32,64})$")
PRINCIPALS = "api_key_principals"
"""The registry's view of active keys (created by its migrations)."""
_NO_SUCH_HASH = "0" * 64


class Role(StrEnum):
    OPERATOR = "operator"
    SECRETARY = "secretary"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the key (its id is the identity, its name is for people), its role
    and the subtree it is bound to."""

    key_id: UUID
    name: str
    role: Role
    org_id: UUID
    org_path: str
    node_wide: bool
    """Bound to the node's root organization."""

    @property
    def actor(self) -> str:
        """The identity the audit log and idempotency keys record: ``key:<key id>``."""
        return f"key:{self.key_id}"

    def covers(self, org_path: str) -> bool:
        return org_path.startswith(self.org_path)


class KeysUnreadable(RuntimeError):
    """The database has no ``api_key_principals`` yet: the registry has not migrated it."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[UUID, str, str]:
    """(key id, the key to hand out once, the hash to store)."""
    key_id = uuid4()
    secret = secrets.token_urlsafe(32)
    return key_id, f"yx_{key_id.hex}_{secret}", hash_secret(secret)


def parse_api_key(presented: str) -> tuple[UUID, str] | None:
    """(key id, secret) of a key in the ``yx_<id>_<secret>`` form, else None."""
    match = KEY_PATTERN.match(presented)
    return (UUID(match.group(1)), match.group(2)) if match else None


async def authenticate(conn: DbConnection, presented: str) -> Principal | None:
    """The principal behind a presented key, or None if it is malformed, unknown, wrong or
    revoked. KeysUnreadable: the registry's view is not there yet."""
    parsed = parse_api_key(presented)
    if parsed is None:
        return None
    key_id, secret = parsed
    try:
        row = await conn.fetchrow(
            "SELECT secret_hash, name, role, org_id, org_path, node_wide"
            " FROM api_key_principals WHERE key_id = $1",
            key_id,
        )
    except asyncpg.UndefinedTableError as exc:
        raise KeysUnreadable(
            f"{PRINCIPALS} does not exist yet: run the registry's migrations first"
        ) from exc
    stored = row["secret_hash"] if row is not None else _NO_SUCH_HASH
    if not hmac.compare_digest(stored, hash_secret(secret)) or row is None:
        return None
    return Principal(
        key_id=key_id,
        name=row["name"],
        role=Role(row["role"]),
        org_id=row["org_id"],
        org_path=row["org_path"],
        node_wide=row["node_wide"],
    )


async def keys_readable(conn: DbConnection) -> bool:
    """Whether the registry's view of the keys exists (for readiness checks)."""
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", PRINCIPALS))
