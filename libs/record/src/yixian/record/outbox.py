"""The node's transactional outbox: events committed with the change that caused them.

Every service of a node publishes only through it (registry and sync add rows; the
relay, ``yixian.record.relay``, publishes them; ADR 17).
Pair-topic events are numbered per partner by the relay, as it publishes them, so the
numbers follow publication order and no writer waits for another's commit to take a
number (ADR 12).

A row is *waiting* until the relay publishes it (``published_at``) or parks it
(``parked_at``, ``park_reason``: it cannot be published for a reason of its own); an
operator retries a parked row (back to waiting) or discards it (``discarded_at``: never
sent). Rows still to send are those neither published nor discarded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yixian.contracts import STRUCTURED_CONTENT_TYPE, Envelope, Topic, record_key, require_route
from yixian.runtime import DbConnection

CHANNEL = "yixian_outbox"
"""What the outbox's insert trigger notifies (``pg_notify``): the relay listens on it."""

MAX_RECORD_BYTES = 1_000_000
"""The largest record the relay's producer sends (its ``max_request_size``), under Kafka's
default ``max.message.bytes`` (1 MiB and 12 bytes): whoever writes a record of unbounded
input (a dead letter's copy of what came in) bounds it below this."""

_INSERT = (
    "INSERT INTO outbox (event_id, event_type, topic, destination, record_key, value,"
    " movement_id, trace_id, content_type) SELECT i, ty, t, d, k, v, m, tr, c FROM"
    " unnest($1::uuid[], $2::text[], $3::text[], $4::char(6)[], $5::bytea[], $6::bytea[],"
    " $7::uuid[], $8::char(32)[], $9::text[]) WITH ORDINALITY AS r(i, ty, t, d, k, v, m, tr, c, n)"
    " ORDER BY n"
)
"""Rows in one statement, in the order given (their ids, the order the relay sends them in):
one round trip, one execution, and one wake of the relay (the trigger fires per statement)."""


async def _insert(conn: DbConnection, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    await conn.execute(_INSERT, *(list(column) for column in zip(*rows, strict=True)))


class Outbox:
    """Events committed with the change that caused them; the relay publishes them.

    ``deferred``: rows are kept until ``flush`` writes them all in one round trip; the
    caller flushes before its transaction commits (sync does, per consumer batch).
    """

    def __init__(self, conn: DbConnection, *, deferred: bool = False) -> None:
        self.conn = conn
        self.deferred = deferred
        self._queued: list[tuple[Any, ...]] = []

    async def add(
        self, event: Envelope[Any], *, local_topic: str | None, pair: tuple[str, str] | None
    ) -> None:
        """Queue ``event`` for the node's local topic and/or (pair topic, partner); the
        relay numbers the pair topic's copy. An event on a kind of topic its type's route
        does not list (``routes.ROUTES``) is refused: ``MisroutedEvent``, nothing queued."""
        targets: list[tuple[str, str | None]] = []
        if local_topic is not None:
            require_route(event.type, Topic.LOCAL)
            targets.append((local_topic, None))
        if pair is not None:
            require_route(event.type, Topic.PAIR)
            targets.append(pair)
        value = event.encode()
        rows = [
            (
                event.id,
                event.type,
                topic,
                destination,
                record_key(event),
                value,
                event.correlationid,
                event.trace_id,
                STRUCTURED_CONTENT_TYPE,
            )
            for topic, destination in targets
        ]
        if self.deferred:
            self._queued.extend(rows)
        else:
            await _insert(self.conn, rows)

    async def flush(self) -> None:
        """Write the rows a deferred outbox holds."""
        if self._queued:
            await _insert(self.conn, self._queued)
            self._queued.clear()

    async def add_raw(
        self,
        *,
        event_id: Any,
        event_type: str,
        topic: str,
        key: bytes,
        value: bytes,
        trace_id: str,
        content_type: str,
        movement_id: Any = None,
    ) -> None:
        """Queue a record that is not a contract event (e.g. a dead letter), its value of
        ``content_type`` (the record's ``content-type`` header)."""
        await self.conn.execute(
            "INSERT INTO outbox (event_id, event_type, topic, record_key, value, movement_id,"
            " trace_id, content_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            event_id,
            event_type,
            topic,
            key,
            value,
            movement_id,
            trace_id,
            content_type,
        )

    # -- what a partner can still be sent ---------------------------------------------------

    async def requeue(
        self, partner: str, epoch: int, runs: list[tuple[int, int]]
    ) -> tuple[int, int]:
        """Put the already published pair events of ``runs`` (numbers of link ``epoch``) to
        ``partner`` back in the relay's queue; how many went back, and how many of the
        numbers can be sent at all (published or waiting; not parked, discarded or gone)."""
        await self.flush()
        row = await self.conn.fetchrow(
            "WITH wanted AS (SELECT id, published_at FROM outbox, unnest($2::bigint[],"
            " $3::bigint[]) AS r(first_seq, last_seq) WHERE destination = $1"
            " AND pairseq BETWEEN r.first_seq AND r.last_seq AND coalesce(pairepoch, 0) = $4"
            " AND (published_at IS NOT NULL"
            " OR parked_at IS NULL)),"
            " requeued AS (UPDATE outbox SET published_at = NULL FROM wanted"
            " WHERE outbox.id = wanted.id AND wanted.published_at IS NOT NULL RETURNING 1)"
            " SELECT (SELECT count(*) FROM requeued) AS requeued,"
            " (SELECT count(*) FROM wanted) AS held",
            partner,
            [first for first, _ in runs],
            [last for _, last in runs],
            epoch,
        )
        assert row is not None
        if row["requeued"]:
            await self.conn.execute("SELECT pg_notify($1, '')", CHANNEL)  # wake the relay
        return int(row["requeued"]), int(row["held"])

    async def sent(self, partner: str) -> tuple[int | None, int]:
        """The link epoch this node numbers its events to ``partner`` in (None: none sent
        yet, the relay starts one with the first) and the last number sent in it."""
        row = await self.conn.fetchrow(
            "SELECT epoch, last_sequence FROM pair_sequences WHERE destination = $1", partner
        )
        return (None, 0) if row is None else (int(row["epoch"]), int(row["last_sequence"]))

    async def last_added(self, partner: str) -> datetime | None:
        """When the last row to ``partner`` was committed (an idle link gets a heartbeat)."""
        value: datetime | None = await self.conn.fetchval(
            "SELECT max(created_at) FROM outbox WHERE destination = $1", partner
        )
        return value

    async def backlog(self, partner: str | None = None) -> int:
        """Rows still to send (to ``partner``, or to anyone)."""
        await self.flush()
        value = await self.conn.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND discarded_at IS NULL"
            " AND ($1::char(6) IS NULL OR destination = $1)",
            partner,
        )
        return int(value)
