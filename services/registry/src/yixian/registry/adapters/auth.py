"""API keys: ``yx_<key id>_<secret>``, only a hash of the secret stored, bound to a role and
an organization subtree."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID, uuid4

from yixian.runtime import DbConnection

_KEY = re.compile(r"^yx_([0-9a-f]{32})_([A-Za-z0-9_-]{32,64})$")


class Role(StrEnum):
    OPERATOR = "operator"
    SECRETARY = "secretary"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the key's name, its role and the subtree it is bound to."""

    actor: str
    role: Role
    org_id: UUID
    org_path: str

    def covers(self, org_path: str) -> bool:
        return org_path.startswith(self.org_path)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[UUID, str, str]:
    """(key id, the key to hand out once, the hash to store)."""
    key_id = uuid4()
    secret = secrets.token_urlsafe(32)
    return key_id, f"yx_{key_id.hex}_{secret}", _hash(secret)


async def create_api_key(
    conn: DbConnection, *, name: str, role: Role, org_id: UUID
) -> tuple[UUID, str]:
    key_id, key, secret_hash = new_api_key()
    await conn.execute(
        "INSERT INTO api_keys (key_id, secret_hash, name, role, org_id)"
        " VALUES ($1, $2, $3, $4, $5)",
        key_id,
        secret_hash,
        name,
        role.value,
        org_id,
    )
    return key_id, key


async def authenticate(conn: DbConnection, presented: str) -> Principal | None:
    """The principal behind a presented key, or None if it is unknown, wrong or revoked."""
    match = _KEY.match(presented)
    if match is None:
        return None
    row = await conn.fetchrow(
        "SELECT k.secret_hash, k.name, k.role, k.org_id, o.path FROM api_keys k"
        " JOIN organizations o USING (org_id) WHERE k.key_id = $1 AND k.revoked_at IS NULL",
        UUID(match.group(1)),
    )
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(match.group(2))):
        return None
    return Principal(
        actor=f"key:{row['name']}",
        role=Role(row["role"]),
        org_id=row["org_id"],
        org_path=row["path"],
    )
