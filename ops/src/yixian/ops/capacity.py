"""The size of a national deployment, from the country, the traffic and per-node costs.

``python -m yixian.ops.capacity`` (also ``yixian capacity``) prints the tables of
docs/scale.md; ``--write docs/scale.md`` puts them between the document's markers, and a
unit test fails when the document and this module disagree. Every input is here, with its
source:

- the country: the jurisdictions a node can serve (GB/T 2260, ``yixian.runtime.divisions``)
  and the brief's figures (mobile members, mobile-member organizations);
- the pair graph and the traffic: assumptions, stated as numbers anyone can change
  (:class:`PairGraph`, :class:`Traffic`);
- Kafka's metadata costs: measured with Kafka 4.1.1's own classes
  (``bench/kafka-metadata/MetadataSize.java``);
- event sizes: the contracts' example events, encoded as a node sends them;
- per-node costs: :data:`MEASURED`, filled in as the team measures them. A figure that
  depends on one still missing is printed as its formula with a ``⟨measured: …⟩`` token.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from yixian.contracts import (
    STRUCTURED_CONTENT_TYPE,
    DigestBucket,
    Envelope,
    LinkDigest,
    make_event,
    record_headers,
    record_key,
)
from yixian.contracts.examples import example_events
from yixian.runtime.divisions import divisions

__all__ = ["MEASURED", "Inputs", "Measured", "Plan", "plan", "render", "replace_region"]

# -- measured elsewhere ----------------------------------------------------------------------

# Bytes of one record in the KRaft metadata log and in every snapshot (value and framing),
# from Kafka 4.1.1's serializers: bench/kafka-metadata/MetadataSize.java.
TOPIC_RECORD_BYTES = 54
PARTITION_RECORD_BYTES = 122  # replication factor 3, with the replicas' log directories
CONFIG_RECORD_BYTES = 58  # retention.ms=-1: 55, cleanup.policy=delete: 61
ACL_RECORD_BYTES = 79
PRINCIPAL_RECORD_BYTES = 121 + 185  # a SCRAM-SHA-256 and a SCRAM-SHA-512 credential
# Heap of the metadata image every broker and controller holds, per item (same tool, runs of
# 50,000 and 100,000 items; the ranges are the two runs).
TOPIC_HEAP_BYTES = 700  # a topic with its first partition: 624–760
PARTITION_HEAP_BYTES = 380  # each further partition: 343–411
CONFIG_HEAP_BYTES = 160  # 153–158
ACL_HEAP_BYTES = 600  # the image's 242–253 and the StandardAuthorizer's 324–351
PRINCIPAL_HEAP_BYTES = 610  # 597–617
PARTITION_LOAD_SECONDS = 0.002
"""A broker loads the partitions it keeps one after another when it starts: 6,000 partitions
cost the local stack about 12 s more (README, "The local stack")."""
KAFKA_RECORDS_PER_SECOND = 174_500
"""Kafka's ConsumerPerformance on the development machine (docs/performance.md): the pace
at which a rebuild can skip records it does not apply (by their ``ce_type`` header)."""
SERVICE_PROCESS_MB = 91 * 1.048576
"""Peak RSS of a node's service process today: 75–91 MiB (docs/performance.md)."""
SERVICE_PROCESS_LOW_MB = 75 * 1.048576
PROCESSES_PER_NODE_TODAY = 4  # registry, relay, sync, notify (the console is a fifth)
HOST_PROCESSES = 3  # a node host: registry (with its relay), sync, notify
CONNECTIONS_IDLE_TODAY = 5  # a pool's one kept connection: registry, relay, sync, notify, console
CONNECTIONS_BUSY_TODAY = 29  # the pools' sizes: registry 10, notify 6, sync 6, console 4, relay 3
CONNECTION_MB = 7.6
"""PSS of an idle PostgreSQL 15 backend after reading each of a node database's 28 tables
once (``/proc/<pid>/smaps_rollup`` on the development machine; 2.9 MB of it private)."""
DATABASE_MB = 10.3
"""On-disk size of a node's database with its schema and a demo's data (``pg_database_size``:
10.0–10.5 MB; an empty database, template1, is 7.5 MB)."""

SECONDS_PER_YEAR = 365 * 86_400

