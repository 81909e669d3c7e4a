"""The timeline of a movement (or of a member's movements, or of one event) as one node
sees it: its own database, and the pair topics its principal may read.

Each hop names the node, the service, the step, its outcome and when it happened; the
latency is the time since the hop before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from yixian.contracts import decode
from yixian.runtime import DbConnection
from yixian.runtime.kafka import read_topics, topics_matching
from yixian.runtime.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Hop:
    at: datetime
    node: str
    service: str
    step: str
    outcome: str
    detail: str
    event_id: str | None = None
    trace_id: str | None = None
    latency_ms: float | None = None
    via: str = "database"
    """Where this node learnt of the hop: its own ``database``, or a partner's ``topic``."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"at": self.at.isoformat()}


class NotFound(LookupError):
    """Nothing on this node answers to the identifier."""


def _kind(event_type: str) -> str:
    """``cn.yixian.movement.origin_group_changed.v1`` → ``origin_group_changed``."""
    parts = event_type.split(".")
    return parts[-2] if len(parts) >= 2 else event_type


async def resolve(conn: DbConnection, identifier: UUID) -> tuple[set[UUID], UUID | None]:
    """The movements the identifier stands for, and the event id if it is one."""
    if await conn.fetchval("SELECT 1 FROM movements WHERE movement_id = $1", identifier):
        return {identifier}, None
    rows = await conn.fetch("SELECT movement_id FROM movements WHERE member_id = $1", identifier)
    if rows:
        return {r["movement_id"] for r in rows}, None
    for sql in (
        "SELECT movement_id FROM outbox WHERE event_id = $1",
        "SELECT movement_id FROM inbox WHERE event_id = $1",
    ):
        found = await conn.fetchval(sql, identifier)
        if found is not None:
            return {found}, identifier
    raise NotFound(f"{identifier} is no movement, member or event known to this node")


def _unsent(row: Any) -> str:
    if row["discarded_at"] is not None:
        return f"discarded ({row['park_reason']})"
    return "waiting" if row["park_reason"] is None else f"parked ({row['park_reason']})"


async def database_hops(conn: DbConnection, node: str, movements: set[UUID]) -> list[Hop]:
    ids = list(movements)
    texts = [str(m) for m in ids]
    hops: list[Hop] = []
    for r in await conn.fetch(
        "SELECT at, actor, role, action, outcome, detail, trace_id FROM audit_log"
        " WHERE target = ANY($1::text[]) ORDER BY id",
        texts,
    ):
        hops.append(
            Hop(r["at"], node, "registry", f"commit {r['action']}", r["outcome"],
                f"by {r['actor']} ({r['role'] or '-'})", trace_id=_trace(r["trace_id"]))
        )  # fmt: skip
    for r in await conn.fetch(
        "SELECT event_id, event_type, topic, pairseq, created_at, published_at, trace_id,"
        " park_reason, discarded_at FROM outbox WHERE movement_id = ANY($1::uuid[]) ORDER BY id",
        ids,
    ):
        where = f"{r['topic']} #{r['pairseq']}" if r["pairseq"] else r["topic"]
        if r["published_at"] is None:
            hops.append(
                Hop(r["created_at"], node, "relay", f"publish {_kind(r['event_type'])}",
                    _unsent(r), f"to {where}", str(r["event_id"]), _trace(r["trace_id"]))
            )  # fmt: skip
        else:
            hops.append(
                Hop(r["published_at"], node, "relay", f"publish {_kind(r['event_type'])}",
                    "ok", f"to {where}", str(r["event_id"]), _trace(r["trace_id"]))
            )  # fmt: skip
    for r in await conn.fetch(
        "SELECT source, event_id, event_type, pairseq, outcome, received_at, trace_id FROM inbox"
        " WHERE movement_id = ANY($1::uuid[])",
        ids,
    ):
        hops.append(
            Hop(r["received_at"], node, "sync", f"apply {_kind(r['event_type'])}", r["outcome"],
                f"from {r['source']} #{r['pairseq']}", str(r["event_id"]), _trace(r["trace_id"]))
        )  # fmt: skip
    if await conn.fetchval("SELECT to_regclass('notices') IS NOT NULL"):
        for r in await conn.fetch(
            "SELECT reason, recipient, channel, status, attempts, created_at, sent_at, trace_id,"
            " last_error FROM notices WHERE movement_id = ANY($1::uuid[])",
            ids,
        ):
            at = r["sent_at"] or r["created_at"]
            detail = f"to {r['recipient']} via {r['channel']} after {r['attempts']} attempt(s)"
            if r["last_error"] and r["status"] != "sent":
                detail += f": {r['last_error']}"
            hops.append(
                Hop(at, node, "notify", f"notice {r['reason']}", r["status"], detail,
                    trace_id=_trace(r["trace_id"]))
            )  # fmt: skip
    return hops


async def topic_hops(kafka: KafkaSettings, node: str, movements: set[UUID]) -> list[Hop]:
    """What the partners published about the movements on the pair topics to ``node``."""
    keys = {str(m).encode() for m in movements}
    topics = await topics_matching(kafka, kafka.topics.incoming_pattern(node))
    hops: list[Hop] = []
    async with read_topics(kafka, topics) as reading:
        async for records in reading.batches():
            for r in records:
                if r.key in keys:
                    hops.extend(_record_hops(r.value or b"", r.timestamp, r.topic))
    return hops


def _record_hops(value: bytes, timestamp_ms: int, topic: str) -> Iterable[Hop]:
    try:
        event = decode(value)
        source = event.source_node
    except ValueError:  # malformed or unknown: sync's dead letters tell that story
        return []
    kind, event_id, trace = _kind(event.type), str(event.id), event.trace_id
    return [
        Hop(event.time, source, "registry", f"commit {kind}", "ok", "as the event says",
            event_id, trace, via="topic"),
        Hop(datetime.fromtimestamp(timestamp_ms / 1000, UTC), source, "relay", f"publish {kind}",
            "ok", f"to {topic} #{event.pairseq}", event_id, trace, via="topic"),
    ]  # fmt: skip


def _trace(value: str | None) -> str | None:
    return value if value and set(value) != {"0"} else None


def merge(hops: Iterable[Hop]) -> list[Hop]:
    """Several nodes' traces as one: what a partner's topic told about a node gives way to
    that node's own record of it."""
    hops = list(hops)
    own = {h.node for h in hops if h.via == "database"}
    return [h for h in hops if h.via == "database" or h.node not in own]


def timeline(hops: Sequence[Hop]) -> list[Hop]:
    """Hops in time order, each with the latency since the one before; repeats dropped."""
    seen: set[tuple[Any, ...]] = set()
    ordered: list[Hop] = []
    previous: datetime | None = None
    for hop in sorted(hops, key=lambda h: (h.at, h.node, h.service)):
        identity = (hop.node, hop.service, hop.step, hop.event_id, hop.detail)
        if hop.event_id is not None and identity in seen:
            continue
        seen.add(identity)
        latency = (hop.at - previous).total_seconds() * 1000 if previous else None
        ordered.append(replace(hop, latency_ms=latency))
        previous = hop.at
    return ordered


def render(hops: Sequence[Hop]) -> list[str]:
    lines = []
    for hop in hops:
        latency = f"+{hop.latency_ms:8.0f} ms" if hop.latency_ms is not None else " " * 12
        lines.append(
            f"{hop.at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} {latency}  "
            f"{hop.node} {hop.service:<8} {hop.step:<34} {hop.outcome:<10} {hop.detail}"
        )
    return lines
