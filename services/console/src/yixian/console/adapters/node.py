"""What the console does in-process with the node's own credentials, as the operator's
command ``yixian`` does: authenticate keys (through the registry's view of them), write
the audit log (through the registry's ``AuditLog``), gather the node's status, browse and
retry dead letters, ask a partner for a replay, retry or discard parked outbox rows, trace
a movement and browse the node's topics. No SQL is written here: each of these is the
owning package's function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from yixian.console.domain.events import Position, first_page
from yixian.contracts import decode
from yixian.ops import dead_letters as operator_dead_letters
from yixian.ops import status as node_status
from yixian.ops.trace import Hop, NotFound, database_hops, resolve, timeline, topic_hops
from yixian.record.parked import parked_groups, parked_rows
from yixian.registry.adapters.parked import discard_parked, retry_parked
from yixian.registry.adapters.postgres import AuditLog
from yixian.runtime.apikeys import Principal, authenticate
from yixian.runtime.kafka import read_topics, topics_matching
from yixian.sync.adapters import dead_letters
from yixian.sync.adapters.store import SyncStore
from yixian.sync.config import SyncSettings
from yixian.sync.service_layer.links import request_replay

__all__ = ["EventPage", "NodeOperations", "NotFound", "TopicEvent"]


@dataclass(frozen=True, slots=True)
class TopicEvent:
    topic: str
    partition: int
    offset: int
    timestamp: int
    """The record's timestamp (ms)."""
    at: datetime
    key: str
    type: str
    event_id: str | None
    source: str | None
    subject: str | None
    trace_id: str | None
    pairseq: int | None
    data: Any
    """The event's payload (or the record's first bytes when it is no event)."""

    @property
    def position(self) -> Position:
        return self.timestamp, self.topic, self.partition, self.offset


@dataclass
class EventPage:
    events: list[TopicEvent] = field(default_factory=list)
    scanned: int = 0
    cut_short: bool = False
    """More records were there than one page scans: the page holds only what is certain
    (narrow the time or the topic to see the rest sooner)."""


