"""The registry's tables, read and written through one asyncpg connection in a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from yixian.contracts import (
    OPEN_ORIGIN_STATUSES,
    REMOVED_STATUS,
    ActivityScheduled,
    HostGroup,
    OriginGroup,
    OriginStatus,
    recorded_status,
)
from yixian.contracts.expressions import Kind
from yixian.contracts.state import OPEN
from yixian.record.history import add_participation, with_history
from yixian.registry.domain import (
    Addressee,
    AlreadyExists,
    Answer,
    Concern,
    FeedbackState,
    GroupBy,
    Invalid,
    Member,
    MemberStatus,
    Movement,
    NotFound,
    Organization,
    OrgKind,
    Participation,
    Queue,
    Side,
)
from yixian.registry.domain.feedback import text_digest
from yixian.registry.domain.reporting import AWAY_DURING
from yixian.registry.service_layer.repositories import (
    AuditFilter,
    MemberSearch,
    QueueQuery,
    Report,
    ReportGroup,
    ReportQuery,
    ScopedMovement,
)
from yixian.runtime import DbConnection
from yixian.runtime.apikeys import Role

from . import auth, rules
from .rules import literal


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
        address=row["address"],
        transferred_from=row["transferred_from"],
        transfer_movement_id=row["transfer_movement_id"],
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
    "members_transferred_in_once": ("movement_id", "the member of this movement is enrolled"),
    "organizations_sibling_name": ("name", "an organization with this name has the same parent"),
    "certificates_pkey": ("certificate", "this certificate number was issued already"),
    "certificates_year_sequence": ("certificate", "this certificate number was issued already"),
    "certificates_movement_id_key": ("movement_id", "has its certificate already"),
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


_SELECT_MEMBER = "SELECT * FROM members WHERE member_id = $1"
_SELECT_MEMBER_FOR_UPDATE = _SELECT_MEMBER + " FOR UPDATE"
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


ORGANIZATION_CONTACTS = (
    "secretary_name", "contact_email", "contact_phone", "contact_sms", "webhook_url",
)  # fmt: skip
"""How an organization's secretary is reached (read by the notify service)."""

_ORGANIZATION_RECORD = (
    "SELECT org_id, parent_id, kind, jurisdiction, path, name, "  # noqa: S608 (fixed names)
    + ", ".join(ORGANIZATION_CONTACTS)
    + " FROM organizations"
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

    async def add(self, org: Organization, contacts: dict[str, str | None]) -> None:
        """``contacts``: how its secretary is reached (secretary_name, contact_email,
        contact_phone, webhook_url)."""
        async with one_effect():
            await self.conn.execute(
                "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path,"
                " secretary_name, contact_email, contact_phone, contact_sms, webhook_url)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                org.org_id,
                org.parent_id,
                org.name,
                org.kind.value,
                org.jurisdiction,
                org.path,
                *(contacts.get(name) for name in ORGANIZATION_CONTACTS),
            )

    async def subtree(self, path: str) -> list[Organization]:
        rows = await self.conn.fetch(
            "SELECT * FROM organizations WHERE path LIKE $1 || '%' ORDER BY path", path
        )
        return [_organization(r) for r in rows]

    async def ids_within(self, path: str) -> set[UUID]:
        rows = await self.conn.fetch(
            "SELECT org_id FROM organizations WHERE path LIKE $1 || '%'", path
        )
        return {r["org_id"] for r in rows}

    async def within(self, path: str) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            f"{_ORGANIZATION_RECORD} WHERE path LIKE $1 || '%' ORDER BY path", path
        )
        return [dict(r) for r in rows]

    async def record(self, org_id: UUID, *, lock: bool = False) -> dict[str, Any]:
        row = await self.conn.fetchrow(
            f"{_ORGANIZATION_RECORD} WHERE org_id = $1{' FOR UPDATE' if lock else ''}", org_id
        )
        if row is None:
            raise NotFound(f"organization {org_id} does not exist on this node", field="org_id")
        return dict(row)

    async def update(self, org_id: UUID, changes: Mapping[str, str | None]) -> None:
        names = [name for name in ("name", *ORGANIZATION_CONTACTS) if name in changes]
        assert len(names) == len(changes), f"not an organization's field: {sorted(changes)}"
        columns = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        async with one_effect():
            await self.conn.execute(
                f"UPDATE organizations SET {columns} WHERE org_id = $1",  # noqa: S608 (fixed names)
                org_id,
                *(changes[name] for name in names),
            )