# -- per-node figures the team measures ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """The per-node figures being measured; None: not yet (printed as its token)."""

    idle_memory_per_node_mb: float | None = None
    """RSS a node host grows by for each idle node it serves (goal ≤ 25 MB)."""
    cpu_per_movement_ms: float | None = None
    """CPU of every process (services, PostgreSQL, Kafka) per movement (goal ≤ 5 ms)."""
    replay_events_per_second: float | None = None
    """``sync rebuild`` of one node (goal ≥ 30,000 events/s)."""
    sim_idle_cpu_per_link_ms: float | None = None
    """CPU ms per second that one idle link costs its two nodes in ``make sim`` (link upkeep:
    the keeper's rounds, heartbeats and digests, at the simulation's settings)."""
    sim_connections_per_node: float | None = None
    """PostgreSQL connections a node host keeps open per idle node in ``make sim``."""


MEASURED = Measured(
    # make bench, node host phase, 2026-12-01 on the quiet development VM: 2.9 MiB RSS
    idle_memory_per_node_mb=3.0,
    # make bench, two nodes of one host (the closed loop, every process, PostgreSQL and
    # Kafka): 9.6 ms, 2026-12-01 (8.0 in the run before; the two-process-per-node run 11.0)
    cpu_per_movement_ms=9.6,
    # make bench, `sync rebuild` of the benchmark's pair topic after live apply, 2026-12-01
    # (a topic with a link epoch change and its stragglers; 4,300-5,200 on a topic of one
    # epoch, `--only replay`)
    replay_events_per_second=1_589,
    # make sim, 2026-12-01: 50 idle nodes with 170 links used 0.63 cores (hosts, PostgreSQL
    # and Kafka) at a heartbeat every 10 s; all of it put on the links, an upper bound
    sim_idle_cpu_per_link_ms=3.7,
    # make sim, 2026-12-01: pg_stat_activity of the nodes' databases, idle before the day
    sim_connections_per_node=5.6,
)
"""The figures docs/scale.md is written with: record a measurement here and run
``python -m yixian.ops.capacity --write docs/scale.md``."""

UNITS = {
    "idle_memory_per_node_mb": "MB",
    "cpu_per_movement_ms": "ms",
    "replay_events_per_second": "events/s",
    "sim_idle_cpu_per_link_ms": "ms/s",
    "sim_connections_per_node": "connections",
}

TOKENS = {
    "idle_memory_per_node_mb": "idle-memory-per-node",
    "cpu_per_movement_ms": "cpu-per-movement",
    "replay_events_per_second": "replay-events-per-second",
    "sim_idle_cpu_per_link_ms": "sim-idle-cpu-per-link",
    "sim_connections_per_node": "sim-connections-per-node",
}


# -- figures that may wait for a measurement -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """A number, or while an input is not measured, the formula that will give it."""

    value: float | None
    text: str
    compound: bool = False  # a sum: parenthesize it inside a product

    @staticmethod
    def of(value: float) -> Figure:
        return Figure(value, number(value))

    @staticmethod
    def measured(measured: Measured, name: str) -> Figure:
        value: float | None = getattr(measured, name)
        return Figure(value, number(value) if value is not None else f"⟨measured: {TOKENS[name]}⟩")

    def _term(self) -> str:
        return f"({self.text})" if self.compound else self.text

    def __add__(self, other: Figure | float) -> Figure:
        b = _figure(other)
        value = None if self.value is None or b.value is None else self.value + b.value
        return Figure(value, f"{self.text} + {b.text}", compound=True)

    def __mul__(self, other: Figure | float) -> Figure:
        b = _figure(other)
        value = None if self.value is None or b.value is None else self.value * b.value
        return Figure(value, f"{self._term()} × {b._term()}")

    def __rmul__(self, other: float) -> Figure:
        return _figure(other) * self

    def __truediv__(self, other: Figure | float) -> Figure:
        b = _figure(other)
        value = None if self.value is None or b.value is None else self.value / b.value
        return Figure(value, f"{self._term()} / {b._term()}")

    def show(self, fmt: Callable[[float], str] | None = None) -> str:
        if self.value is None:
            return self.text
        return (fmt or number)(self.value)


def _figure(value: Figure | float) -> Figure:
    return value if isinstance(value, Figure) else Figure.of(value)


def number(value: float) -> str:
    """Thousands separated; small numbers with three significant digits."""
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}"


def size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{number(nbytes / scale)} {unit}"
    return f"{number(nbytes)} B"