class NodeOperations:
    """The node's database and Kafka, as its operator's command reaches them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: SyncSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        trace_timeout: float = 15,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.trace_timeout = trace_timeout
        """How long a trace may take before the page says so (the console's wait for a
        service)."""

    @property
    def node(self) -> str:
        return self.settings.node

    # -- who asks ---------------------------------------------------------------------------

    async def principal(self, key: str) -> Principal | None:
        """The principal of an API key (None: malformed, unknown, wrong or revoked)."""
        async with self.pool.acquire() as conn:
            return await authenticate(conn, key)

    async def audit(
        self,
        *,
        actor: str,
        role: str | None,
        action: str,
        outcome: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> None:
        """A row of the registry's audit log, for what the console did or refused itself."""
        async with self.pool.acquire() as conn:
            await AuditLog(conn).record(
                actor=actor,
                role=role,
                action=action,
                target=target,
                outcome=outcome,
                detail=detail or {},
                trace_id=trace_id,
            )

    # -- the node ---------------------------------------------------------------------------

    async def status(self) -> node_status.NodeStatus:
        """What ``yixian node status`` gathers."""
        return await node_status.gather(self.pool, self.settings)

    async def dead_letters(
        self, *, open_only: bool, before: int | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await dead_letters.dead_letters(
                conn, open_only=open_only, before=before, limit=limit
            )

    async def dead_letter(self, dead_letter_id: int) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            return await dead_letters.dead_letter(conn, dead_letter_id)

    async def retry_dead_letter(
        self, dead_letter_id: int, *, actor: str, trace_id: str | None
    ) -> str | None:
        """Apply an open dead letter again through the live consumer's applier, audited (as
        ``yixian dlq retry``): its outcome; None if no open dead letter has that id."""
        if not await operator_dead_letters.open_ids(self.pool, [dead_letter_id]):
            return None
        done = await operator_dead_letters.retry(
            self.pool, self.settings, [dead_letter_id], actor=actor, trace_id=trace_id
        )
        return done[0][1]

    async def discard_dead_letter(
        self, dead_letter_id: int, reason: str, *, actor: str, trace_id: str | None
    ) -> bool:
        """Give up on an open dead letter, its audit row in the same transaction (as
        ``yixian dlq discard``); False if no open dead letter has that id."""
        async with self.pool.acquire() as conn:
            done = await operator_dead_letters.discard(
                conn, self.settings, [dead_letter_id], actor=actor, note=reason, trace_id=trace_id
            )
        return bool(done)

    async def request_replay(
        self,
        partner: str,
        first: int,
        last: int | None,
        *,
        actor: str,
        role: str,
        trace_id: str | None,
    ) -> UUID:
        """Ask ``partner`` to publish its pair events ``first``..``last`` again; the request
        and its audit row in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            store = SyncStore(conn, self.node, self.settings.kafka.topics)
            request_id = await request_replay(
                store, partner, first, last, self.clock(), "asked by the operator (console)"
            )
            await AuditLog(conn).record(
                actor=actor,
                role=role,
                action="link.replay_request",
                target=f"link:{partner}",
                outcome="ok",
                detail={"first": first, "last": last, "request_id": str(request_id)},
                trace_id=trace_id,
            )
        return request_id

    async def parked(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The parked outbox rows, oldest first (at most ``limit``), and how many there are."""
        async with self.pool.acquire() as conn:
            rows = [dict(r) for r in await parked_rows(conn, limit)]
            total = sum(group.rows for group in await parked_groups(conn))
        return rows, total

    async def retry_parked(self, ids: list[int], actor: str) -> list[int]:
        async with self.pool.acquire() as conn:
            return await retry_parked(conn, ids, actor=actor)

    async def discard_parked(self, ids: list[int], actor: str, note: str) -> list[int]:
        async with self.pool.acquire() as conn:
            return await discard_parked(conn, ids, actor=actor, note=note)

    # -- the trail --------------------------------------------------------------------------

    async def trace(self, identifier: UUID, *, topics: bool = True) -> list[Hop]:
        """What ``yixian trace`` prints, as hops in time order with their latencies.
        NotFound: no movement, member or event of this node answers to ``identifier``."""
        async with self.pool.acquire() as conn:
            movements, _ = await resolve(conn, identifier)
            hops = await database_hops(conn, self.node, movements)
            if topics:  # bounded by what the node recorded (ADR 10)
                hops += await topic_hops(self.settings.kafka, self.node, movements, conn)
        return timeline(hops)

    async def topics(self) -> list[str]:
        """The topics the console browses: the node's local topic and every pair topic
        addressed to it."""
        kafka = self.settings.kafka
        incoming = await topics_matching(kafka, kafka.topics.incoming_pattern(self.node))
        return [kafka.topics.local(self.node), *incoming]

    async def events(
        self,
        topics: list[str],
        *,
        since: datetime,
        after: Position | None = None,
        key: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        scan: int = 20_000,
    ) -> EventPage:
        """The first ``limit`` events in time order at or after ``since`` and after the
        position ``after`` on ``topics``, whose key is ``key`` and whose type contains
        ``kind``, reading at most ``scan`` records (``domain.events``)."""
        page = EventPage()
        found: list[TopicEvent] = []
        matched: dict[tuple[str, int], int] = {}
        full: set[tuple[str, int]] = set()
        """Partitions with ``limit`` events found: nothing later in them makes the page."""
        last: dict[tuple[str, int], Position] = {}
        start = since
        if after is not None:
            start = max(since, datetime.fromtimestamp(after[0] / 1000, UTC))
        wanted_key = key.encode() if key else None
        async with read_topics(self.settings.kafka, topics, since=start) as reading:
            async for records in reading.batches():
                for record in records:
                    page.scanned += 1
                    where = (record.topic, record.partition)
                    position = (record.timestamp, record.topic, record.partition, record.offset)
                    last[where] = position
                    if where in full or (after is not None and position <= after):
                        continue
                    if wanted_key is not None and record.key != wanted_key:
                        continue
                    event = _event(record)
                    if kind and kind not in event.type:
                        continue
                    found.append(event)
                    matched[where] = matched.get(where, 0) + 1
                    if matched[where] >= limit:
                        full.add(where)
                unread = [(tp.topic, tp.partition) for tp in reading.remaining]
                if all(where in full for where in unread) or page.scanned >= scan:
                    break
            unread = [(tp.topic, tp.partition) for tp in reading.remaining]
        open_ended = [where for where in unread if where not in full]
        horizon = None
        if open_ended:
            page.cut_short = True
            nothing_read: Position = (int(start.timestamp() * 1000) - 1, "", -1, -1)
            horizon = min(last.get(where, nothing_read) for where in open_ended)
        page.events = first_page(found, lambda e: e.position, limit, horizon)
        return page


def _event(record: Any) -> TopicEvent:
    at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    key = (record.key or b"").decode(errors="replace")
    common = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
              "timestamp": record.timestamp}  # fmt: skip
    try:
        event = decode(record.value or b"")
    except ValueError as exc:
        raw = (record.value or b"")[:300].decode(errors="replace")
        return TopicEvent(**common, at=at, key=key, type="(not an event)", event_id=None,
                          source=None, subject=None, trace_id=None, pairseq=None,
                          data={"error": str(exc)[:300], "value": raw})  # fmt: skip
    return TopicEvent(
        **common,
        at=at,
        key=key,
        type=event.type,
        event_id=str(event.id),
        source=event.source_node,
        subject=event.subject,
        trace_id=event.trace_id,
        pairseq=event.pairseq,
        data=event.data.model_dump(mode="json")
        if hasattr(event.data, "model_dump")
        else event.data,
    )
