"""The registry's tables, read and written through one asyncpg connection in a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from yixian.contracts import HostGroup, OriginGroup
from yixian.registry.domain import (
    AlreadyExists,
    Member,
    Movement,
    NotFound,
    Organization,
    OrgKind,
    Participation,
    Side,
)
from yixian.runtime import DbConnection
from yixian.runtime.record import add_history, add_participation


def _organization(row: asyncpg.Record) -> Organization:
    return Organization(
        org_id=row["org_id"],
        name=row["name"],
        kind=OrgKind(row["kind"]),
        parent_id=row["parent_id"],
        path=row["path"],
        jurisdiction=row["jurisdiction"],
    )


def _member(row: asyncpg.Record) -> Member:
    return Member(
        member_id=row["member_id"],
        org_id=row["org_id"],
        name=row["name"],
        joined_on=row["joined_on"],
        phone=row["phone"],
        email=row["email"],
        national_id_hash=row["national_id_hash"],
        national_id_masked=row["national_id_masked"],
    )


UNIQUE_RULES: dict[str, tuple[str, str]] = {
    "movements_one_open_per_member": (
        "member_id",
        "already has an open movement; relocate it or close it first",
    ),
    "members_national_id_hash_key": ("national_id", "is already registered to another member"),
    "members_natural_key": (
        "name",
        "a member with this name, joining date and phone is already registered in this"
        " organization",
    ),
    "members_pkey": ("member_id", "is already registered"),
    "organizations_sibling_name": ("name", "an organization with this name has the same parent"),
    "activities_once": (
        "title",
        "this organization already scheduled an activity of this kind and title at this time",
    ),
}
"""Unique constraints that stand for a rule, and how a request breaking one is answered."""


@asynccontextmanager
async def one_effect() -> AsyncIterator[None]:
    """Turn the violation of a rule's unique constraint into a 409 naming the field."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        rule = UNIQUE_RULES.get(exc.constraint_name or "")
        if rule is None:
            raise
        raise AlreadyExists(rule[1], field=rule[0]) from None


_SELECT_MOVEMENT = "SELECT * FROM movements WHERE movement_id = $1"
_SELECT_MOVEMENT_FOR_UPDATE = _SELECT_MOVEMENT + " FOR UPDATE"


def movement_from_row(row: asyncpg.Record) -> Movement:
    origin = row["origin_group"]
    host = row["host_group"]
    return Movement(
        movement_id=row["movement_id"],
        origin=row["origin"],
        host=row["host"],
        origin_group=OriginGroup.model_validate(origin) if origin else None,
        host_group=HostGroup.model_validate(host) if host else None,
    )


class Organizations:
    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def get(self, org_id: UUID) -> Organization:
        row = await self.conn.fetchrow("SELECT * FROM organizations WHERE org_id = $1", org_id)
        if row is None:
            raise NotFound(f"organization {org_id} does not exist on this node", field="org_id")
        return _organization(row)

    async def find(self, org_id: UUID) -> Organization | None:
        row = await self.conn.fetchrow("SELECT * FROM organizations WHERE org_id = $1", org_id)
        return _organization(row) if row else None

    async def root(self) -> Organization | None:
        row = await self.conn.fetchrow("SELECT * FROM organizations WHERE parent_id IS NULL")
        return _organization(row) if row else None

    async def add(self, org: Organization) -> None:
        async with one_effect():
            await self._insert(org)

    async def _insert(self, org: Organization) -> None:
        await self.conn.execute(
            "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            org.org_id,
            org.parent_id,
            org.name,
            org.kind.value,
            org.jurisdiction,
            org.path,
        )

    async def subtree(self, path: str) -> list[Organization]:
        rows = await self.conn.fetch(
            "SELECT * FROM organizations WHERE path LIKE $1 || '%' ORDER BY path", path
        )
        return [_organization(r) for r in rows]


class Members:
    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def get(self, member_id: UUID) -> Member:
        row = await self.conn.fetchrow("SELECT * FROM members WHERE member_id = $1", member_id)
        if row is None:
            raise NotFound(f"member {member_id} does not exist on this node", field="member_id")
        return _member(row)

    async def add(self, member: Member) -> None:
        async with one_effect():
            await self._insert(member)

    async def _insert(self, member: Member) -> None:
        await self.conn.execute(
            "INSERT INTO members (member_id, org_id, name, joined_on, phone, email,"
            " national_id_hash, national_id_masked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            member.member_id,
            member.org_id,
            member.name,
            member.joined_on,
            member.phone,
            member.email,
            member.national_id_hash,
            member.national_id_masked,
        )


