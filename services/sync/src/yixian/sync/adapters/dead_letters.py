"""The dead letters as an operator browses them: a page at a time, one with its record,
and giving up on one (``discard_dead_letter``, the store's rule); a retry is the applier's
(``Applier.retry_dead_letter``).

A dead letter is open (``OPEN_DEAD_LETTERS``) until a retry applied it or the operator
discarded it: never retried, or retried and refused again.
"""

from __future__ import annotations

from typing import Any

from yixian.runtime import DbConnection

from .store import OPEN_DEAD_LETTERS, SyncStore

_OPEN = f"({OPEN_DEAD_LETTERS})"
_COLUMNS = (
    'id, topic, partition, "offset", reason, errors, received_at, retried_at, retry_outcome,'
    " discarded_at, discard_reason, octet_length(value) AS bytes"
)


async def dead_letters(
    conn: DbConnection, *, open_only: bool = True, before: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Newest first: at most ``limit`` dead letters older than ``before`` (an id)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters"  # noqa: S608 (fixed columns)
        f" WHERE (NOT $1 OR {_OPEN}) AND ($2::bigint IS NULL OR id < $2)"
        " ORDER BY id DESC LIMIT $3",
        open_only,
        before,
        limit,
    )
    return [dict(r) for r in rows]


async def dead_letter(conn: DbConnection, dead_letter_id: int) -> dict[str, Any] | None:
    """One dead letter with its record (``record_key``, ``value`` as received) and whether
    it is open."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, record_key, value, {_OPEN} AS open"  # noqa: S608 (fixed)
        " FROM dead_letters WHERE id = $1",
        dead_letter_id,
    )
    return dict(row) if row is not None else None


async def discard_dead_letter(
    conn: DbConnection, store_of: SyncStore, dead_letter_id: int, reason: str
) -> bool:
    """Close an open dead letter without applying it, with why; False if none is open."""
    async with conn.transaction():
        return bool(await store_of.discard_dead_letters([dead_letter_id], reason))
