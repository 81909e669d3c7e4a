"""notify's tables and what it reads of the node's record, through one asyncpg connection
in a transaction: every statement of planning and scheduling is here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from uuid import UUID

import asyncpg

from yixian.contracts import HostGroup, OriginGroup
from yixian.notify.domain.notice import Contacts, Notice, Person, Seen
from yixian.notify.domain.rules import Group
from yixian.runtime import DbConnection


class SeenGroups:
    """``notify_seen`` (notify's own)."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def last(self, movement_id: UUID, group: Group) -> Seen | None:
        row = await self.conn.fetchrow(
            "SELECT version, status FROM notify_seen"
            " WHERE movement_id = $1 AND group_name = $2 FOR UPDATE",
            movement_id,
            group.value,
        )
        return Seen(row["version"], row["status"]) if row else None

    async def record(self, movement_id: UUID, group: Group, seen: Seen) -> None:
        await self.conn.execute(
            "INSERT INTO notify_seen (movement_id, group_name, version, status)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (movement_id, group_name)"
            " DO UPDATE SET version = $3, status = $4",
            movement_id,
            group.value,
            seen.version,
            seen.status,
        )

    async def last_all(
        self, groups: Collection[tuple[UUID, Group]]
    ) -> dict[tuple[UUID, Group], Seen]:
        # locked in one order, whatever the batch's: two consumers never wait on each other
        # the other way round
        rows = await self.conn.fetch(
            "SELECT s.movement_id, s.group_name, s.version, s.status FROM notify_seen s"
            " JOIN unnest($1::uuid[], $2::text[]) AS k(movement_id, group_name)"
            " USING (movement_id, group_name)"
            " ORDER BY s.movement_id, s.group_name FOR UPDATE OF s",
            [movement_id for movement_id, _ in groups],
            [group.value for _, group in groups],
        )
        return {
            (r["movement_id"], Group(r["group_name"])): Seen(r["version"], r["status"])
            for r in rows
        }

    async def record_all(self, seen: Mapping[tuple[UUID, Group], Seen]) -> None:
        await self.conn.execute(
            "INSERT INTO notify_seen (movement_id, group_name, version, status)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::text[])"
            " ON CONFLICT (movement_id, group_name)"
            " DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status",
            [movement_id for movement_id, _ in seen],
            [group.value for _, group in seen],
            [s.version for s in seen.values()],
            [s.status for s in seen.values()],
        )


_NOTICE_COLUMNS = (
    "notice_key, reason, recipient, channel, address, member_id, movement_id, language,"
    " subject, body, urgent, mandatory, trace_id, status, last_error"
)


class NoticeLog:
    """``notices`` (notify's own): its primary key is the notice key."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def add(self, notice: Notice) -> bool:
        inserted = await self.conn.fetchval(
            f"INSERT INTO notices ({_NOTICE_COLUMNS})"  # noqa: S608 - constants
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            " ON CONFLICT DO NOTHING RETURNING true",
            *_notice_row(notice),
        )
        return bool(inserted)

    async def planned(self, keys: Collection[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT notice_key FROM notices WHERE notice_key = ANY($1::char(64)[])", list(keys)
        )
        return {r["notice_key"] for r in rows}

    async def add_all(self, notices: Sequence[Notice]) -> int:
        if not notices:
            return 0
        inserted = await self.conn.fetchval(
            f"WITH added AS (INSERT INTO notices ({_NOTICE_COLUMNS})"  # noqa: S608 - constants
            " SELECT * FROM unnest($1::char(64)[], $2::text[], $3::text[], $4::text[],"
            " $5::text[], $6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::text[],"
            " $11::boolean[], $12::boolean[], $13::text[], $14::text[], $15::text[])"
            " ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM added",
            *(list(column) for column in zip(*map(_notice_row, notices), strict=True)),
        )
        return int(inserted)


def _notice_row(notice: Notice) -> tuple[object, ...]:
    return (
        notice.key,
        notice.reason,
        notice.recipient,
        notice.channel,
        notice.address,
        notice.member_id,
        notice.movement_id,
        notice.language,
        notice.subject,
        notice.body,
        notice.urgent,
        notice.mandatory,
        notice.trace_id,
        notice.status,
        notice.last_error,
    )


def _groups(row: asyncpg.Record | None) -> tuple[OriginGroup | None, HostGroup | None]:
    if row is None:
        return None, None
    origin = OriginGroup.model_validate(row["origin_group"]) if row["origin_group"] else None
    host = HostGroup.model_validate(row["host_group"]) if row["host_group"] else None
    return origin, host


def _person(row: asyncpg.Record) -> Person:
    return Person(
        member_id=row["member_id"],
        name=row["name"],
        phone=row["phone"],
        email=row["email"],
        joined_on=row.get("joined_on"),
    )


class NodeRecord:
    """The node's ``movements`` (the registry's and sync's), the registry's
    ``organizations`` and ``members``, and its view ``people_present``; read only."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def groups(self, movement_id: UUID) -> tuple[OriginGroup | None, HostGroup | None]:
        return _groups(
            await self.conn.fetchrow(
                "SELECT origin_group, host_group FROM movements WHERE movement_id = $1",
                movement_id,
            )
        )

    async def groups_of(
        self, movement_ids: Collection[UUID]
    ) -> dict[UUID, tuple[OriginGroup | None, HostGroup | None]]:
        rows = await self.conn.fetch(
            "SELECT movement_id, origin_group, host_group FROM movements"
            " WHERE movement_id = ANY($1::uuid[])",
            list(movement_ids),
        )
        return {r["movement_id"]: _groups(r) for r in rows}

    async def contacts(self, org_id: UUID | None) -> Contacts | None:
        row = (
            await self.conn.fetchrow(
                "SELECT contact_email, webhook_url, contact_sms FROM organization_contacts"
                " WHERE org_id = $1",
                org_id,
            )
            if org_id
            else None
        )
        if row is None:
            row = await self.conn.fetchrow(
                "SELECT contact_email, webhook_url, contact_sms FROM organization_contacts"
                " WHERE root"
            )
        return (
            Contacts(row["contact_email"], row["webhook_url"], row["contact_sms"]) if row else None
        )

    async def present_in_area(self, org_id: UUID) -> list[Person]:
        path = await self.conn.fetchval(
            "SELECT path FROM organization_contacts WHERE org_id = $1", org_id
        )
        if path is None:
            return []
        rows = await self.conn.fetch(
            "SELECT member_id, name, phone, email FROM people_present"
            " WHERE org_path LIKE $1 || '%' ORDER BY presence, name, member_id",
            path,
        )
        return [_person(r) for r in rows]

    async def open_movements(
        self, node: str, statuses: Collection[str]
    ) -> AsyncIterator[tuple[OriginGroup, HostGroup | None]]:
        # a cursor inside the caller's transaction: a county's open movements are never all
        # in memory at once
        rows = self.conn.cursor(
            "SELECT origin_group, host_group FROM movements WHERE (origin = $1 OR host = $1)"
            " AND origin_status = ANY($2::text[])",
            node,
            sorted(statuses),
            prefetch=500,
        )
        async for row in rows:
            origin, host = _groups(row)
            if origin is not None:
                yield origin, host

    async def joined_on(self, month: int, day: int) -> list[Person]:
        rows = await self.conn.fetch(
            "SELECT member_id, name, phone, email, joined_on FROM member_contacts"
            " WHERE (extract(month FROM joined_on), extract(day FROM joined_on))"
            " IN (($1, $2), (2, 29))",
            month,
            day,
        )
        return [_person(r) for r in rows]
