"""The operator's two ways out for a parked outbox row, each audited in the registry's
audit log in the same transaction as the change (``yixian.record.parked`` makes it)."""

from __future__ import annotations

from yixian.record import parked
from yixian.runtime import DbConnection

from .postgres import AuditLog


async def retry_parked(conn: DbConnection, ids: list[int] | None, *, actor: str) -> list[int]:
    """Put parked rows (``None``: all of them) back in the relay's queue; the ids done."""
    async with conn.transaction():
        changes = await parked.retry_parked(conn, ids)
        await _audit(conn, changes, actor=actor, action="outbox.retry", note=None)
    return [c.outbox_id for c in changes]


async def discard_parked(conn: DbConnection, ids: list[int], *, actor: str, note: str) -> list[int]:
    """Give up on parked rows: they stay in the outbox, marked, and are never sent."""
    async with conn.transaction():
        changes = await parked.discard_parked(conn, ids)
        await _audit(conn, changes, actor=actor, action="outbox.discard", note=note)
    return [c.outbox_id for c in changes]


async def _audit(
    conn: DbConnection,
    changes: list[parked.ParkedChange],
    *,
    actor: str,
    action: str,
    note: str | None,
) -> None:
    audit = AuditLog(conn)
    for change in changes:
        await audit.record(
            actor=actor,
            role="operator",
            action=action,
            target=str(change.movement_id or change.event_id),
            outcome="ok",
            detail=change.detail() | ({"note": note} if note is not None else {}),
            trace_id=None,
        )