class Movements:
    """The node's copy of each movement. The registry writes only this node's own group."""

    def __init__(self, conn: DbConnection, node: str) -> None:
        self.conn = conn
        self.node = node

    async def get(self, movement_id: UUID, *, lock: bool = False) -> Movement:
        query = _SELECT_MOVEMENT_FOR_UPDATE if lock else _SELECT_MOVEMENT
        row = await self.conn.fetchrow(query, movement_id)
        if row is None:
            raise NotFound(f"movement {movement_id} is not known on this node", field="movement_id")
        return movement_from_row(row)

    async def add(self, movement: Movement, member_id: UUID, origin_org_id: UUID) -> None:
        group = movement.origin_group
        assert group is not None
        assert movement.origin == self.node
        async with one_effect():
            await self._insert(movement, member_id, origin_org_id)
        await self._history(
            "origin", group.movement_id, group.version, group.model_dump(mode="json")
        )

    async def _insert(self, movement: Movement, member_id: UUID, origin_org_id: UUID) -> None:
        group = movement.origin_group
        assert group is not None
        await self.conn.execute(
            "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
            " origin_status, origin_group, origin_org_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            movement.movement_id,
            movement.origin,
            movement.host,
            member_id,
            group.version,
            group.status.value,
            group.model_dump(mode="json"),
            origin_org_id,
        )

    async def save_own_group(self, movement: Movement, host_org_id: UUID | None = None) -> None:
        """Write this node's group of the movement (never the partner's)."""
        side = movement.side_of(self.node)
        group: OriginGroup | HostGroup | None = (
            movement.origin_group if side is Side.ORIGIN else movement.host_group
        )
        assert group is not None
        snapshot = group.model_dump(mode="json")
        if side is Side.ORIGIN:
            status = await self.conn.execute(
                "UPDATE movements SET origin_version = $2, origin_status = $3, origin_group = $4,"
                " updated_at = now() WHERE movement_id = $1 AND origin_version < $2",
                movement.movement_id,
                group.version,
                group.status.value,
                snapshot,
            )
        else:
            status = await self.conn.execute(
                "UPDATE movements SET host_version = $2, host_status = $3, host_group = $4,"
                " host_org_id = COALESCE($5, host_org_id), updated_at = now()"
                " WHERE movement_id = $1 AND host_version < $2",
                movement.movement_id,
                group.version,
                group.status.value,
                snapshot,
                host_org_id,
            )
        if status != "UPDATE 1":
            raise RuntimeError(f"movement {movement.movement_id} changed under a held lock")
        await self._history(side.value, movement.movement_id, group.version, snapshot)

    async def _history(
        self, group_name: str, movement_id: UUID, version: int, snapshot: dict[str, Any]
    ) -> None:
        await add_history(self.conn, movement_id, group_name, version, snapshot)

    async def history(self, movement_id: UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT group_name, version, snapshot, recorded_at FROM movement_history"
            " WHERE movement_id = $1 ORDER BY recorded_at, id",
            movement_id,
        )

    async def add_participation(self, p: Participation) -> bool:
        """Record an attendance; False when its id was recorded before (the key decides)."""
        return await add_participation(self.conn, p)

    async def participation(self, participation_id: UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM participations WHERE participation_id = $1", participation_id
        )

    async def participations(self, movement_id: UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT * FROM participations WHERE movement_id = $1 ORDER BY attended_at",
            movement_id,
        )


class AuditLog:
    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def record(
        self,
        *,
        actor: str,
        role: str | None,
        action: str,
        target: str | None,
        outcome: str,
        detail: dict[str, Any],
        trace_id: str | None,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO audit_log (actor, role, action, target, outcome, detail, trace_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            actor,
            role,
            action,
            target,
            outcome,
            detail,
            trace_id,
        )

    async def entries(
        self, target: str | None = None, limit: int = 200
    ) -> Sequence[asyncpg.Record]:
        """Newest first, with the name of the key each actor ``key:<key id>`` stands for."""
        select = (
            "SELECT a.*, (SELECT k.name FROM api_keys k WHERE k.key_id = CASE"
            " WHEN a.actor ~ '^key:[0-9a-f-]{36}$' THEN substr(a.actor, 5)::uuid END) AS key_name"
            " FROM audit_log a"
        )
        if target is None:
            return await self.conn.fetch(f"{select} ORDER BY a.id DESC LIMIT $1", limit)
        return await self.conn.fetch(
            f"{select} WHERE a.target = $1 ORDER BY a.id DESC LIMIT $2", target, limit
        )
