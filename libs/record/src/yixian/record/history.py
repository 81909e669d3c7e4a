"""A movement's history and its participations: the only SQL that writes them.

Both services call these, each for its own rows: group versions (the registry for this
node's group, sync for the partner's) and participations (the registry where they are
recorded, sync where they are received). Both writes are keyed, so a repeat is a no-op."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from yixian.contracts import ActivityKind, OrganizationRef
from yixian.runtime import DbConnection


class ParticipationLike(Protocol):
    @property
    def participation_id(self) -> UUID: ...
    @property
    def movement_id(self) -> UUID: ...
    @property
    def host_org(self) -> OrganizationRef: ...
    @property
    def activity_id(self) -> UUID | None: ...
    @property
    def kind(self) -> ActivityKind: ...
    @property
    def title(self) -> str: ...
    @property
    def attended_at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def recorded_by(self) -> str: ...


async def add_participation(conn: DbConnection, p: ParticipationLike) -> bool:
    """Record an attendance once (keyed by its id); False if it was there already."""
    inserted = await conn.fetchval(
        "INSERT INTO participations (participation_id, movement_id, host_org_id, host_org_name,"
        " activity_id, kind, title, attended_at, recorded_at, recorded_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT DO NOTHING RETURNING true",
        p.participation_id,
        p.movement_id,
        p.host_org.org_id,
        p.host_org.name,
        p.activity_id,
        p.kind.value,
        p.title,
        p.attended_at,
        p.recorded_at,
        p.recorded_by,
    )
    return bool(inserted)


async def add_participations(conn: DbConnection, ps: Sequence[ParticipationLike]) -> None:
    """Record many attendances in one statement, each once (keyed by its id), as
    ``add_participation`` does one."""
    if not ps:
        return
    await conn.execute(
        "INSERT INTO participations (participation_id, movement_id, host_org_id, host_org_name,"
        " activity_id, kind, title, attended_at, recorded_at, recorded_by)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[],"
        " $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[])"
        " ON CONFLICT DO NOTHING",
        [p.participation_id for p in ps],
        [p.movement_id for p in ps],
        [p.host_org.org_id for p in ps],
        [p.host_org.name for p in ps],
        [p.activity_id for p in ps],
        [p.kind.value for p in ps],
        [p.title for p in ps],
        [p.attended_at for p in ps],
        [p.recorded_at for p in ps],
        [p.recorded_by for p in ps],
    )


HISTORY_INSERT = (
    "INSERT INTO movement_history (movement_id, group_name, version, snapshot)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
)


def with_history(change: str, group: str) -> str:
    """One statement for ``change`` and the history version it makes (kept once per
    version), whose answer is how many movements ``change`` wrote: ``change`` writes one
    group of ``movements`` and returns the rows' ``movement_id``, the group's ``version``
    and its ``snapshot``. One round trip instead of two."""
    if group not in ("origin", "host"):
        raise ValueError(f"a movement has no group {group!r}")
    return (
        f"WITH changed AS ({change}), kept AS (INSERT INTO movement_history (movement_id,"  # noqa: S608 - a group's name, checked
        f" group_name, version, snapshot) SELECT movement_id, '{group}', version, snapshot"
        " FROM changed ON CONFLICT DO NOTHING) SELECT count(*) FROM changed"
    )


async def add_history(
    conn: DbConnection, movement_id: UUID, group: str, version: int, snapshot: dict[str, Any]
) -> None:
    """Keep a version of a group of a movement (once per version)."""
    await conn.execute(
        HISTORY_INSERT,
        movement_id,
        group,
        version,
        snapshot,
    )


async def add_history_rows(
    conn: DbConnection, rows: Sequence[tuple[UUID, str, int, bytes]]
) -> None:
    """Keep many versions in one statement, each (movement, group, version) once, the first
    given of each kept: ``add_history``'s rows, their snapshots as UTF-8 JSON."""
    first: dict[tuple[UUID, str, int], bytes] = {}
    for movement_id, group, version, snapshot in rows:
        first.setdefault((movement_id, group, version), snapshot)
    if not first:
        return
    await conn.execute(
        "INSERT INTO movement_history (movement_id, group_name, version, snapshot)"
        " SELECT m, g, v, convert_from(s, 'UTF8')::jsonb FROM unnest($1::uuid[], $2::text[],"
        " $3::integer[], $4::bytea[]) AS u(m, g, v, s) WHERE NOT EXISTS (SELECT FROM"
        " movement_history h WHERE h.movement_id = u.m AND h.group_name = u.g"
        " AND h.version = u.v) ON CONFLICT DO NOTHING",  # kept already: not parsed
        [k[0] for k in first],
        [k[1] for k in first],
        [k[2] for k in first],
        list(first.values()),
    )


async def forget_received_participations(conn: DbConnection, *, origin: str, host: str) -> None:
    """Drop the attendances ``host`` recorded for ``origin``'s movements, before a rebuild
    at the origin receives them again from the host's pair topic."""
    await conn.execute(
        "DELETE FROM participations p USING movements m WHERE p.movement_id = m.movement_id"
        " AND m.origin = $1 AND m.host = $2",
        origin,
        host,
    )
