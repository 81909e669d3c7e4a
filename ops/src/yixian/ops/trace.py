"""The timeline of a movement (or of a member's movements, or of one event) as one node
sees it: its own database, and the pair topics its principal may read.

Each hop names the node, the service, the step, its outcome and when it happened; the
latency is the time since the hop before it.

What the partners published about a movement is read from the incoming pair topics, but
not from their start: the cost of a trace is bounded by what the node has recorded about
the movement and by what sync has not read yet, never by the topics' history
(``topic_hops`` with a database connection). Two kinds of record are read:

- **the records the node says it received**: sync's ``inbox`` keeps the topic, partition
  and offset of every event it took in, by the movement it concerns, and ``dead_letters``
  those of every record it refused, with the record's key. These positions are fetched
  one by one (``read_records``);
- **the tail sync has not read**: per partition, from the lower of sync's committed offset
  and one past the highest offset the database records there, to the end
  (``read_topics`` from those offsets), filtered by key as before.

Why this finds every record the full read from the start found: a record of an incoming
pair topic whose key is the movement's id is either in the tail, or sync has read it
(its consumer commits only after the batch's transaction committed, and the tail starts
no later than one past what the database knows). A record sync has read is

1. an event it took in: in the inbox at its position (``movement_id`` is the event's
   correlation id, which is also the key the partner's relay gave it);
2. a record it refused (bytes that are not an event, a broken schema, a forged source, a
   number or epoch out of reach, anything it could not apply): in ``dead_letters`` at its
   position, with its key;
3. a second copy of an event it had taken in (a replay, a relay's retry): the same event
   id, so the same hops as the copy in 1, which ``timeline`` keeps once; or
4. an event of a type this version does not know: in the inbox without a movement, and
   the full read could not decode it either.

Nothing the full read could show is lost with the history: pair topics are kept for ever
(ADR 4). A topic given a retention anyway, or a partition deleted, loses records for
both reads alike; the bounded read says how many of the positions the database names
the cluster no longer has (``TopicHops.missing``). A database restored from a backup
knows less than sync's committed offsets: the tail then starts where the database's
knowledge ends, and is as long as what the backup lacks.

Without a database connection ``topic_hops`` reads every record from the start: the
way it was done before, kept for a caller with only the cluster at hand, and as the
benchmark's same-run peer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from yixian.contracts import decode, movement_key
from yixian.runtime import DbConnection
from yixian.runtime.kafka import (
    Position,
    TopicPartition,
    committed_offsets,
    partitions_matching,
    read_records,
    read_topics,
)
from yixian.runtime.settings import KafkaSettings

SYNC = "sync"
"""The service whose consumer group reads the incoming pair topics."""


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
    for r in await conn.fetch(
        'SELECT topic, partition, "offset", value, reason, received_at, retried_at,'
        " retry_outcome FROM dead_letters WHERE record_key = ANY($1::bytea[]) ORDER BY id",
        [movement_key(m) for m in ids],
    ):
        kind, event_id = _what(bytes(r["value"]))
        detail = f"from {r['topic']} [{r['partition']}] @{r['offset']}: {r['reason']}"
        if r["retried_at"] is not None:
            detail += f"; retried: {r['retry_outcome']}"
        hops.append(
            Hop(r["received_at"], node, "sync", f"refuse {kind}", "dead_letter", detail,
                event_id)
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


@dataclass
class TopicHops:
    """What the pair topics told about the movements, and what reading them took."""

    hops: list[Hop] = field(default_factory=list)
    recorded: int = 0
    """Records the node's database placed on the topics (inbox and dead letters)."""
    missing: int = 0
    """Of those, how many the cluster no longer has."""
    tail: int = 0
    """Records beyond what sync has read (or, without a database, every record)."""
    read: int = 0
    """Records fetched from the cluster in all."""


async def topic_hops(
    kafka: KafkaSettings, node: str, movements: set[UUID], conn: DbConnection | None = None
) -> list[Hop]:
    """What the partners published about the movements on the pair topics to ``node``:
    with ``conn`` (the node's database), the records it recorded and the tail sync has not
    read; without, every record from the start (cost growing with the topics' history)."""
    return (await read_topic_hops(kafka, node, movements, conn)).hops


