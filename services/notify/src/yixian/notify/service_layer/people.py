"""Who is present in an organization's area: its own members who are not away, and the
visiting members checked in there (read from the node's records)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from yixian.runtime import DbConnection

OPEN = ["registered", "transfer_requested"]


async def present_in_area(conn: DbConnection, node: str, org_id: UUID) -> list[dict[str, Any]]:
    path = await conn.fetchval("SELECT path FROM organizations WHERE org_id = $1", org_id)
    if path is None:
        return []
    local = await conn.fetch(
        "SELECT mb.member_id, mb.name, mb.phone, mb.email FROM members mb"
        " JOIN organizations o ON o.org_id = mb.org_id WHERE o.path LIKE $1 || '%'"
        " AND NOT EXISTS (SELECT 1 FROM movements mv WHERE mv.member_id = mb.member_id"
        " AND mv.origin = $2 AND mv.origin_status = ANY($3::text[]))",
        path,
        node,
        OPEN,
    )
    visiting = await conn.fetch(
        "SELECT mv.origin_group FROM movements mv JOIN organizations o ON o.org_id = mv.host_org_id"
        " WHERE mv.host = $1 AND o.path LIKE $2 || '%' AND mv.host_status = 'checked_in'"
        " AND mv.origin_status = ANY($3::text[])",
        node,
        path,
        OPEN,
    )
    people = [dict(r) for r in local]
    for row in visiting:
        group = row["origin_group"]
        people.append(
            {
                "member_id": UUID(group["member"]["member_id"]),
                "name": group["member"]["name"],
                "phone": group["contact"].get("phone"),
                "email": group["contact"].get("email"),
            }
        )
    return people
