"""A node's database as a large county has it: hundreds of thousands of movements, members
and audit rows, written straight into the registry's and the record's tables with
``generate_series`` (one statement a table, no Python per row), so the console's screens
can be timed on a realistic size in seconds of filling.

The spread: the node's own members away (three in five movements) over forty branches in
four townships, every origin status and host status, departures over the last three years;
visitors from four partner nodes (two in five) at every step of their arrival, unplaced,
placed, checked in, forwarded, lost; closed movements of members who came back and left
again; dues paid for some months, reports, lost contact, suspensions, transfers; one audit
row a movement. Every group is a valid contract model (the registry reads them back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from yixian.runtime import DbConnection

PARTNERS = ("110105", "350300", "110114", "320106")
"""The partner nodes of the filled node (Chaoyang, Putian, Changping, Nanjing Gulou)."""
TOWNSHIPS = 4
BRANCHES_PER_TOWNSHIP = 10
AUDIT_KEYS = 8
"""The audit log's actors: this many API keys, by id."""


@dataclass(frozen=True)
class County:
    """What the fill made: the node's organizations and how much of everything."""

    root_id: UUID
    townships: list[UUID]
    branches: list[UUID]
    members: int
    origin_movements: int
    host_movements: int
    audit_rows: int

    @property
    def movements(self) -> int:
        return self.origin_movements + self.host_movements


def _statements() -> dict[str, str]:
    """The fill's statements (``county.sql``), by name."""
    text = Path(__file__).with_name("county.sql").read_text(encoding="utf-8")
    parts = (part.split("\n", 1) for part in text.split("-- statement:")[1:])
    return {name.strip(): sql.strip() for name, sql in parts}


_STATEMENTS = _statements()


async def fill(conn: DbConnection, node: str, root_id: UUID, movements: int) -> County:
    """Fill an initialised node (its root organization made) with ``movements`` movements,
    three in five of them its own members', and everything around them; then VACUUM."""
    townships: list[UUID] = []
    branches: list[UUID] = []
    names: list[str] = []
    rows = await conn.fetch(
        "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path)"
        " SELECT md5('township' || t)::uuid, $1, '第' || t || '乡镇党委', 'committee', $2,"
        " $3 || md5('township' || t)::uuid || '/' FROM generate_series(1, $4) t"
        " RETURNING org_id, path",
        root_id, node, f"/{root_id}/", TOWNSHIPS,
    )  # fmt: skip
    townships = [r["org_id"] for r in rows]
    for township in rows:
        added = await conn.fetch(
            "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path)"
            " SELECT md5($1::uuid::text || b)::uuid, $1::uuid, $5 || '第' || b || '党支部',"
            " 'branch', $2, $3 || md5($1::uuid::text || b)::uuid || '/'"
            " FROM generate_series(1, $4) b"
            " RETURNING org_id, name",
            township["org_id"], node, township["path"], BRANCHES_PER_TOWNSHIP,
            f"乡镇{len(branches) // BRANCHES_PER_TOWNSHIP + 1}",
        )  # fmt: skip
        branches += [r["org_id"] for r in added]
        names += [r["name"] for r in added]
    origin_movements = movements * 3 // 5
    host_movements = movements - origin_movements
    members = max(1, origin_movements * 5 // 6)
    partners = list(PARTNERS)
    await conn.execute(_STATEMENTS["functions"])
    await conn.execute(_STATEMENTS["members"], branches, members)
    await conn.execute(
        _STATEMENTS["origin side"], branches, names, origin_movements, members, partners, node
    )
    await conn.execute(_STATEMENTS["host side"], branches, names, host_movements, node, partners)
    await conn.execute(_STATEMENTS["history"])
    keys = [str(UUID(int=i + 1)) for i in range(AUDIT_KEYS)]
    await conn.execute(_STATEMENTS["audit"], movements, origin_movements, keys)
    # what autovacuum does on a live node: statistics, and the visibility map that lets the
    # queues and reports read their indexes alone
    await conn.execute("VACUUM (ANALYZE) movements, members, audit_log, movement_history")
    return County(
        root_id, townships, branches, members, origin_movements, host_movements, movements
    )