async def read_topic_hops(
    kafka: KafkaSettings, node: str, movements: set[UUID], conn: DbConnection | None = None
) -> TopicHops:
    """``topic_hops``, with what the reading took."""
    keys = {movement_key(m) for m in movements}
    partitions = await partitions_matching(kafka, kafka.topics.incoming_pattern(node))
    topics = sorted({tp.topic for tp in partitions})
    found = TopicHops()
    starts: dict[TopicPartition, int] | None = None
    if conn is not None:
        positions = await _recorded_positions(conn, movements, keys, topics)
        fetched, committed = await asyncio.gather(
            read_records(kafka, positions, partitions=partitions),
            committed_offsets(kafka, kafka.consumer_group(node, SYNC), partitions),
        )
        found.recorded, found.missing, found.read = (
            len(positions), len(fetched.missing), fetched.read
        )  # fmt: skip
        for r in fetched.records:
            found.hops.extend(_record_hops(r.value or b"", r.timestamp, r.topic))
        starts = await _unread(conn, committed)
    async with read_topics(kafka, topics, start_offsets=starts, partitions=partitions) as reading:
        found.tail = reading.total
        async for records in reading.batches():
            for r in records:
                if r.key in keys:
                    found.hops.extend(_record_hops(r.value or b"", r.timestamp, r.topic))
        found.read += reading.read
    return found


async def _recorded_positions(
    conn: DbConnection, movements: set[UUID], keys: set[bytes], topics: Sequence[str]
) -> list[Position]:
    """Where the records the node received about the movements lie: the events sync took
    in (by the movement they concern) and the records it refused (by their key)."""
    rows = await conn.fetch(
        'SELECT topic, partition, "offset" FROM inbox'
        " WHERE movement_id = ANY($1::uuid[]) AND topic = ANY($3::text[])"
        ' UNION SELECT topic, partition, "offset" FROM dead_letters'
        " WHERE record_key = ANY($2::bytea[]) AND topic = ANY($3::text[])",
        list(movements),
        list(keys),
        list(topics),
    )
    return sorted(Position(r["topic"], r["partition"], r["offset"]) for r in rows)


async def _unread(
    conn: DbConnection, committed: dict[TopicPartition, int | None]
) -> dict[TopicPartition, int]:
    """Per partition of the incoming topics, the first offset sync may not have read: the
    lower of its consumer group's committed offset and one past the highest offset the
    database records there; the partition's start where neither is known."""
    partitions = list(committed)
    rows = await conn.fetch(
        "SELECT p.topic, p.partition, GREATEST("
        ' (SELECT max(i."offset") FROM inbox i'
        "   WHERE i.topic = p.topic AND i.partition = p.partition),"
        ' (SELECT max(d."offset") FROM dead_letters d'
        "   WHERE d.topic = p.topic AND d.partition = p.partition)) AS highest"
        " FROM unnest($1::text[], $2::integer[]) AS p(topic, partition)",
        [tp.topic for tp in partitions],
        [tp.partition for tp in partitions],
    )
    highest = {TopicPartition(r["topic"], r["partition"]): r["highest"] for r in rows}
    return {tp: tail_start(committed[tp], highest.get(tp)) for tp in partitions}


def tail_start(committed: int | None, highest_known: int | None) -> int:
    """The first offset of a partition that sync may not have read: below its committed
    offset it has read everything, and every record it read is in the database (or a
    second copy of one that is), so the tail starts at the lower of the two marks. With no
    commit, one past what the database knows; knowing nothing, the partition's start
    (``read_topics`` takes an offset below a partition's first record for its first)."""
    if highest_known is None:
        return 0
    known = highest_known + 1
    return known if committed is None else min(committed, known)


def _what(value: bytes) -> tuple[str, str | None]:
    """A refused record's event kind and id, as far as its bytes tell."""
    try:
        document = json.loads(value)
    except ValueError:
        return "record", None
    if not isinstance(document, dict):
        return "record", None
    kind = _kind(document["type"])[:60] if isinstance(document.get("type"), str) else "record"
    event_id = document.get("id")
    return kind, event_id[:64] if isinstance(event_id, str) else None


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
