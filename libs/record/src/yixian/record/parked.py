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
from uuid import UUID

import asyncpg

from yixian.runtime import DbConnection

from .outbox import CHANNEL

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


@dataclass(frozen=True, slots=True)
class ParkedChange:
    """A parked row an operator retried or discarded: what the audit log keeps of it."""

    outbox_id: int
    event_id: UUID
    event_type: str
    topic: str
    destination: str | None
    pairseq: int | None
    movement_id: UUID | None
    park_reason: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> ParkedChange:
        value = bytes(row["value"])
        return cls(
            row["id"],
            row["event_id"],
            row["event_type"],
            row["topic"],
            row["destination"],
            row["pairseq"],
            row["movement_id"],
            row["park_reason"],
            len(value),
            hashlib.sha256(value).hexdigest(),
        )

    def detail(self) -> dict[str, Any]:
        return {
            "outbox_id": self.outbox_id,
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "topic": self.topic,
            "destination": self.destination,
            "pairseq": self.pairseq,
            "park_reason": self.park_reason,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


async def retry_parked(conn: DbConnection, ids: list[int] | None) -> list[ParkedChange]:
    """Put parked rows (``None``: all of them) back in the relay's queue and wake it; the
    rows done. Call it inside the transaction that audits the change."""
    rows = await conn.fetch(
        "WITH parked AS (SELECT id, park_reason FROM parked_outbox"
        " WHERE $1::bigint[] IS NULL OR id = ANY($1::bigint[]) FOR UPDATE)"
        " UPDATE outbox o SET parked_at = NULL, park_reason = NULL FROM parked"
        " WHERE o.id = parked.id RETURNING o.id, o.event_id, o.event_type, o.topic,"
        " o.destination, o.pairseq, o.movement_id, o.value, parked.park_reason",
        ids,
    )
    if rows:
        await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return [ParkedChange.of(r) for r in rows]


async def discard_parked(conn: DbConnection, ids: list[int]) -> list[ParkedChange]:
    """Give up on parked rows: they stay in the outbox, marked, and are never sent. Call it
    inside the transaction that audits the change."""
    rows = await conn.fetch(
        "UPDATE parked_outbox SET discarded_at = clock_timestamp()"
        " WHERE id = ANY($1::bigint[]) RETURNING id, event_id, event_type, topic,"
        " destination, pairseq, movement_id, value, park_reason",
        ids,
    )
    return [ParkedChange.of(r) for r in rows]