def duration(seconds: float) -> str:
    for unit, scale in (("days", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if seconds >= scale:
            return f"{number(seconds / scale)} {unit}"
    return f"{number(seconds)} s"


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkKind:
    """Partners of one kind that a county sends members to."""

    name: str
    per_node: float
    """Links each node brings (a link counted from both of its ends counts half)."""
    within_province: float
    """Share of these links whose two nodes are in one province."""
    how: str


@dataclass(frozen=True, slots=True)
class PairGraph:
    """Which nodes exchange members: a node has a link (two pair topics) only with those."""

    capital_districts: float = 3
    prefecture_districts: float = 2
    neighbours: float = 5
    hub_cities: float = 4
    hub_districts: float = 3
    one_off: float = 10
    busiest_hub_share: float = 0.6
    """Share of all counties with members in the busiest hub city (Beijing)."""

    def kinds(self) -> list[LinkKind]:
        return [
            LinkKind(
                "provincial capital",
                self.capital_districts,
                1.0,
                f"{number(self.capital_districts)} of its districts",
            ),
            LinkKind(
                "prefecture seat",
                self.prefecture_districts,
                1.0,
                f"{number(self.prefecture_districts)} of its districts",
            ),
            LinkKind(
                "neighbours",
                self.neighbours / 2,
                0.85,
                f"{number(self.neighbours)} counties, each link shared by two: /2",
            ),
            LinkKind(
                "national hubs",
                self.hub_cities * self.hub_districts,
                0.15,
                f"{number(self.hub_cities)} cities × {number(self.hub_districts)} districts",
            ),
            LinkKind(
                "one-off destinations",
                self.one_off,
                0.5,
                "a member alone in a place no one else from the county goes",
            ),
        ]


@dataclass(frozen=True, slots=True)
class Traffic:
    """What members and secretaries do, per year (pair events: sent to a partner)."""

    stay_years: float = 3
    lifecycle_events: float = 8
    """Pair events of one movement's steps: origin ~3 (registered, certificate, return),
    host ~4 (expected, branch assigned, checked in, closed), one more."""
    attendances_per_year: float = 10
    events_per_attendance: float = 2  # participation recorded, and the host group's summary
    dues_payments_per_year: float = 4
    reports_per_year: float = 1
    peak_share: float = 0.7
    """Share of a month's attendances recorded around the theme day..."""
    peak_hours: float = 16
    """...within these working hours (two days)."""
    history_years: float = 3
    """Closed movements a link keeps sharing (its digest covers them): this many years."""


@dataclass(frozen=True, slots=True)
class Upkeep:
    """The link protocol's own traffic: a heartbeat per idle link and direction, a digest."""

    name: str
    heartbeat_seconds: float
    digest_seconds: float

    def events_per_link_second(self) -> float:
        """Upkeep events per second on one link, both directions (links are idle)."""
        return 2 * (1 / self.heartbeat_seconds + 1 / self.digest_seconds)


TODAY = Upkeep("today's defaults (10 s, 5 min)", 10, 300)
NATIONAL = Upkeep("proposed (15 min, 1 day)", 900, 86_400)


@dataclass(frozen=True, slots=True)
class Inputs:
    graph: PairGraph = PairGraph()
    traffic: Traffic = Traffic()
    mobile_members: int = 2_000_000  # the brief
    mobile_organizations: int = 15_000  # the brief
    replication_factor: int = 3
    replicas_per_broker: tuple[int, ...] = (1_000, 2_000, 4_000)
    small_cluster_brokers: int = 9
    host_replicas: int = 2
    databases_per_server: int = 100
    upkeep: tuple[Upkeep, ...] = (TODAY, NATIONAL)


# -- the country -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name: str
    nodes: int


@cache
def provinces() -> tuple[Province, ...]:
    """Province-level divisions with the jurisdictions below them that have none below
    (county-level, and the prefecture-level cities without counties, e.g. 东莞 441900)."""
    names = divisions()
    codes = set(names)
    leaves = Counter(
        code[:2]
        for code in codes
        if not code.endswith("0000")
        and not (code.endswith("00") and any(c != code and c[:4] == code[:4] for c in codes))
    )
    return tuple(
        Province(code, names[f"{code}0000"], count)
        for code, count in sorted(leaves.items(), key=lambda item: (-item[1], item[0]))
    )


# -- event sizes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSizes:
    business: float  # mean record bytes of an origin group, host group and participation event
    heartbeat: float
    digest_base: float
    digest_bucket: float


@cache
def event_sizes() -> EventSizes:
    """Record bytes as a node sends them: value, key and headers (+8 of framing)."""
    epoch = 1_767_225_600_000_000  # a link epoch: microseconds since 1970

    def record(event: Envelope[Any]) -> int:
        numbered = event.with_pairseq(123_456, epoch)
        value = numbered.encode()
        headers = record_headers(numbered.type, "0" * 32, STRUCTURED_CONTENT_TYPE)
        return (
            len(value) + len(record_key(numbered)) + sum(len(k) + len(v) + 2 for k, v in headers)
        ) + 8

    by_type = {event.type: record(event) for event in example_events()}
    business = statistics.fmean(
        by_type[t]
        for t in (
            "yixian.movement.origin_group.v1",
            "yixian.movement.host_group.v1",
            "yixian.movement.participation_recorded.v1",
        )
    )

    def digest(buckets: int) -> int:
        at = datetime(2026, 3, 1, tzinfo=UTC)
        payload = LinkDigest(
            digest_id=UUID(int=1),
            bucket_count=256,
            buckets=tuple(
                DigestBucket(bucket=b, movements=37, hash=hashlib.sha256(b"%d" % b).hexdigest())
                for b in range(buckets)
            ),
            as_of_sequence=123_456,
            as_of_epoch=epoch,
            computed_at=at,
            content=True,
        )
        return record(make_event(payload, node="411525", time=at))

    one, two = digest(1), digest(2)
    return EventSizes(business, by_type["yixian.link.heartbeat.v1"], one - (two - one), two - one)


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """One way of laying the traffic out on Kafka: what the cluster(s) hold in all."""

    name: str
    topics: float
    partitions: float
    configs: float
    acls: float
    principals: float
    clusters: int = 1

    def replicas(self, rf: int) -> float:
        return self.partitions * rf

    def brokers(self, rf: int, per_broker: int) -> int:
        return max(3 * self.clusters, math.ceil(self.replicas(rf) / per_broker))

    def metadata_bytes(self) -> float:
        return (
            self.topics * TOPIC_RECORD_BYTES
            + self.partitions * PARTITION_RECORD_BYTES
            + self.configs * CONFIG_RECORD_BYTES
            + self.acls * ACL_RECORD_BYTES
            + self.principals * PRINCIPAL_RECORD_BYTES
        ) / self.clusters

    def image_heap_bytes(self) -> float:
        return (
            self.topics * TOPIC_HEAP_BYTES
            + (self.partitions - self.topics) * PARTITION_HEAP_BYTES
            + self.configs * CONFIG_HEAP_BYTES
            + self.acls * ACL_HEAP_BYTES
            + self.principals * PRINCIPAL_HEAP_BYTES
        ) / self.clusters


@dataclass(frozen=True, slots=True)
class Plan:
    inputs: Inputs
    measured: Measured
    provinces: tuple[Province, ...]
    sizes: EventSizes

    # the pair graph
    @property
    def nodes(self) -> int:
        return sum(p.nodes for p in self.provinces)

    def links(self, graph: PairGraph | None = None) -> float:
        return self.nodes * sum(k.per_node for k in (graph or self.inputs.graph).kinds())

    @property
    def cross_province_links(self) -> float:
        return self.nodes * sum(k.per_node * (1 - k.within_province) for k in self.graph_kinds)

    @property
    def graph_kinds(self) -> list[LinkKind]:
        return self.inputs.graph.kinds()

    @property
    def pair_topics(self) -> float:
        return 2 * self.links()

    @property
    def partners(self) -> float:
        """Partners of the average node."""
        return 2 * self.links() / self.nodes

    @property
    def busiest_hub_partners(self) -> float:
        """Partners of a district of the busiest hub city that every county with members
        there links to (an upper estimate), plus an average node's own links."""
        return self.inputs.graph.busiest_hub_share * self.nodes + self.partners

    # traffic
    @property
    def movements_per_year(self) -> float:
        return self.inputs.mobile_members / self.inputs.traffic.stay_years

    def pair_events_per_year(self) -> dict[str, float]:
        t, m = self.inputs.traffic, self.inputs.mobile_members
        return {
            "movement steps": self.movements_per_year * t.lifecycle_events,
            "attendances": m * t.attendances_per_year * t.events_per_attendance,
            "dues payments": m * t.dues_payments_per_year,
            "reports": m * t.reports_per_year,
        }

    @property
    def pair_events_per_second(self) -> float:
        return sum(self.pair_events_per_year().values()) / SECONDS_PER_YEAR

    @property
    def peak_events_per_second(self) -> float:
        t, m = self.inputs.traffic, self.inputs.mobile_members
        month = m * t.attendances_per_year * t.events_per_attendance / 12
        return month * t.peak_share / (t.peak_hours * 3_600) + self.pair_events_per_second

    @property
    def shared_per_link(self) -> float:
        """Movements a link's digest covers: the open ones and the closed of the history."""
        t = self.inputs.traffic
        return (self.inputs.mobile_members + self.movements_per_year * t.history_years) / (
            self.links()
        )

    @property
    def digest_bytes(self) -> float:
        buckets = 256 * (1 - math.pow(255 / 256, self.shared_per_link))
        return self.sizes.digest_base + buckets * self.sizes.digest_bucket

    def upkeep_per_second(self, upkeep: Upkeep) -> tuple[float, float]:
        """Heartbeats and digests per second, nationally."""
        directions = 2 * self.links()
        return directions / upkeep.heartbeat_seconds, directions / upkeep.digest_seconds

    def upkeep_bytes_per_day(self, upkeep: Upkeep) -> float:
        beats, digests = self.upkeep_per_second(upkeep)
        return (beats * self.sizes.heartbeat + digests * self.digest_bytes) * 86_400

    # Kafka
    def layouts(self) -> list[Layout]:
        n, links, pair = self.nodes, self.links(), self.pair_topics
        node_topics = 2 * n  # local, dlq.sync
        cross = self.cross_province_links
        within = links - cross
        clusters = len(self.provinces)
        flows = clusters * (clusters - 1)
        return [
            Layout(
                "today: a topic per ordered pair, 3 partitions each",
                pair + node_topics,
                3 * (pair + node_topics),
                2 * pair + node_topics,
                4 * n + 4 * links,
                n,
            ),
            Layout(
                "a topic per ordered pair, 1 partition",
                pair + node_topics,
                pair + 3 * node_topics,
                2 * pair + node_topics,
                4 * n + 4 * links,
                n,
            ),
            Layout(
                "(a) a cluster per province, MirrorMaker 2, pair topics of 1 partition",
                2 * within + 4 * cross + node_topics,
                2 * within + 4 * cross + 3 * node_topics,
                2 * (2 * within + 4 * cross) + node_topics,
                4 * n + 4 * within + 6 * cross + flows,
                n + flows,
                clusters,
            ),
            Layout(
                "(b) a topic per destination, signed events, 3 partitions each",
                n + node_topics,
                3 * (n + node_topics),
                2 * n + node_topics,
                5 * n + 2 * links,
                n,
            ),
            Layout(
                "(b) a topic per destination, signed events, 1 partition each",
                n + node_topics,
                n + node_topics,
                2 * n + node_topics,
                5 * n + 2 * links,
                n,
            ),
        ]

    # node hosts
    def host_rows(self) -> list[tuple[str, int]]:
        by_size = list(self.provinces)
        median = sorted(by_size, key=lambda p: p.nodes)[len(by_size) // 2]
        return [
            (f"{by_size[0].code} {by_size[0].name} (largest)", by_size[0].nodes),
            ("a province of 150 counties", 150),
            (f"{median.code} {median.name} (median)", median.nodes),
            (f"{by_size[-1].code} {by_size[-1].name} (smallest)", by_size[-1].nodes),
        ]

    def figure(self, name: str) -> Figure:
        return Figure.measured(self.measured, name)


def plan(inputs: Inputs | None = None, measured: Measured = MEASURED) -> Plan:
    return Plan(inputs or Inputs(), measured, provinces(), event_sizes())


# -- the tables ------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _country(p: Plan) -> str:
    counts = [pr.nodes for pr in p.provinces]
    rows = [
        ["jurisdictions with a node (county level, GB/T 2260)", number(p.nodes)],
        ["provinces", number(len(p.provinces))],
        [
            "nodes per province: smallest / median / largest",
            f"{min(counts)} / {number(statistics.median(counts))} / {max(counts)}",
        ],
        ["mobile members (brief)", number(p.inputs.mobile_members)],
        [
            "mobile-member organizations (brief) per county",
            f"{number(p.inputs.mobile_organizations)} / {number(p.nodes)}"
            f" = {number(p.inputs.mobile_organizations / p.nodes)}",
        ],
    ]
    return table(["figure", "value"], rows)


def _graph(p: Plan) -> str:
    rows = [
        [
            k.name,
            k.how,
            number(k.per_node),
            number(p.nodes * k.per_node),
            f"{k.within_province:.0%}",
        ]
        for k in p.graph_kinds
    ]
    per_node = sum(k.per_node for k in p.graph_kinds)
    rows.append(
        [
            "**all**",
            "",
            f"**{number(per_node)}**",
            f"**{number(p.links())}**",
            f"{1 - p.cross_province_links / p.links():.0%}",
        ]
    )
    summary = [
        ["links (each: two pair topics)", number(p.links())],
        ["pair topics (ordered pairs that exchange members)", number(p.pair_topics)],
        ["partners of the average node", number(p.partners)],
        ["partners of the busiest hub district (upper estimate)", number(p.busiest_hub_partners)],
        ["links between two provinces", number(p.cross_province_links)],
        ["every ordered pair, for comparison", number(p.nodes * (p.nodes - 1))],
    ]
    return (
        table(["kind", "per county", "links per node", "links", "within a province"], rows)
        + "\n\n"
        + table(["figure", "value"], summary)
    )


def _sensitivity(p: Plan) -> str:
    g = p.inputs.graph
    rows = []
    for one_off in (0.0, g.one_off, 30.0):
        for hub_districts in (2.0, g.hub_districts, 5.0):
            graph = replace(g, one_off=one_off, hub_districts=hub_districts)
            links = p.links(graph)
            rows.append([number(one_off), number(hub_districts), number(links), number(2 * links)])
    return table(["one-off destinations", "districts per hub city", "links", "pair topics"], rows)


def _traffic(p: Plan) -> str:
    rows = [
        [kind, number(count), number(count / SECONDS_PER_YEAR)]
        for kind, count in p.pair_events_per_year().items()
    ]
    total = sum(p.pair_events_per_year().values())
    rows.append(["**all**", f"**{number(total)}**", f"**{number(total / SECONDS_PER_YEAR)}**"])
    facts = [
        ["movements opened per year", number(p.movements_per_year)],
        ["theme-day peak, nationally", f"{number(p.peak_events_per_second)} events/s"],
        [
            "business events per link and direction",
            f"{number(total / (2 * p.links()) / 365)} a day",
        ],
        ["record size (mean of origin group, host group, participation)", size(p.sizes.business)],
        ["pair topics grow by (before replication)", f"{size(total * p.sizes.business)} a year"],
    ]
    return (
        table(["pair events", "per year", "per second"], rows)
        + "\n\n"
        + table(["figure", "value"], facts)
    )


def _upkeep(p: Plan) -> str:
    business = p.pair_events_per_second
    rows = []
    for upkeep in p.inputs.upkeep:
        beats, digests = p.upkeep_per_second(upkeep)
        per_day = p.upkeep_bytes_per_day(upkeep)
        rows.append(
            [
                upkeep.name,
                number(beats),
                number(digests),
                f"{number((beats + digests) / business)}×",
                size(per_day),
                size(per_day * 365 * p.inputs.replication_factor),
                number(beats + digests),
            ]
        )
    return table(
        [
            "link policy",
            "heartbeats/s",
            "digests/s",
            "× business events",
            "kept per day (one copy)",
            f"kept per year (×{p.inputs.replication_factor} replicas)",
            "keeper looks at a link/s (ADR 34: when its heartbeat or digest falls due)",
        ],
        rows,
    ) + (
        f"\n\nHeartbeat {size(p.sizes.heartbeat)}; digest of {number(p.shared_per_link)}"
        f" shared movements {size(p.digest_bytes)} (256 buckets at most:"
        f" {size(p.sizes.digest_base + 256 * p.sizes.digest_bucket)})."
    )


def _kafka(p: Plan) -> str:
    rf = p.inputs.replication_factor
    rows = []
    for layout in p.layouts():
        brokers = " / ".join(number(layout.brokers(rf, b)) for b in p.inputs.replicas_per_broker)
        on = p.inputs.small_cluster_brokers if layout.clusters == 1 else 3 * layout.clusters
        small = layout.replicas(rf) / on
        rows.append(
            [
                layout.name,
                number(layout.topics),
                number(layout.partitions),
                number(layout.replicas(rf)),
                brokers,
                f"{number(small)} on {on} ({duration(small * PARTITION_LOAD_SECONDS)})",
                number(layout.acls),
                number(layout.principals),
            ]
        )
    per_broker = " / ".join(f"{b:,}" for b in p.inputs.replicas_per_broker)
    return table(
        [
            "layout",
            "topics",
            "partitions",
            f"replicas (RF {rf})",
            f"brokers at {per_broker} replicas each",
            "replicas per broker on a small cluster (a start's partition load)",
            "ACLs",
            "principals",
        ],
        rows,
    )


def _metadata(p: Plan) -> str:
    rows = [
        [
            layout.name,
            str(layout.clusters),
            size(layout.metadata_bytes()),
            size(layout.image_heap_bytes()),
        ]
        for layout in p.layouts()
    ]
    return table(
        [
            "layout",
            "clusters",
            "metadata snapshot (per cluster)",
            "image heap, each broker and controller (per cluster)",
        ],
        rows,
    )


def _hosts(p: Plan) -> str:
    idle = p.figure("idle_memory_per_node_mb")
    cpu = p.figure("cpu_per_movement_ms")
    per_link = p.figure("sim_idle_cpu_per_link_ms")
    base = HOST_PROCESSES * SERVICE_PROCESS_MB
    rows = []
    for label, n in p.host_rows():
        links = n * p.partners
        today_low = n * PROCESSES_PER_NODE_TODAY * SERVICE_PROCESS_LOW_MB
        today_high = n * PROCESSES_PER_NODE_TODAY * SERVICE_PROCESS_MB
        memory = Figure.of(round(base)) + Figure.of(n) * idle
        business = Figure.of(p.peak_events_per_second * n / p.nodes / 1000) * cpu
        upkeep = [
            Figure.of(links * u.events_per_link_second() / 2 / 1000) * cpu for u in p.inputs.upkeep
        ]
        keeper = Figure.of(links / 1000) * per_link
        rows.append(
            [
                label,
                str(n),
                number(links),
                f"{n * PROCESSES_PER_NODE_TODAY}: {size(today_low * 1e6)}–{size(today_high * 1e6)}",
                memory.show(lambda mb: size(mb * 1e6)),
                business.show(),
                " / ".join(f.show() for f in upkeep),
                keeper.show(),
            ]
        )
    return table(
        [
            "province",
            "nodes",
            "links of its nodes",
            "today: processes, memory",
            "memory of each node host (formula in MB)",
            "CPU cores, theme-day peak",
            "CPU cores, link upkeep at a movement's cost an event (upper bound; "
            + " / ".join(u.name.split(" (")[0] for u in p.inputs.upkeep)
            + ")",
            "CPU cores, link keeper (sim)",
        ],
        rows,
    )


def _postgres(p: Plan) -> str:
    per_node = p.figure("sim_connections_per_node")
    rows = []
    for label, n in p.host_rows():
        servers = math.ceil(n / p.inputs.databases_per_server)
        connections = Figure.of(n * p.inputs.host_replicas) * per_node
        memory = connections * CONNECTION_MB
        rows.append(
            [
                label,
                str(n),
                f"{servers} + {servers}",
                size(n * DATABASE_MB * 1e6),
                f"{number(n * CONNECTIONS_IDLE_TODAY)}–{number(n * CONNECTIONS_BUSY_TODAY)}",
                connections.show(),
                memory.show(lambda mb: size(mb * 1e6)),
            ]
        )
    return table(
        [
            "province",
            "databases",
            "servers (primary + standby)",
            "schema on disk",
            "connections today (idle–busy)",
            f"connections, node host ×{p.inputs.host_replicas}",
            f"their memory at {number(CONNECTION_MB)} MB",
        ],
        rows,
    )


def _rebuild(p: Plan) -> str:
    partners = p.busiest_hub_partners
    business_per_direction = sum(p.pair_events_per_year().values()) / (2 * p.links())
    business = partners * business_per_direction
    replay = p.figure("replay_events_per_second")
    rows = []
    for upkeep in p.inputs.upkeep:
        link_records = partners * upkeep.events_per_link_second() / 2 * SECONDS_PER_YEAR
        apply = Figure.of(business) / replay
        skip = link_records / KAFKA_RECORDS_PER_SECOND
        total = apply + skip
        rows.append(
            [
                upkeep.name,
                number(business),
                number(link_records),
                apply.show(duration),
                duration(skip),
                total.show(duration),
            ]
        )
    return table(
        [
            "link policy",
            "business events a year",
            "link records a year",
            "apply (formula in s)",
            f"skip at {number(KAFKA_RECORDS_PER_SECOND)} records/s",
            "rebuild per year of history (formula in s)",
        ],
        rows,
    )


def _national(p: Plan) -> str:
    idle = p.figure("idle_memory_per_node_mb")
    cpu = p.figure("cpu_per_movement_ms")
    hosts = len(p.provinces) * p.inputs.host_replicas
    base = HOST_PROCESSES * SERVICE_PROCESS_MB
    memory = Figure.of(round(hosts * base)) + Figure.of(p.nodes * p.inputs.host_replicas) * idle
    rows = [
        [
            "processes",
            number(p.nodes * PROCESSES_PER_NODE_TODAY),
            f"{number(hosts * HOST_PROCESSES)} ({hosts} hosts × {HOST_PROCESSES})",
        ],
        [
            "service memory (formula in MB)",
            f"{size(p.nodes * PROCESSES_PER_NODE_TODAY * SERVICE_PROCESS_LOW_MB * 1e6)}–"
            f"{size(p.nodes * PROCESSES_PER_NODE_TODAY * SERVICE_PROCESS_MB * 1e6)}",
            memory.show(lambda mb: size(mb * 1e6)),
        ],
        [
            "CPU cores for business events, average / theme-day peak",
            "",
            (Figure.of(p.pair_events_per_second / 1000) * cpu).show()
            + " / "
            + (Figure.of(p.peak_events_per_second / 1000) * cpu).show(),
        ],
        ["PostgreSQL databases", number(p.nodes), number(p.nodes)],
        [
            f"PostgreSQL servers (node hosts: ≤ {p.inputs.databases_per_server} databases a"
            " primary, each with a standby)",
            f"{number(p.nodes)} (one per node)",
            number(
                2 * sum(math.ceil(pr.nodes / p.inputs.databases_per_server) for pr in p.provinces)
            ),
        ],
    ]
    return table(["nationally", "today (a process per service and node)", "node hosts"], rows)


SECTIONS: list[tuple[str, Callable[[Plan], str]]] = [
    ("The country", _country),
    ("The pair graph", _graph),
    ("How the pair count moves with the assumptions", _sensitivity),
    ("Traffic", _traffic),
    ("Link upkeep", _upkeep),
    ("Kafka: topics, partitions, brokers, ACLs", _kafka),
    ("Kafka: controller metadata", _metadata),
    ("Node hosts per province", _hosts),
    ("PostgreSQL per province", _postgres),
    ("Rebuilding the busiest hub district", _rebuild),
    ("Nationally: today and with node hosts", _national),
]


def render(p: Plan) -> str:
    """The tables, as docs/scale.md holds them between its markers."""
    missing = [TOKENS[f.name] for f in fields(p.measured) if getattr(p.measured, f.name) is None]
    taken = [
        f"{TOKENS[f.name]} {number(value)} {UNITS[f.name]}"
        for f in fields(p.measured)
        if (value := getattr(p.measured, f.name)) is not None
    ]
    lines = [
        "<!-- Written by `python -m yixian.ops.capacity --write docs/scale.md`; edit the module,"
        " not these tables. -->",
        "",
        "Measured: " + ("; ".join(taken) or "none") + ".",
        "Not yet measured: " + (", ".join(f"`⟨measured: {t}⟩`" for t in missing) or "none") + ".",
    ]
    for title, section in SECTIONS:
        lines += ["", f"#### {title}", "", section(p)]
    return "\n".join(lines) + "\n"


BEGIN = "<!-- capacity:begin -->"
END = "<!-- capacity:end -->"


class MissingMarkers(ValueError):
    pass


def replace_region(document: str, tables: str) -> str:
    """``document`` with the text between its markers replaced by ``tables``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise MissingMarkers(f"the document has no {BEGIN} … {END} region")
    return document[: start + len(BEGIN)] + "\n" + tables + document[end:]


def region(document: str) -> str:
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise MissingMarkers(f"the document has no {BEGIN} … {END} region")
    return document[start + len(BEGIN) + 1 : end]


# -- the command -----------------------------------------------------------------------------


def _positive(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter("must be a finite number greater than 0")
    return value


def _measurement(help_text: str) -> Any:  # typer's OptionInfo, typed Any by typer
    return typer.Option(callback=_positive, help=help_text)


def command(
    idle_memory_per_node: Annotated[
        float | None, _measurement("MB a node host grows by per idle node.")
    ] = None,
    cpu_per_movement: Annotated[
        float | None, _measurement("CPU ms of every process per movement.")
    ] = None,
    replay_events_per_second: Annotated[
        float | None, _measurement("Events a second of one node's rebuild.")
    ] = None,
    sim_idle_cpu_per_link: Annotated[
        float | None, _measurement("CPU ms a second that one idle link costs (sim).")
    ] = None,
    sim_connections_per_node: Annotated[
        float | None, _measurement("PostgreSQL connections per idle node (sim).")
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option(
            help="Rewrite this document's tables (with the figures recorded in MEASURED only)."
        ),
    ] = None,
) -> None:
    """Print the size of a national deployment (docs/scale.md's tables), or rewrite them."""
    given = {
        "idle_memory_per_node_mb": idle_memory_per_node,
        "cpu_per_movement_ms": cpu_per_movement,
        "replay_events_per_second": replay_events_per_second,
        "sim_idle_cpu_per_link_ms": sim_idle_cpu_per_link,
        "sim_connections_per_node": sim_connections_per_node,
    }
    overrides = {name: value for name, value in given.items() if value is not None}
    if write is not None:
        if overrides:
            typer.echo(
                "error: --write uses the figures recorded in MEASURED"
                " (ops/src/yixian/ops/capacity.py), so that the test can hold the document to"
                " them; record the measurement there, or print without --write",
                err=True,
            )
            raise typer.Exit(2)
        try:
            document = write.read_text(encoding="utf-8")
            write.write_text(replace_region(document, render(plan())), encoding="utf-8")
        except (OSError, MissingMarkers) as exc:
            typer.echo(f"error: {write}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{write}: tables written")
        return
    typer.echo(render(plan(measured=replace(MEASURED, **overrides))), nl=False)


def main() -> None:
    typer.run(command)


if __name__ == "__main__":
    main()
