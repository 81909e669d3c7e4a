"""What the simulation checks at the end, from the nodes' own databases and the receivers of
notices: every movement's two replicas identical (both field groups, their versions and
the participations), every notice sent once, and the commit → apply lag of every pair
event (the origin's outbox commit to the partner's inbox, both timestamps of one server)."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from yixian.localstack.sinks import HttpSink, MailSink

from .world import World

MOVEMENT = (
    "SELECT movement_id, origin, host, member_id, origin_version, origin_status,"
    " origin_group::text AS origin_group, host_version, host_status, host_group::text AS"
    " host_group FROM movements"
)
PARTICIPATIONS = (
    "SELECT p.participation_id, p.movement_id, m.origin, m.host, p.host_org_id,"
    " p.host_org_name, p.activity_id, p.kind, p.title, p.attended_at, p.recorded_at,"
    " p.recorded_by FROM participations p JOIN movements m USING (movement_id)"
)
DIGEST = (
    "SELECT origin, host, count(*) AS n, md5(string_agg(concat_ws('|', movement_id, member_id,"
    " origin_version, origin_status, origin_group::text, host_version, host_status,"
    " host_group::text, (SELECT string_agg(participation_id::text, ',' ORDER BY"
    " participation_id) FROM participations p WHERE p.movement_id = m.movement_id)), ','"
    " ORDER BY movement_id)) AS digest FROM movements m GROUP BY origin, host"
)
Pair = tuple[str, str]
TOPIC_PARTITIONS = 3
"""``yixian host add``'s default: the partitions of a node's local topic."""


async def _each(world: World, sql: str) -> dict[str, list[asyncpg.Record]]:
    """``sql`` on every node's database at once; the rows by node."""

    async def one(url: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    codes = list(world.nodes)
    found = await asyncio.gather(*(one(world.nodes[c].database_url) for c in codes))
    return dict(zip(codes, found, strict=True))


async def notify_behind(world: World) -> int:
    """Records of the nodes' local topics their notify has not planned from yet (committed
    offsets against the topics' ends): a change can be in every replica while its notice
    is not planned yet."""
    topics = world.topics
    partitions = [
        TopicPartition(topics.local(code), partition)
        for code in world.nodes
        for partition in range(TOPIC_PARTITIONS)
    ]
    bootstrap = world.stack.config.kafka_bootstrap  # the operator's door: every group
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await admin.start()
        try:
            ends = await consumer.end_offsets(partitions)
            behind = 0
            for code in world.nodes:
                group = f"{topics.namespace}.yixian.{code}.notify"
                mine = [tp for tp in partitions if tp.topic == topics.local(code)]
                committed = await admin.list_consumer_group_offsets(group, partitions=mine)
                for tp in mine:
                    mark = committed.get(tp)
                    done = mark.offset if mark is not None and mark.offset >= 0 else 0
                    behind += max(ends[tp] - done, 0)
            return behind
        finally:
            await admin.close()
    finally:
        await consumer.stop()


async def converged(world: World) -> bool:
    """Every (origin, host) group of movements, with their participations, the same at
    both its nodes (a digest of each), nothing left to publish, no notice pending and none
    left to plan."""
    try:
        digests = await _each(world, DIGEST)
        backlog = await _each(
            world,
            "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL)"
            " + (SELECT count(*) FROM notices WHERE status = 'pending') AS n",
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False
    if any(rows[0]["n"] for rows in backlog.values()):
        return False
    seen = {
        code: {(r["origin"], r["host"]): (r["n"], r["digest"]) for r in rows}
        for code, rows in digests.items()
    }
    for code, groups in seen.items():
        for (origin, host), digest in groups.items():
            if code not in (origin, host):
                return False
            other = host if code == origin else origin
            if seen.get(other, {}).get((origin, host)) != digest:
                return False
    try:
        return await notify_behind(world) == 0
    except (KafkaError, OSError, TimeoutError):
        return False


@dataclass
class Replicas:
    movements: int = 0
    participations: int = 0
    pairs: set[frozenset[str]] = field(default_factory=set)
    """The linked pairs that share movements."""
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {
            "movements": self.movements,
            "participations": self.participations,
            "pairs_sharing_movements": len(self.pairs),
            "identical": self.identical,
            "differences": self.differences[:50],
        }


async def compare_replicas(world: World) -> Replicas:
    """Row by row: each movement at its origin and at its host (every column of both groups
    and their versions) and each participation at both."""
    movements = await _each(world, MOVEMENT)
    participations = await _each(world, PARTICIPATIONS)
    result = Replicas()
    for table, rows_by_node, key in (
        ("movement", movements, "movement_id"),
        ("participation", participations, "participation_id"),
    ):
        by_pair: dict[tuple[str, Pair], dict[Any, dict[str, Any]]] = {}
        for code, rows in rows_by_node.items():
            for row in rows:
                pair = (row["origin"], row["host"])
                if code not in pair:
                    result.differences.append(
                        f"{table} {row[key]} at {code}, not of its pair {pair}"
                    )
                by_pair.setdefault((code, pair), {})[row[key]] = dict(row)
        pairs = {pair for _, pair in by_pair}
        for origin, host in sorted(pairs):
            at_origin = by_pair.get((origin, (origin, host)), {})
            at_host = by_pair.get((host, (origin, host)), {})
            for ident in sorted(at_origin.keys() | at_host.keys(), key=str):
                a, b = at_origin.get(ident), at_host.get(ident)
                if a is None or b is None:
                    where = host if a is not None else origin
                    result.differences.append(f"{table} {ident} missing at {where}")
                elif a != b:
                    columns = sorted(c for c in a if a[c] != b.get(c))
                    result.differences.append(
                        f"{table} {ident} differs between {origin} and {host}: {columns}"
                    )
            if table == "movement":
                result.movements += len(at_origin.keys() | at_host.keys())
                result.pairs.add(frozenset((origin, host)))
            else:
                result.participations += len(at_origin.keys() | at_host.keys())
    return result


@dataclass
class Notices:
    planned: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    received: int = 0
    """Distinct notice keys the receivers got."""
    repeats: int = 0
    """Deliveries of a key received before (a notice in flight when its sender was killed,
    sent again under its key: the receiver keeps one)."""
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    keys_at_two_nodes: int = 0

    @property
    def once(self) -> bool:
        sent_all = set(self.statuses) <= {"sent"}
        return sent_all and not self.missing and not self.unexpected and not self.keys_at_two_nodes

    def as_json(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "statuses": self.statuses,
            "received_distinct": self.received,
            "repeats_dropped_by_key": self.repeats,
            "missing": self.missing[:20],
            "unexpected": self.unexpected[:20],
            "keys_at_two_nodes": self.keys_at_two_nodes,
            "each_once": self.once,
        }


async def count_notices(world: World, mail: MailSink, http: HttpSink) -> Notices:
    rows = await _each(world, "SELECT notice_key, status FROM notices")
    keys: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for found in rows.values():
        for row in found:
            keys[row["notice_key"].strip()] += 1
            statuses[row["status"]] += 1
    received = Counter(
        [r.json()["id"] for r in list(http.requests) if r.path.endswith("/messages")]
        + [m.message_id.strip().strip("<>").split("@")[0] for m in list(mail.mails)]
    )
    sent = {k for k in keys}
    return Notices(
        planned=sum(keys.values()),
        statuses=dict(statuses),
        received=len(received),
        repeats=sum(n - 1 for n in received.values()),
        missing=sorted(sent - received.keys()),
        unexpected=sorted(received.keys() - sent),
        keys_at_two_nodes=sum(1 for n in keys.values() if n > 1),
    )


async def pair_lags(world: World) -> list[float]:
    """Commit → apply of every pair event of a movement, in ms: the origin's outbox row's
    commit time to the partner's inbox row (the same server's clock)."""
    sent = await _each(
        world,
        "SELECT event_id, destination, created_at FROM outbox"
        " WHERE destination IS NOT NULL AND movement_id IS NOT NULL",
    )
    received = await _each(
        world, "SELECT source, event_id, received_at FROM inbox WHERE movement_id IS NOT NULL"
    )
    applied = {
        (code, row["source"], row["event_id"]): row["received_at"]
        for code, rows in received.items()
        for row in rows
    }
    lags = []
    for code, rows in sent.items():
        for row in rows:
            at = applied.get((row["destination"], code, row["event_id"]))
            if at is not None:
                lags.append((at - row["created_at"]).total_seconds() * 1000)
    return lags


def percentiles(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0}
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []
    p50 = cuts[49] if cuts else ordered[0]
    p99 = cuts[98] if cuts else ordered[0]
    return {"p50": p50, "p99": p99, "max": ordered[-1], "count": len(ordered)}


async def dead_letters(world: World) -> int:
    rows = await _each(world, "SELECT count(*) AS n FROM dead_letters")
    return sum(int(r[0]["n"]) for r in rows.values())


async def links_missing(world: World) -> list[str]:
    """The partners a node keeps no link with (``yixian partner link`` records the link in
    the node's database when run with its settings file)."""
    rows = await _each(world, "SELECT partner FROM links")
    missing = []
    for code, found in rows.items():
        kept = {row["partner"] for row in found}
        missing += [f"{code} ⇸ {p}" for p in world.graph.partners(code) if p not in kept]
    return missing