class Members:
    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def get(self, member_id: UUID, *, lock: bool = False) -> Member:
        query = _SELECT_MEMBER_FOR_UPDATE if lock else _SELECT_MEMBER
        row = await self.conn.fetchrow(query, member_id)
        if row is None:
            raise NotFound(f"member {member_id} does not exist on this node", field="member_id")
        return _member(row)

    async def search(
        self, path: str, criteria: MemberSearch, after: tuple[str, UUID] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Each criterion is a condition an index of migration 0008 serves; the page is read
        in name order (migration 0015) before its members' statuses are found, unless the
        status is a criterion; the status is ``domain.member_status`` in SQL, with its
        statuses as arguments."""
        args: list[Any] = [
            sorted(s.value for s in OPEN_ORIGIN_STATUSES),
            OriginStatus.TRANSFERRED.value,
        ]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        where = [f"o.path LIKE {arg(path)} || '%'"]
        if criteria.name is not None:
            name = arg(criteria.name)
            where.append(
                f"member_name_grams(m.name) @> member_name_grams({name})"
                f" AND strpos(lower(m.name), lower({name})) > 0"
            )
        if criteria.phone_digits is not None:  # reversed, the digits start with the query's
            first = criteria.phone_digits[::-1]
            past = first[:-1] + chr(ord(first[-1]) + 1)
            digits = "reverse(regexp_replace(m.phone, '[^0-9]', '', 'g')) COLLATE \"C\""
            where.append(
                f"m.phone IS NOT NULL AND {digits} >= {arg(first)} AND {digits} < {arg(past)}"
            )
        if criteria.national_id_hash is not None:
            where.append(f"m.national_id_hash = {arg(criteria.national_id_hash)}")
        if after is not None:
            name, member_id = arg(after[0]), arg(after[1])
            where.append(f'(m.name COLLATE "C", m.member_id) > ({name}, {member_id})')
        if criteria.status is not None:
            where.append(f"{_status_of('m')} = {arg(criteria.status.value)}")
        # a page in name order (index members_by_name), then each one's status
        rows = await self.conn.fetch(
            f"SELECT p.*, {_status_of('p')} AS status FROM (SELECT {_MEMBER_COLUMNS}"  # noqa: S608
            f" FROM members m JOIN organizations o USING (org_id) WHERE {' AND '.join(where)}"
            f' ORDER BY m.name COLLATE "C", m.member_id LIMIT {arg(limit)}) p'
            ' ORDER BY p.name COLLATE "C", p.member_id',
            *args,
        )
        return [dict(r) for r in rows]

    async def update_contact(self, member_id: UUID, contact: Mapping[str, str | None]) -> None:
        try:
            await self.conn.execute(
                "UPDATE members SET phone = $2, email = $3, address = $4, updated_at = now()"
                " WHERE member_id = $1",
                member_id,
                contact.get("phone"),
                contact.get("email"),
                contact.get("address"),
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "members_natural_key":
                raise
            raise AlreadyExists(
                "another member of the organization has this name, joining date and phone",
                field="contact.phone",
            ) from None

    async def add(self, member: Member) -> None:
        async with one_effect():
            await self._insert(member)

    async def _insert(self, member: Member) -> None:
        await self.conn.execute(
            "INSERT INTO members (member_id, org_id, name, joined_on, phone, email,"
            " national_id_hash, national_id_masked, address, transferred_from,"
            " transfer_movement_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            member.member_id,
            member.org_id,
            member.name,
            member.joined_on,
            member.phone,
            member.email,
            member.national_id_hash,
            member.national_id_masked,
            member.address,
            member.transferred_from,
            member.transfer_movement_id,
        )

    async def by_transfer(self, movement_id: UUID) -> Member | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM members WHERE transfer_movement_id = $1", movement_id
        )
        return _member(row) if row else None

    async def count_by_status(self, path: str) -> dict[str, int]:
        """Members of the subtree by status (``domain.member_status``, as the search), and
        ``transferred_in``: those enrolled here after a transfer."""
        whole = path == await _root_path(self.conn)
        counts = "".join(
            f"count(*) FILTER (WHERE s.status = '{status.value}') AS {status.value}, "
            for status in MemberStatus
        )
        scoped = "" if whole else " JOIN organizations o USING (org_id) WHERE o.path LIKE $3 || '%'"
        row = await self.conn.fetchrow(
            f"SELECT {counts}count(s.transferred_from) AS transferred_in"  # noqa: S608
            f" FROM (SELECT m.transferred_from, {_status_of('m', every=True)} AS status"
            f" FROM members m{scoped} OFFSET 0) s",  # (the statuses are MemberStatus's values)
            sorted(s.value for s in OPEN_ORIGIN_STATUSES),
            OriginStatus.TRANSFERRED.value,
            *(() if whole else (path,)),
        )
        assert row is not None
        return dict(row)

    async def add_new(self, members: Sequence[tuple[Any, ...]]) -> set[UUID]:
        """Insert a batch (values in ``IMPORT_COLUMNS`` order) with COPY; rows a unique rule
        makes duplicates are skipped. The ids inserted."""
        await self.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS member_import (LIKE members INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        )
        await self.conn.copy_records_to_table(
            "member_import", records=members, columns=IMPORT_COLUMNS
        )
        # Rows go in in the order of the unique rules' keys, whatever ids the batch drew:
        # two imports of the same rows at once then wait on each other in one order and
        # never deadlock (a row's id is random when it has no national ID).
        rows = await self.conn.fetch(
            "INSERT INTO members (member_id, org_id, name, joined_on, phone, email,"
            " national_id_hash, national_id_masked)"
            " SELECT member_id, org_id, name, joined_on, phone, email, national_id_hash,"
            " national_id_masked FROM (SELECT DISTINCT ON (member_id) * FROM member_import"
            " ORDER BY member_id) AS batch"
            " ORDER BY national_id_hash NULLS LAST, org_id, name, joined_on, phone, member_id"
            " ON CONFLICT DO NOTHING RETURNING member_id"
        )
        return {r["member_id"] for r in rows}

    async def present_in(
        self, path: str, *, after: UUID | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The view ``people_present`` (migration 0006), which holds the rule: its local
        members, then its visitors. Each part is read in name order from where the page
        starts: every member (every movement, for visitors) in that order (migration
        0015), each one asked of the view, until the page is full."""
        start = None
        if after is not None:
            start = await self.conn.fetchrow(  # someone the caller may list (else an oracle)
                "SELECT presence, name, member_id FROM people_present"
                " WHERE member_id = $1 AND org_path LIKE $2 || '%' ORDER BY presence LIMIT 1",
                after,
                path,
            )
            if start is None:
                raise Invalid(f"{after} is not present in this area's list", field="after")
        found: list[dict[str, Any]] = []
        for presence, (table, name, key) in _PRESENT_IN_ORDER.items():
            if start is not None and presence < start["presence"]:
                continue
            left = None if limit is None else limit - len(found)
            if left == 0:
                break
            keyset = start is not None and presence == start["presence"]
            rows = await self.conn.fetch(
                f"SELECT p.* FROM {table} d CROSS JOIN LATERAL"  # noqa: S608 (fixed names)
                f" (SELECT * FROM people_present p WHERE p.presence = $1 AND p.{key} = d.{key}"
                " AND p.org_path LIKE $2 || '%' OFFSET 0) p"  # (asked row by row, in order)
                + (f" WHERE ({name}, d.member_id) > ($4, $5)" if keyset else "")
                + f" ORDER BY {name}, d.member_id LIMIT $3",
                presence,
                path,
                left,
                *((start["name"], start["member_id"]) if keyset and start else ()),
            )
            found += [dict(r) for r in rows]
        return found


_PRESENT_IN_ORDER = {
    "local": ("members", "d.name", "member_id"),
    "visiting": ("movements", "((d.origin_group -> 'member') ->> 'name')", "movement_id"),
}
"""people_present's parts in its order, each with what to walk in name order (an index
of migration 0015): the table, the name as the view has it, and the key to ask the view
by."""


def _status_of(member: str, *, every: bool = False) -> str:
    """The status of the member ``member`` (a table alias): removed once the origin
    removed the member (recorded status 'removed'), away while a movement this node
    registered ($1: the open origin statuses, as an array) is open, transferred out once
    one is transferred ($2), else home (domain.member_status). ``every``: for many members
    at once (each kind of movement hashed once), else for a few (each member's movements
    looked up in the index)."""

    def has(status: str) -> str:
        if every:
            return (
                f"{member}.member_id IN (SELECT mv.member_id FROM movements mv"  # noqa: S608
                f" WHERE mv.origin_org_id IS NOT NULL AND mv.origin_status {status})"
            )
        return (
            "EXISTS (SELECT 1 FROM movements mv"  # noqa: S608 (an alias, fixed conditions)
            f" WHERE mv.member_id = {member}.member_id AND mv.origin_org_id IS NOT NULL"
            f" AND mv.origin_status {status})"
        )

    removed = f"= '{REMOVED_STATUS}'"
    return (
        f"CASE WHEN {has(removed)} THEN '{MemberStatus.REMOVED.value}'"
        f" WHEN {has('= ANY($1::text[])')} THEN '{MemberStatus.AWAY.value}'"
        f" WHEN {has('= $2')} THEN '{MemberStatus.TRANSFERRED_OUT.value}'"
        f" ELSE '{MemberStatus.HOME.value}' END"
    )


_MEMBER_COLUMNS = "m.member_id, m.org_id, m.name, m.joined_on, m.phone, m.email, m.transferred_from"


async def _root_path(conn: DbConnection) -> str | None:
    """The path of the node's root organization: a subtree that is every organization."""
    path: str | None = await conn.fetchval("SELECT path FROM organizations WHERE parent_id IS NULL")
    return path


IMPORT_COLUMNS = [
    "member_id", "org_id", "name", "joined_on", "phone", "email",
    "national_id_hash", "national_id_masked",
]  # fmt: skip


_ADD_WITH_HISTORY = with_history(
    "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
    " origin_status, origin_group, origin_org_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " RETURNING movement_id, origin_version AS version, origin_group AS snapshot",
    "origin",
)
_SAVE_ORIGIN_WITH_HISTORY = with_history(
    "UPDATE movements SET origin_version = $2, origin_status = $3, origin_group = $4,"
    " updated_at = now() WHERE movement_id = $1 AND origin_version < $2"
    " RETURNING movement_id, origin_version AS version, origin_group AS snapshot",
    "origin",
)
_SAVE_HOST_WITH_HISTORY = with_history(
    "UPDATE movements SET host_version = $2, host_status = $3, host_group = $4,"
    " host_org_id = COALESCE($5, host_org_id), updated_at = now()"
    " WHERE movement_id = $1 AND host_version < $2"
    " RETURNING movement_id, host_version AS version, host_group AS snapshot",
    "host",
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

    async def org_ids(self, movement_id: UUID) -> tuple[UUID | None, UUID | None]:
        row = await self.conn.fetchrow(
            "SELECT origin_org_id, host_org_id FROM movements WHERE movement_id = $1", movement_id
        )
        return (row["origin_org_id"], row["host_org_id"]) if row else (None, None)

    async def member_id(self, movement_id: UUID) -> UUID:
        found: UUID | None = await self.conn.fetchval(
            "SELECT member_id FROM movements WHERE movement_id = $1", movement_id
        )
        if found is None:
            raise NotFound(f"movement {movement_id} is not known on this node", field="movement_id")
        return found

    async def of_member(self, member_id: UUID) -> list[Movement]:
        rows = await self.conn.fetch(
            "SELECT * FROM movements WHERE member_id = $1 ORDER BY created_at, movement_id",
            member_id,
        )
        return [movement_from_row(r) for r in rows]

    async def add(self, movement: Movement, member_id: UUID, origin_org_id: UUID) -> None:
        group = movement.origin_group
        assert group is not None
        assert movement.origin == self.node
        async with one_effect():
            await self.conn.fetchval(
                _ADD_WITH_HISTORY,
                movement.movement_id,
                movement.origin,
                movement.host,
                member_id,
                group.version,
                recorded_status(group),
                group.model_dump(mode="json"),
                origin_org_id,
            )

    async def save_own_group(self, movement: Movement, host_org_id: UUID | None = None) -> None:
        """Write this node's group of the movement (never the partner's), and its version
        to the history."""
        side = movement.side_of(self.node)
        group: OriginGroup | HostGroup | None = (
            movement.origin_group if side is Side.ORIGIN else movement.host_group
        )
        assert group is not None
        snapshot = group.model_dump(mode="json")
        if isinstance(group, OriginGroup):
            written = await self.conn.fetchval(
                _SAVE_ORIGIN_WITH_HISTORY,
                movement.movement_id,
                group.version,
                recorded_status(group),
                snapshot,
            )
        else:
            written = await self.conn.fetchval(
                _SAVE_HOST_WITH_HISTORY,
                movement.movement_id,
                group.version,
                group.status.value,
                snapshot,
                host_org_id,
            )
        if written != 1:
            raise RuntimeError(f"movement {movement.movement_id} changed under a held lock")

    async def history(self, movement_id: UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT group_name, version, snapshot, recorded_at FROM movement_history"
            " WHERE movement_id = $1 ORDER BY recorded_at, id",
            movement_id,
        )
        return [dict(r) for r in rows]

    async def add_participation(self, p: Participation) -> bool:
        """Record an attendance; False when its id was recorded before (the key decides)."""
        return await add_participation(self.conn, p)

    async def participation(self, participation_id: UUID) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM participations WHERE participation_id = $1", participation_id
        )
        return dict(row) if row else None

    async def participations(self, movement_id: UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM participations WHERE movement_id = $1 ORDER BY attended_at",
            movement_id,
        )
        return [dict(r) for r in rows]

    async def forwards_to_follow(
        self, partners: Sequence[str], limit: int
    ) -> list[tuple[UUID, int]]:
        """This node's registered movements whose host forwarded the member to a linked
        partner: the ones the origin follows (migration 0009 indexes them), with their host
        group's version; oldest first."""
        rows = await self.conn.fetch(
            "SELECT movement_id, host_version FROM movements"
            " WHERE origin = $1 AND origin_org_id IS NOT NULL"
            " AND origin_status = 'registered' AND host_status = 'forwarded'"
            " AND host_group ->> 'forwarded_to' = ANY($2::text[])"
            " ORDER BY updated_at, movement_id LIMIT $3",
            self.node,
            list(partners),
            limit,
        )
        return [(r["movement_id"], r["host_version"]) for r in rows]

    async def _answerable(self, path: str, args: _Args) -> _Answerable:
        """How the statement finds the organization answerable for each movement, and
        whether it must: every movement is the root's subtree's."""
        return _Answerable(args, path, whole=path == await _root_path(self.conn))

    async def in_scope(
        self,
        path: str,
        side: Side | None,
        open_statuses: Sequence[str] | None,
        *,
        name: str | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[Movement]:
        args = _Args(self.node)
        scope = await self._answerable(path, args)
        where = [scope.within]
        if side is not None:
            where.append(f"m.{'origin' if side is Side.ORIGIN else 'host'} = {args.node}")
        if open_statuses is not None:
            where.append(f"m.origin_status = ANY({args.add(list(open_statuses))}::text[])")
            if set(open_statuses) == _OPEN:  # the index of the open movements' names
                where.append(f"m.origin_status IN ({_OPEN_SQL})")
        if name is not None:
            value = args.add(name)
            where.append(
                "member_name_grams(m.origin_group #>> '{member,name}')"
                f" @> member_name_grams({value})"
                f" AND strpos(lower(m.origin_group #>> '{{member,name}}'), lower({value})) > 0"
            )
        if after is not None:  # a movement the caller may see (else the order is an oracle)
            seen = _Args(self.node)
            visible = await self._answerable(path, seen)
            if not await self.conn.fetchval(
                f"SELECT true FROM movements m {visible.joins}"  # noqa: S608 (fixed names)
                f" WHERE {visible.within} AND m.movement_id = {seen.add(after)}",
                *seen.values,
            ):
                raise Invalid(f"{after} is not a movement of your subtree", field="after")
            where.append(_after(args.add(after)))
        rows = await self.conn.fetch(
            f"SELECT m.* FROM movements m {scope.joins} WHERE {' AND '.join(where)}"  # noqa: S608
            f" ORDER BY m.created_at, m.movement_id LIMIT {args.add(limit)}",  # (fixed names)
            *args.values,
        )
        return [movement_from_row(r) for r in rows]

    async def queued(
        self, which: QueueQuery, *, after: UUID | None = None, limit: int | None = None
    ) -> list[ScopedMovement]:
        args = _Args(self.node)
        scope = await self._answerable(which.path, args)
        where = self._queue_rows(which, args, scope)
        case = self._queue_case(which, args)
        where.append(f"{case} = {args.add(which.queue)}" if which.queue else f"{case} IS NOT NULL")
        if after is not None:
            where.append(_after(args.add(after)))
        rows = await self.conn.fetch(
            "WITH page AS MATERIALIZED (SELECT m.movement_id, m.created_at"  # noqa: S608
            f" FROM movements m {scope.joins} WHERE {' AND '.join(where)}"
            f" ORDER BY m.created_at, m.movement_id LIMIT {args.add(limit)})"
            f" SELECT m.*, {scope.org_id} AS scope_org_id FROM page"
            f" JOIN movements m USING (movement_id) {scope.all_joins}"
            " ORDER BY page.created_at, page.movement_id",
            *args.values,
        )
        return [
            ScopedMovement(movement_from_row(r), r["scope_org_id"], r["member_id"]) for r in rows
        ]

    async def queue_counts(self, which: QueueQuery) -> dict[Queue, int]:
        args = _Args(self.node)
        scope = await self._answerable(which.path, args)
        where = self._queue_rows(which, args, scope)
        rows = await self.conn.fetch(
            f"SELECT queue, count(*) AS n FROM (SELECT {self._queue_case(which, args)} AS queue"  # noqa: S608
            f" FROM movements m {scope.joins} WHERE {' AND '.join(where)} OFFSET 0) q"
            " WHERE queue IS NOT NULL GROUP BY queue",
            *args.values,
        )
        counts = dict.fromkeys(Queue, 0)
        counts |= {Queue(r["queue"]): r["n"] for r in rows}
        return counts

    @staticmethod
    def _queue_rows(which: QueueQuery, args: _Args, scope: _Answerable) -> list[str]:
        """The movements the queues read: the open ones, and the completed transfers still
        to enrol (the index ``movements_queues``), of the scope and the partner."""
        where = [_QUEUED, scope.within]
        if which.partner is not None:
            where.append(f"{_partner(args.node)} = {args.add(which.partner)}")
        return where

    @staticmethod
    def _queue_case(which: QueueQuery, args: _Args) -> str:
        """The queue of a movement by the domain's rules, translated once for each side of
        the node (the side known, the rules of the other side drop out)."""
        today = args.add(which.today)
        cases = [
            rules.queue_case(
                rules.Translation(
                    params={"side": literal(side.value, Kind.TEXT), "today": today},
                    deadlines=which.deadlines,
                )
            )
            for side in (Side.ORIGIN, Side.HOST)
        ]
        return f"(CASE WHEN m.origin = {args.node} THEN {cases[0]} ELSE {cases[1]} END)"

    async def report(self, which: ReportQuery) -> Report:
        """One statement of three parts over the report's movements. Movements and open
        ones are counted first by everything a breakdown or the scope reads (the
        organizations a movement may be answered for, its partner, state and month of
        departure), a few thousand groups at most, each then placed with its answerable
        organization and rolled up by every breakdown and in total (``GROUPING SETS``).
        Distinct members are counted from the movements themselves: in total in the
        member's order (index ``movements_reports``), by ``group_by`` as pairs of group
        and member."""
        args = _Args(self.node)
        translate = rules.Translation(
            params={"since": args.add(which.since), "until": args.add(which.until)}
        )
        scope = await self._answerable(which.path, args)
        await self.conn.execute(f"SET LOCAL work_mem = '{_REPORT_MEMORY}'")
        where = [translate(AWAY_DURING)]
        if which.side is not None:
            where.append(f"m.{'origin' if which.side is Side.ORIGIN else 'host'} = {args.node}")
        if which.partner is not None:
            where.append(f"{_partner(args.node)} = {args.add(which.partner)}")
        by = list(dict.fromkeys([*([which.group_by] if which.group_by else []), *which.breakdowns]))
        named = [f"k{i}" for i in range(len(by))]
        # the movements counted by what the breakdowns and the scope read
        answered = GroupBy.BRANCH in by or not scope.whole
        counted_by = {
            **(
                {
                    "at_origin": f"m.origin = {args.node}",
                    "origin_org_id": "m.origin_org_id",
                    "host_org_id": "m.host_org_id",
                    "fact_host_org_hint": "m.fact_host_org_hint",
                }
                if answered
                else {}
            ),
            **{
                f"k{i}": self._report_key(b, args)
                for i, b in enumerate(by)
                if b is not GroupBy.BRANCH
            },
        }
        columns = "".join(f"{sql} AS {name}, " for name, sql in counted_by.items())
        grouped = f" GROUP BY {', '.join(counted_by)}" if counted_by else ""
        placed = scope.of("c", "c.at_origin")
        keys = "".join(
            f"{placed.org_id if b is GroupBy.BRANCH else 'c.k' + str(i)} AS k{i}, "
            for i, b in enumerate(by)
        )
        listed = "".join(f"{n}, " for n in named)
        nulls = "".join(f"NULL AS {n}, " for n in named)
        parts = [
            f"SELECT {listed}{_grouping(named)} AS g, sum(n)::bigint AS movements,"  # noqa: S608
            " sum(o)::bigint AS open, NULL::bigint AS members"
            f" FROM (SELECT {keys}c.n, c.o FROM c {placed.all_joins if answered else ''}"
            f" WHERE {placed.within}) p"
            f" GROUP BY GROUPING SETS ({''.join(f'({n}), ' for n in named)}())",
            f"SELECT {nulls}-1, NULL, NULL, count(*) FROM (SELECT m.member_id"  # noqa: S608
            f" FROM movements m {scope.joins} WHERE {' AND '.join([*where, scope.within])}"
            " GROUP BY m.member_id) t",
        ]
        if which.group_by is not None:  # ... k0, with its members
            others = "".join(f"NULL AS {n}, " for n in named[1:])
            key = (
                scope.org_id
                if which.group_by is GroupBy.BRANCH
                else self._report_key(which.group_by, args)
            )
            joins = scope.all_joins if which.group_by is GroupBy.BRANCH else scope.joins
            parts.append(
                f"SELECT k0, {others}-2, NULL, NULL, count(*) FROM (SELECT {key} AS k0,"  # noqa: S608
                f" m.member_id FROM movements m {joins}"
                f" WHERE {' AND '.join([*where, scope.within])}"
                f" GROUP BY 1, 2) p GROUP BY k0"
            )
        rows = await self.conn.fetch(
            f"WITH c AS (SELECT {columns}count(*) AS n,"  # noqa: S608 (fixed names)
            f" count(*) FILTER (WHERE {translate(OPEN)}) AS o FROM movements m"
            f" WHERE {' AND '.join(where)}{grouped}) {' UNION ALL '.join(parts)}",
            *args.values,
        )
        counted: dict[tuple[int, str | None], tuple[int, int]] = {}
        members: dict[str | None, int] = {}
        for r in rows:
            if r["g"] == -1:  # the total's members
                members[None] = r["members"]
                continue
            if r["g"] == -2:  # a group's of group_by
                members[_key_text(r["k0"])] = r["members"]
                continue
            bits = r["g"]
            grouped_at = next((i for i in range(len(by)) if not bits >> (len(by) - 1 - i) & 1), -1)
            key_text = _key_text(r[f"k{grouped_at}"]) if grouped_at >= 0 else None
            counted[(grouped_at, key_text)] = (r["movements"] or 0, r["open"] or 0)

        def groups(i: int, with_members: bool) -> list[ReportGroup]:
            found = sorted((k for k in counted if k[0] == i), key=lambda k: k[1] or "")
            return [
                ReportGroup(key, *counted[(i, key)], members.get(key) if with_members else None)
                for _, key in found
            ]

        movements_total, open_total = counted.get((-1, None), (0, 0))
        return Report(
            ReportGroup(None, movements_total, open_total, members.get(None, 0)),
            groups(0, True) if which.group_by is not None else [],
            {b: groups(i, False) for i, b in enumerate(by) if b in which.breakdowns},
        )

    @staticmethod
    def _report_key(group_by: GroupBy, args: _Args) -> str:
        """What a breakdown groups by but the branch (its text is made of it in Python:
        ``_key_text``)."""
        if group_by is GroupBy.PARTNER:
            return _partner(args.node)
        if group_by is GroupBy.STATE:
            return "m.fact_state"
        return "date_trunc('month', m.fact_departed_on)::date"  # the month of departure


_REPORT_MEMORY = "32MB"
"""What a report may hash in memory (each breakdown's groups, the members' ids), in its
own transaction: PostgreSQL's default (4 MB) sorts a node's movements on disk instead."""


def _key_text(key: Any) -> str | None:
    """A breakdown's key as the report shows it: a month as ``YYYY-MM``."""
    if key is None:
        return None
    return key.strftime("%Y-%m") if isinstance(key, date) else str(key)


def _grouping(named: list[str]) -> str:
    """Which grouping set a row is of (the total's: every bit set)."""
    return f"GROUPING({', '.join(named)})" if named else "0"


_OPEN = {status.value for status in OPEN_ORIGIN_STATUSES}
_OPEN_SQL = ", ".join(literal(status, Kind.TEXT) for status in sorted(_OPEN))
_QUEUED = (
    f"(m.origin_status IN ({_OPEN_SQL})"
    f" OR (m.origin_status = {literal(OriginStatus.TRANSFERRED, Kind.TEXT)} AND m.fact_to_enrol))"
)
"""The movements the queues read: the predicate of the index ``movements_queues``."""


def _partner(node: str) -> str:
    """The other node of the movement."""
    return f"(CASE WHEN m.origin = {node} THEN m.host ELSE m.origin END)"


def _after(movement: str) -> str:
    """After that movement, oldest first (then by id)."""
    return (
        "(m.created_at, m.movement_id) > (SELECT a.created_at, a.movement_id"  # noqa: S608
        f" FROM movements a WHERE a.movement_id = {movement})"
    )


class _Args:
    """A statement's arguments, each given once: ``add`` a value where the statement uses
    it; ``node`` is this node's code (once, where first used)."""

    def __init__(self, node: str) -> None:
        self.values: list[Any] = []
        self._node = node
        self._node_at: str | None = None

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    @property
    def node(self) -> str:
        if self._node_at is None:
            self._node_at = self.add(self._node)
        return self._node_at


class _Answerable:
    """The organization of this node answerable for a movement: at its origin the
    member's organization; at its host the one that checked the member in (or that a host
    secretary assigned), else the one the origin suggested if it exists here, else the
    node's root (``domain.answerable``). Read from the movement's row (``m``), or from a
    relation with the same columns where ``at_origin`` says whether the node is its
    origin."""

    def __init__(
        self,
        args: _Args,
        path: str,
        *,
        whole: bool,
        table: str = "m",
        at_origin: str | None = None,
    ) -> None:
        self.args = args
        self.path = path
        self.whole = whole
        """The scope is the whole node: no condition, no join."""
        self.table = table
        self._at_origin = at_origin
        self.all_joins = (
            f"LEFT JOIN organizations oo ON oo.org_id = {table}.origin_org_id"
            f" LEFT JOIN organizations ho ON ho.org_id = {table}.host_org_id"
            f" LEFT JOIN organizations hint ON hint.org_id = {table}.fact_host_org_hint"
        )
        self.joins = "" if whole else self.all_joins
        self._within: str | None = None

    def of(self, table: str, at_origin: str) -> _Answerable:
        """The same scope, read from another relation."""
        return _Answerable(self.args, self.path, whole=self.whole, table=table, at_origin=at_origin)

    @property
    def at_origin(self) -> str:
        return self._at_origin or f"{self.table}.origin = {self.args.node}"

    @property
    def org_id(self) -> str:
        return (
            f"COALESCE(CASE WHEN {self.at_origin} THEN oo.org_id END,"
            f" ho.org_id, hint.org_id, ({_ROOT.format('org_id')}))"
        )

    @property
    def within(self) -> str:
        """The movement is the subtree's (one argument, however often it is asked)."""
        if self.whole:
            return "true"
        if self._within is None:
            self._within = (
                f"COALESCE(CASE WHEN {self.at_origin} THEN oo.path END,"
                f" ho.path, hint.path, ({_ROOT.format('path')}))"
                f" LIKE {self.args.add(self.path)} || '%'"
            )
        return self._within


_ROOT = "SELECT {} FROM organizations WHERE parent_id IS NULL"
"""The node's root organization's column (one, computed once a statement)."""


class Certificates:
    """The certificates this node issued, and each year's counter (migration 0009)."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def next_sequence(self, year: int) -> int:
        sequence: int = await self.conn.fetchval(
            "INSERT INTO certificate_counters (year, last_sequence) VALUES ($1, 1)"
            " ON CONFLICT (year) DO UPDATE"
            " SET last_sequence = certificate_counters.last_sequence + 1"
            " RETURNING last_sequence",
            year,
        )
        return sequence

    async def add(
        self,
        *,
        number: str,
        year: int,
        sequence: int,
        movement_id: UUID,
        member_id: UUID,
        issued_on: date,
        issued_by: str,
    ) -> None:
        async with one_effect():
            await self.conn.execute(
                "INSERT INTO certificates (number, year, sequence, movement_id, member_id,"
                " issued_on, issued_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                number,
                year,
                sequence,
                movement_id,
                member_id,
                issued_on,
                issued_by,
            )


class Activities:
    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def add(self, activity: ActivityScheduled, org_id: UUID) -> None:
        async with one_effect():
            await self.conn.execute(
                "INSERT INTO activities (activity_id, org_id, kind, title, starts_at, ends_at,"
                " location, scheduled_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                activity.activity_id,
                org_id,
                activity.kind.value,
                activity.title,
                activity.starts_at,
                activity.ends_at,
                activity.location,
                activity.scheduled_by,
            )


_SELECT_CONCERN = "SELECT * FROM feedback WHERE feedback_id = $1"
_SELECT_CONCERN_FOR_UPDATE = _SELECT_CONCERN + " FOR UPDATE"


def _concern(row: asyncpg.Record) -> Concern:
    return Concern(
        feedback_id=row["feedback_id"],
        org_id=row["org_id"],
        movement_id=row["movement_id"],
        member_id=row["member_id"],
        member_name=row["member_name"],
        addressed_to=Addressee(row["addressed_to"]),
        text=row["text"],
        share_with_origin=row["share_with_origin"],
        state=FeedbackState(row["state"]),
        raised_at=row["raised_at"],
        raised_by=row["raised_by"],
        first_answered_at=row["first_answered_at"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
    )


def _answer(row: asyncpg.Record) -> Answer:
    return Answer(
        answer_id=row["answer_id"],
        feedback_id=row["feedback_id"],
        text=row["text"],
        answered_at=row["answered_at"],
        answered_by=row["answered_by"],
    )


class Feedback:
    """Members' concerns and their answers (migration ``0012_feedback``)."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def add(self, concern: Concern) -> bool:
        status = await self.conn.execute(
            "INSERT INTO feedback (feedback_id, org_id, movement_id, member_id, member_name,"
            " addressed_to, text, text_digest, share_with_origin, state, raised_at, raised_by,"
            " first_answered_at, closed_at, closed_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            " ON CONFLICT (member_id, addressed_to, text_digest) WHERE state <> 'closed'"
            " DO NOTHING",
            concern.feedback_id,
            concern.org_id,
            concern.movement_id,
            concern.member_id,
            concern.member_name,
            concern.addressed_to.value,
            concern.text,
            concern.digest,
            concern.share_with_origin,
            concern.state.value,
            concern.raised_at,
            concern.raised_by,
            concern.first_answered_at,
            concern.closed_at,
            concern.closed_by,
        )
        return bool(status == "INSERT 0 1")

    async def same_open(
        self, member_id: UUID, addressed_to: Addressee, digest: str
    ) -> Concern | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM feedback WHERE member_id = $1 AND addressed_to = $2"
            " AND text_digest = $3 AND state <> 'closed'",
            member_id,
            addressed_to.value,
            digest,
        )
        return _concern(row) if row else None

    async def get(self, feedback_id: UUID, *, lock: bool = False) -> Concern:
        query = _SELECT_CONCERN_FOR_UPDATE if lock else _SELECT_CONCERN
        row = await self.conn.fetchrow(query, feedback_id)
        if row is None:
            raise NotFound(f"concern {feedback_id} is not known on this node", field="feedback_id")
        return _concern(row)

    async def save(self, concern: Concern) -> None:
        await self.conn.execute(
            "UPDATE feedback SET state = $2, first_answered_at = $3, closed_at = $4,"
            " closed_by = $5 WHERE feedback_id = $1",
            concern.feedback_id,
            concern.state.value,
            concern.first_answered_at,
            concern.closed_at,
            concern.closed_by,
        )

    async def add_answer(self, answer: Answer) -> bool:
        status = await self.conn.execute(
            "INSERT INTO feedback_answers (answer_id, feedback_id, text, text_digest,"
            " answered_at, answered_by) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT ON CONSTRAINT feedback_answers_once DO NOTHING",
            answer.answer_id,
            answer.feedback_id,
            answer.text,
            text_digest(answer.text),
            answer.answered_at,
            answer.answered_by,
        )
        return bool(status == "INSERT 0 1")

    async def answers(self, feedback_id: UUID) -> list[Answer]:
        rows = await self.conn.fetch(
            "SELECT * FROM feedback_answers WHERE feedback_id = $1 ORDER BY answered_at, answer_id",
            feedback_id,
        )
        return [_answer(r) for r in rows]

    async def count_answers(self, feedback_ids: Sequence[UUID]) -> int:
        count = await self.conn.fetchval(
            "SELECT count(*) FROM feedback_answers WHERE feedback_id = ANY($1::uuid[])",
            list(feedback_ids),
        )
        return int(count or 0)

    async def within(
        self,
        path: str,
        *,
        state: FeedbackState | None = None,
        raised_from: datetime | None = None,
        raised_before: datetime | None = None,
    ) -> list[Concern]:
        rows = await self.conn.fetch(
            "SELECT f.* FROM feedback f JOIN organizations o USING (org_id)"
            " WHERE o.path LIKE $1 || '%' AND ($2::text IS NULL OR f.state = $2)"
            " AND ($3::timestamptz IS NULL OR f.raised_at >= $3)"
            " AND ($4::timestamptz IS NULL OR f.raised_at < $4)"
            " ORDER BY f.raised_at, f.feedback_id",
            path,
            state.value if state else None,
            raised_from,
            raised_before,
        )
        return [_concern(r) for r in rows]

    async def of_movement(self, movement_id: UUID, addressed_to: Addressee) -> list[Concern]:
        rows = await self.conn.fetch(
            "SELECT * FROM feedback WHERE movement_id = $1"
            " AND addressed_to = $2 ORDER BY raised_at, feedback_id",
            movement_id,
            addressed_to.value,
        )
        return [_concern(r) for r in rows]


class ApiKeys:
    """The node's API keys (``adapters/auth.py`` holds their SQL, shared with start-up)."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def create(self, *, name: str, role: Role, org_id: UUID) -> tuple[UUID, str]:
        return await auth.create_api_key(self.conn, name=name, role=role, org_id=org_id)

    async def within(self, org_path: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await auth.api_keys_within(self.conn, org_path)]

    async def find(self, key_id: UUID) -> dict[str, Any] | None:
        row = await auth.find_api_key(self.conn, key_id)
        return dict(row) if row else None

    async def active_root_operator_keys(self) -> list[UUID]:
        return await auth.active_root_operator_keys(self.conn)

    async def revoke(self, key_id: UUID, at: datetime) -> datetime:
        return await auth.revoke_api_key(self.conn, key_id, at)


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

    async def entries(self, which: AuditFilter) -> list[dict[str, Any]]:
        """Newest first, with the name of the key each actor ``key:<key id>`` stands for."""
        args: list[Any] = []
        where: list[str] = []
        for condition, value in (
            ("a.target = ", which.target),
            ("a.actor = ", which.actor),
            ("a.at >= ", which.since),
            ("a.at < ", which.until),
            ("a.id < ", which.before),
        ):
            if value is not None:
                args.append(value)
                where.append(f"{condition}${len(args)}")
        args.append(which.limit)
        rows = await self.conn.fetch(
            f"{_AUDIT_WITH_KEY_NAME} {'WHERE ' + ' AND '.join(where) if where else ''}"
            f" ORDER BY a.id DESC LIMIT ${len(args)}",  # (fixed conditions; values are arguments)
            *args,
        )
        return [dict(r) for r in rows]

    async def changes(self, target: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            f"{_AUDIT_WITH_KEY_NAME} WHERE a.target = $1 AND a.outcome = 'ok'"
            " ORDER BY a.id DESC LIMIT $2",
            target,
            limit,
        )
        return [dict(r) for r in rows]


_AUDIT_WITH_KEY_NAME = (
    "SELECT a.*, (SELECT k.name FROM api_keys k WHERE k.key_id = CASE"
    " WHEN a.actor ~ '^key:[0-9a-f-]{36}$' THEN substr(a.actor, 5)::uuid END) AS key_name"
    " FROM audit_log a"
)
"""Audit rows with the name of the key each actor ``key:<key id>`` stands for."""


class IdempotencyKeys:
    """The first result of each request sent with an ``Idempotency-Key``, per actor."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def claim(self, actor: str, key: str, request_hash: str | None) -> bool:
        """Claim the key for a request in this transaction; False: another has it."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO idempotency_keys (actor, key, request_hash) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                actor,
                key,
                request_hash,
            )
        )

    async def claim_leased(self, actor: str, key: str, request_hash: str, lease: timedelta) -> bool:
        """Claim the key for a request spanning several transactions, for ``lease`` unless
        renewed; a claim whose lease ran out without a result is taken over."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO idempotency_keys (actor, key, request_hash, lease_until)"
                " VALUES ($1, $2, $3, now() + $4::interval) ON CONFLICT (actor, key) DO UPDATE"
                " SET lease_until = EXCLUDED.lease_until"
                " WHERE idempotency_keys.status IS NULL"
                " AND idempotency_keys.lease_until < now()"
                " RETURNING 1",
                actor,
                key,
                request_hash,
                lease,
            )
        )

    async def first(self, actor: str, key: str) -> dict[str, Any] | None:
        """The first request's request_hash, status and response (status None: running)."""
        row = await self.conn.fetchrow(
            "SELECT request_hash, status, response FROM idempotency_keys"
            " WHERE actor = $1 AND key = $2",
            actor,
            key,
        )
        return dict(row) if row else None

    async def renew(self, actor: str, key: str, lease: timedelta) -> None:
        await self.conn.execute(
            "UPDATE idempotency_keys SET lease_until = now() + $3::interval"
            " WHERE actor = $1 AND key = $2 AND status IS NULL",
            actor,
            key,
            lease,
        )

    async def finish(
        self,
        actor: str,
        key: str,
        status: int,
        response: Any,
        request_hash: str | None = None,
    ) -> None:
        """Keep the result (and, for a streamed request, its fingerprint; the lease ends)."""
        if request_hash is None:
            await self.conn.execute(
                "UPDATE idempotency_keys SET status = $3, response = $4"
                " WHERE actor = $1 AND key = $2",
                actor,
                key,
                status,
                response,
            )
            return
        await self.conn.execute(
            "UPDATE idempotency_keys SET request_hash = $3, status = $4, response = $5,"
            " lease_until = NULL WHERE actor = $1 AND key = $2",
            actor,
            key,
            request_hash,
            status,
            response,
        )

    async def release(self, actor: str, key: str) -> None:
        """Free a claim that has no result, so that a retry runs."""
        await self.conn.execute(
            "DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2 AND status IS NULL",
            actor,
            key,
        )


