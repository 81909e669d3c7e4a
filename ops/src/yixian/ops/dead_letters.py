"""The operator's two ways out for a dead letter, each written to the registry's audit log:
``retry`` applies it again through the live consumer's applier (after a fix on either
side); ``discard`` gives up on it, keeping the row, marked, never applied.

A discarded dead letter that carried a group the partner still owns is not lost for the
replica: the partner's next version of the group, or a digest (``yixian partner
anti-entropy``), brings the owner's copy.
"""

from __future__ import annotations

import asyncpg

from yixian.registry.adapters.postgres import AuditLog
from yixian.runtime import DbConnection
from yixian.sync.adapters.store import OPEN_DEAD_LETTERS, SyncStore
from yixian.sync.bootstrap import build_applier, sync_config
from yixian.sync.config import SyncSettings


async def open_ids(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int] | None) -> list[int]:
    """The open dead letters among ``ids`` (``None``: all of them), in order."""
    rows = await conn.fetch(
        f"SELECT id FROM dead_letters WHERE {OPEN_DEAD_LETTERS}"  # noqa: S608 (a constant)
        " AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) ORDER BY id",
        ids,
    )
    return [row["id"] for row in rows]


async def retry(
    pool: asyncpg.Pool,
    settings: SyncSettings,
    ids: list[int],
    *,
    actor: str,
    trace_id: str | None = None,
) -> list[tuple[int, str]]:
    """Apply each dead letter again; each one's outcome (``applied``, ``dead_letter``, ...).
    ``trace_id``: the trace of the request that asked (the console's), for the audit row."""
    applier = build_applier(pool, sync_config(settings))
    results = []
    for dead_id in ids:
        outcome = await applier.retry_dead_letter(dead_id)
        async with pool.acquire() as conn:
            await AuditLog(conn).record(
                actor=actor,
                role="operator",
                action="dead_letter.retry",
                target=f"dead_letter:{dead_id}",
                outcome="ok",
                detail={"retry_outcome": outcome},
                trace_id=trace_id,
            )
        results.append((dead_id, outcome))
    return results


async def discard(
    conn: DbConnection,
    settings: SyncSettings,
    ids: list[int],
    *,
    actor: str,
    note: str,
    trace_id: str | None = None,
) -> list[int]:
    """Give up on open dead letters, with why, each with its audit row in the same
    transaction; the ids discarded (others were not open)."""
    async with conn.transaction():
        store = SyncStore(conn, settings.node, settings.kafka.topics)
        rows = await store.discard_dead_letters(ids, note)
        audit = AuditLog(conn)
        for row in rows:
            await audit.record(
                actor=actor,
                role="operator",
                action="dead_letter.discard",
                target=f"dead_letter:{row['id']}",
                outcome="ok",
                detail={
                    "topic": row["topic"],
                    "partition": row["partition"],
                    "offset": row["offset"],
                    "refused_because": row["reason"],
                    "note": note,
                },
                trace_id=trace_id,
            )
    return [row["id"] for row in rows]
