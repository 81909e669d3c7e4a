"""Outbox rows the relay parked: what it cannot publish, why, and the operator's two ways
out, each audited.

The relay parks a row when the broker will never take it as it is (``PARK_REASONS``),
instead of stopping at it: every other row, to every topic, keeps flowing. A parked row
keeps its pair number; retried, it is sent with that number; discarded, it leaves a gap
at the partner that the digest settles (ADR 15).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from yixian.runtime import DbConnection

from .postgres import AuditLog

PARK_REASONS = {
    "too_large": "the record is larger than the producer or the topic accepts",
    "not_authorized": "the node's Kafka principal may not write to the topic",
    "unknown_topic": "the broker has no such topic (or the name is not a valid one)",
}
"""Why a row is parked, and what the operator reads about it."""


@dataclass(frozen=True, slots=True)
class ParkedGroup:
    """The parked rows of one topic for one reason."""

    topic: str
    reason: str
    rows: int
    since: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "reason": self.reason,
            "rows": self.rows,
            "since": self.since.isoformat(),
        }

    def note(self) -> str:
        """One line for ``/readyz``."""
        return f"{self.rows} outbox rows to {self.topic} parked: {self.reason}"


async def parked_groups(conn: DbConnection | asyncpg.Pool) -> list[ParkedGroup]:
    """Parked rows counted by topic and reason."""
    rows = await conn.fetch(
        "SELECT topic, park_reason, count(*) AS rows, min(parked_at) AS since"
        " FROM parked_outbox GROUP BY topic, park_reason ORDER BY topic, park_reason"
    )
    return [ParkedGroup(r["topic"], r["park_reason"], r["rows"], r["since"]) for r in rows]


async def parked_rows(conn: DbConnection, limit: int = 1000) -> Sequence[asyncpg.Record]:
    """The parked rows themselves, oldest first."""
    return await conn.fetch(
        "SELECT id, event_id, event_type, topic, destination, pairseq, movement_id,"
        " length(value) AS bytes, created_at, parked_at, park_reason"
        " FROM parked_outbox ORDER BY id LIMIT $1",
        limit,
    )


async def retry_parked(conn: DbConnection, ids: list[int] | None, *, actor: str) -> list[int]:
    """Put parked rows (``None``: all of them) back in the relay's queue; the ids done."""
    async with conn.transaction():
        rows = await conn.fetch(
            "WITH parked AS (SELECT id, park_reason FROM parked_outbox"
            " WHERE $1::bigint[] IS NULL OR id = ANY($1::bigint[]) FOR UPDATE)"
            " UPDATE outbox o SET parked_at = NULL, park_reason = NULL FROM parked"
            " WHERE o.id = parked.id RETURNING o.id, o.event_id, o.event_type, o.topic,"
            " o.destination, o.pairseq, o.movement_id, o.value, parked.park_reason",
            ids,
        )
        await _audit(conn, rows, actor=actor, action="outbox.retry", note=None)
        if rows:
            await conn.execute("SELECT pg_notify('yixian_outbox', '')")  # wake the relay
    return [r["id"] for r in rows]


async def discard_parked(conn: DbConnection, ids: list[int], *, actor: str, note: str) -> list[int]:
    """Give up on parked rows: they stay in the outbox, marked, and are never sent."""
    async with conn.transaction():
        rows = await conn.fetch(
            "UPDATE parked_outbox SET discarded_at = clock_timestamp()"
            " WHERE id = ANY($1::bigint[]) RETURNING id, event_id, event_type, topic,"
            " destination, pairseq, movement_id, value, park_reason",
            ids,
        )
        await _audit(conn, rows, actor=actor, action="outbox.discard", note=note)
    return [r["id"] for r in rows]


async def _audit(
    conn: DbConnection, rows: Sequence[asyncpg.Record], *, actor: str, action: str, note: str | None
) -> None:
    audit = AuditLog(conn)
    for r in rows:
        value = bytes(r["value"])
        await audit.record(
            actor=actor,
            role="operator",
            action=action,
            target=str(r["movement_id"] or r["event_id"]),
            outcome="ok",
            detail={
                "outbox_id": r["id"],
                "event_id": str(r["event_id"]),
                "event_type": r["event_type"],
                "topic": r["topic"],
                "destination": r["destination"],
                "pairseq": r["pairseq"],
                "park_reason": r["park_reason"],
                "bytes": len(value),
                "sha256": hashlib.sha256(value).hexdigest(),
                **({"note": note} if note is not None else {}),
            },
            trace_id=None,
        )
