"""Who is present in an organization's area, local or visiting: read from the registry's
view ``people_present``, which holds the rule for the present list and the invitations
alike (the registry's migration 0006)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from yixian.runtime import DbConnection


async def present_in_area(conn: DbConnection, org_id: UUID) -> list[dict[str, Any]]:
    path = await conn.fetchval("SELECT path FROM organizations WHERE org_id = $1", org_id)
    if path is None:
        return []
    rows = await conn.fetch(
        "SELECT member_id, name, phone, email FROM people_present"
        " WHERE org_path LIKE $1 || '%' ORDER BY presence, name, member_id",
        path,
    )
    return [dict(r) for r in rows]
