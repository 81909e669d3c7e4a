"""The node's transactional outbox: events committed with the change that caused them.

Every service of a node publishes only through it (registry and sync insert; the
registry's relay publishes). Pair-topic events are numbered per partner here, in the
inserting transaction, so numbering follows commit order.
"""

from __future__ import annotations

from typing import Any

from yixian.contracts import Envelope, record_key

from .resources import DbConnection


class Outbox:
    """Events committed with the change that caused them; the relay publishes them."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def _next_sequence(self, destination: str) -> int:
        value: int = await self.conn.fetchval(
            "INSERT INTO pair_sequences (destination, last_sequence) VALUES ($1, 1)"
            " ON CONFLICT (destination) DO UPDATE"
            " SET last_sequence = pair_sequences.last_sequence + 1 RETURNING last_sequence",
            destination,
        )
        return value

    async def add(
        self, event: Envelope[Any], *, local_topic: str | None, pair: tuple[str, str] | None
    ) -> None:
        """Queue ``event`` for the node's local topic and/or (pair topic, partner)."""
        rows: list[tuple[str, str | None, int | None, bytes]] = []
        if local_topic is not None:
            rows.append((local_topic, None, None, event.encode()))
        if pair is not None:
            topic, partner = pair
            seq = await self._next_sequence(partner)
            rows.append((topic, partner, seq, event.with_pairseq(seq).encode()))
        await self.conn.executemany(
            "INSERT INTO outbox (event_id, event_type, topic, destination, pairseq, record_key,"
            " value, movement_id, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    event.id,
                    event.type,
                    topic,
                    destination,
                    seq,
                    record_key(event),
                    value,
                    event.correlationid,
                    event.trace_id,
                )
                for topic, destination, seq, value in rows
            ],
        )

    async def add_raw(
        self,
        *,
        event_id: Any,
        event_type: str,
        topic: str,
        key: bytes,
        value: bytes,
        trace_id: str,
        movement_id: Any = None,
    ) -> None:
        """Queue a record that is not a contract event (e.g. a dead letter)."""
        await self.conn.execute(
            "INSERT INTO outbox (event_id, event_type, topic, record_key, value, movement_id,"
            " trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            event_id,
            event_type,
            topic,
            key,
            value,
            movement_id,
            trace_id,
        )