class Visitors:
    """Visitors' claims (ADR 21): this node's own as a host (``visitors``), what it decided
    as an origin (``visitor_claim_decisions``), and what sync received, through sync's
    views ``visitor_claims_asked`` and ``visitor_claim_answers`` (ADR 17)."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def _sync_views(self) -> bool:
        """Whether sync's migrations made its views yet (a registry may start first, or run
        on a database without sync, as its own tests do): until then nothing was received."""
        return bool(
            await self.conn.fetchval("SELECT to_regclass('visitor_claim_answers') IS NOT NULL")
        )

    async def _select_visitor(self) -> str:
        return _SELECT_VISITOR if await self._sync_views() else _SELECT_VISITOR_UNANSWERED

    # -- host ------------------------------------------------------------------------------

    async def add(self, claim: Mapping[str, Any]) -> bool:
        added = await self.conn.fetchval(
            "INSERT INTO visitors (claim_id, origin, org_id, name, national_id_hash,"
            " national_id_masked, contact, asked_at, asked_by, due_on)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (origin, national_id_hash) DO NOTHING RETURNING true",
            claim["claim_id"],
            claim["origin"],
            claim["org_id"],
            claim["name"],
            claim["national_id_hash"],
            claim["national_id_masked"],
            claim["contact"],
            claim["asked_at"],
            claim["asked_by"],
            claim["due_on"],
        )
        return bool(added)

    async def of_person(self, origin: str, national_id_hash: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            await self._select_visitor() + " WHERE v.origin = $1 AND v.national_id_hash = $2",
            origin,
            national_id_hash,
        )
        return dict(row) if row else None

    async def within(self, path: str) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            await self._select_visitor() + " JOIN organizations o ON o.org_id = v.org_id"
            " WHERE o.path LIKE $1 || '%' ORDER BY v.asked_at, v.claim_id",
            path,
        )
        return [dict(r) for r in rows]

    # -- origin ----------------------------------------------------------------------------

    async def unanswered(self, limit: int) -> list[UUID]:
        """Claims asked of this node that it has not looked at yet."""
        if not await self._sync_views():
            return []
        rows = await self.conn.fetch(
            "SELECT a.claim_id FROM visitor_claims_asked a"
            " LEFT JOIN visitor_claim_decisions d ON d.claim_id = a.claim_id"
            " WHERE d.claim_id IS NULL ORDER BY a.received_at LIMIT $1",
            limit,
        )
        return [r["claim_id"] for r in rows]

    async def asked(self, claim_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        """A claim asked of this node with what it decided (``result`` None: nothing yet);
        ``lock``: the decision's row, if any, for the rest of the transaction."""
        if not await self._sync_views():
            return None
        if lock:  # a decision's row, once there is one: confirmations of a claim queue here
            await self.conn.execute(
                "SELECT 1 FROM visitor_claim_decisions WHERE claim_id = $1 FOR UPDATE", claim_id
            )
        row = await self.conn.fetchrow(_SELECT_ASKED + " WHERE a.claim_id = $1", claim_id)
        return dict(row) if row else None

    async def asked_all(self) -> list[dict[str, Any]]:
        if not await self._sync_views():
            return []
        rows = await self.conn.fetch(_SELECT_ASKED + " ORDER BY a.received_at, a.claim_id")
        return [dict(r) for r in rows]

    async def candidates(self, name: str, id_ending: str) -> list[UUID]:
        """Members of this node with the name and a national ID ending so."""
        rows = await self.conn.fetch(
            "SELECT member_id FROM members WHERE name = $1 AND national_id_masked IS NOT NULL"
            " AND right(national_id_masked, 4) = $2 ORDER BY member_id",
            name,
            id_ending,
        )
        return [r["member_id"] for r in rows]

    async def decide(self, decision: Mapping[str, Any]) -> bool:
        """Record a decision: the first for a claim, or one replacing it (the caller holds
        the row's lock); whether anything changed."""
        changed = await self.conn.fetchval(
            "INSERT INTO visitor_claim_decisions (claim_id, host, result, candidates,"
            " member_id, movement_id, answered, decided_at, decided_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (claim_id) DO UPDATE SET result = EXCLUDED.result,"
            " member_id = EXCLUDED.member_id, movement_id = EXCLUDED.movement_id,"
            " answered = EXCLUDED.answered, decided_at = EXCLUDED.decided_at,"
            " decided_by = EXCLUDED.decided_by"
            " WHERE $10 RETURNING true",
            decision["claim_id"],
            decision["host"],
            decision["result"],
            decision["candidates"],
            decision["member_id"],
            decision["movement_id"],
            decision["answered"],
            decision["decided_at"],
            decision["decided_by"],
            decision["replace"],
        )
        return bool(changed)


_SELECT_VISITOR = (
    "SELECT v.claim_id, v.origin, v.org_id, v.name, v.national_id_masked, v.contact,"
    " v.asked_at, v.asked_by, v.due_on, ans.result, ans.movement_id, ans.answered_at"
    " FROM visitors v LEFT JOIN visitor_claim_answers ans ON ans.claim_id = v.claim_id"
)
_SELECT_VISITOR_UNANSWERED = (
    "SELECT v.claim_id, v.origin, v.org_id, v.name, v.national_id_masked, v.contact,"
    " v.asked_at, v.asked_by, v.due_on, NULL AS result, NULL::uuid AS movement_id,"
    " NULL::timestamptz AS answered_at FROM visitors v"
)
_SELECT_ASKED = (
    "SELECT a.claim_id, a.host, a.name, a.id_ending, a.asked_at, a.received_at,"
    " d.result, d.candidates, d.member_id, d.movement_id, d.answered, d.decided_at,"
    " d.decided_by FROM visitor_claims_asked a"
    " LEFT JOIN visitor_claim_decisions d ON d.claim_id = a.claim_id"
)
