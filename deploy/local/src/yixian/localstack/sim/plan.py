"""What the simulation will do, decided before anything runs and the same for the same seed:
which jurisdictions take part, which node host serves each, who is linked with whom, every
member's day (registration and the steps that follow), and when the faults strike.

Nothing here does I/O: the plan is data, so a run can be replayed by its seed and the plan's
properties (real codes, a connected sparse graph, traffic toward the hubs) are unit-tested.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeVar

DAY = 86_400.0
"""A simulated day, in simulated seconds."""
HOUR = 3_600.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    province: str
    """The province-level division (its host, by default)."""
    hub: bool
    """A host city's district: most members go to one of these."""


def _catalogue() -> tuple[Jurisdiction, ...]:
    """The jurisdictions a simulation draws from, in the order a smaller one takes them:
    hubs first by weight of the cities, then counties alternating between the two origin
    provinces, then the hub cities' other districts."""
    hubs = {
        "beijing": ("110105", "110114", "110108", "110106"),  # 朝阳 昌平 海淀 丰台
        "shanghai": ("310115", "310112", "310117"),  # 浦东 闵行 松江
        "guangdong": ("440305", "440306", "440106"),  # 南山 宝安 (深圳) 天河 (广州)
    }
    counties = {
        # 信阳: 固始 潢川 淮滨 息县 商城 光山 新县 罗山; 周口: 沈丘 郸城 鹿邑 太康 项城;
        # 驻马店: 新蔡 平舆 上蔡
        "henan": ("411525", "411526", "411527", "411528", "411524", "411522", "411523",
                  "411521", "411624", "411625", "411628", "411627", "411681", "411729",
                  "411723", "411722"),
        # 莆田 仙游; 泉州: 安溪 晋江 南安 惠安 永春 德化; 福州: 长乐 福清 连江 平潭
        "fujian": ("350300", "350322", "350524", "350582", "350583", "350521", "350112",
                   "350181", "350122", "350525", "350526", "350128"),
    }  # fmt: skip
    districts = {
        "beijing": ("110112", "110115", "110113", "110111"),  # 通州 大兴 顺义 房山
        "shanghai": ("310114", "310118", "310113"),  # 嘉定 青浦 宝山
        # 龙岗 东莞 白云 番禺 福田
        "guangdong": ("440307", "441900", "440111", "440113", "440304"),
    }
    ordered_hubs = [Jurisdiction(code, province, hub=True) for code, province in _round_robin(hubs)]
    ordered_others = [
        Jurisdiction(code, province, hub=False)
        for code, province in [*_round_robin(counties), *_round_robin(districts)]
    ]
    return (*ordered_hubs, *ordered_others)


def _round_robin(groups: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    columns = [[(code, province) for code in codes] for province, codes in groups.items()]
    taken: list[tuple[str, str]] = []
    for row in itertools.zip_longest(*columns):
        taken.extend(item for item in row if item is not None)
    return taken


CATALOGUE = _catalogue()
MAX_NODES = len(CATALOGUE)

HUB_CITIES: dict[str, dict[str, float]] = {
    "henan": {"beijing": 6, "shanghai": 2, "guangdong": 2},
    "fujian": {"guangdong": 4, "shanghai": 4, "beijing": 2},
    "beijing": {"beijing": 1},
    "shanghai": {"shanghai": 1},
    "guangdong": {"guangdong": 1},
}
"""Where a province's members go to work: the hub cities, by weight."""

ORIGIN_WEIGHT = {"county": 3.0, "district": 1.0, "hub": 1.0}
"""How many members leave a jurisdiction, relative to the others: counties send most."""
TO_HUB, TO_NEIGHBOUR, HUB_TO_HUB = 8.0, 1.0, 2.0
"""A destination's weight among a node's partners."""
DRAW = {"110105": 3.0, "310115": 2.0, "440305": 2.0, "110108": 1.5}
"""Hubs that draw more than the others (a multiplier of a hub's weight): Chaoyang first, as
Beijing does for Gushi and Putian."""

REGISTRATIONS_BY_HOUR = (
    1, 0.5, 0.3, 0.3, 0.5, 1, 3, 6, 9, 10, 9, 8, 6, 8, 9, 9, 8, 6, 4, 3, 2, 2, 1.5, 1
)  # fmt: skip
"""When in the day secretaries register outflows: office hours, a lunch break."""


def select(nodes: int) -> list[Jurisdiction]:
    """The ``nodes`` jurisdictions of a simulation: a fifth of them hubs (at least two)."""
    if not 2 <= nodes <= MAX_NODES:
        raise ValueError(f"nodes: between 2 and {MAX_NODES}, not {nodes}")
    hubs = [j for j in CATALOGUE if j.hub]
    others = [j for j in CATALOGUE if not j.hub]
    wanted_hubs = min(len(hubs), max(2, round(nodes / 5)))
    wanted_hubs = max(wanted_hubs, nodes - len(others))
    return [*hubs[:wanted_hubs], *others[: nodes - wanted_hubs]]


def host_layout(chosen: Sequence[Jurisdiction], hosts: int) -> dict[str, list[str]]:
    """Node hosts by name, each serving the nodes of one or more provinces (a province is
    never split): the largest province first, onto the host with the fewest nodes."""
    if hosts < 1:
        raise ValueError(f"hosts: at least 1, not {hosts}")
    by_province: dict[str, list[str]] = {}
    for j in chosen:
        by_province.setdefault(j.province, []).append(j.code)
    bins: list[tuple[list[str], list[str]]] = [
        ([], []) for _ in range(min(hosts, len(by_province)))
    ]
    for province, codes in sorted(by_province.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        names, served = min(bins, key=lambda b: len(b[1]))
        names.append(province)
        served.extend(codes)
    return {"-".join(names): served for names, served in bins}


@dataclass(frozen=True)
class Graph:
    """The partner links: undirected, each one a pair of topics in each direction."""

    nodes: tuple[Jurisdiction, ...]
    links: frozenset[frozenset[str]]

    @cached_property
    def _partners(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {j.code: [] for j in self.nodes}
        for a, b in (sorted(link) for link in self.links):
            found[a].append(b)
            found[b].append(a)
        return {code: sorted(partners) for code, partners in found.items()}

    @cached_property
    def _by_code(self) -> dict[str, Jurisdiction]:
        return {j.code: j for j in self.nodes}

    def partners(self, code: str) -> list[str]:
        return self._partners[code]

    def jurisdiction(self, code: str) -> Jurisdiction:
        return self._by_code[code]

    def ordered_pairs(self) -> int:
        return 2 * len(self.links)

    def connected(self) -> bool:
        if not self.nodes:
            return True
        seen, todo = set(), [self.nodes[0].code]
        while todo:
            code = todo.pop()
            if code not in seen:
                seen.add(code)
                todo.extend(self.partners(code))
        return len(seen) == len(self.nodes)

    def link_commands(self) -> list[tuple[str, list[str]]]:
        """The links as few ``yixian partner link NODE PARTNER...`` as cover them: the node
        with the most links not yet made goes first (the hubs)."""
        left = set(self.links)
        commands = []
        while left:
            counts = Counter(code for link in left for code in link)
            node = min(counts, key=lambda c: (-counts[c], c))
            mine = sorted(next(iter(link - {node})) for link in left if node in link)
            commands.append((node, mine))
            left = {link for link in left if node not in link}
        return commands


KNOWN_LINKS = (("411525", "110105"), ("350300", "110114"), ("350300", "110105"))
"""The brief's own links: Gushi's members in Chaoyang; Putian's in Changping, then Chaoyang."""


def partner_graph(chosen: Sequence[Jurisdiction], rng: random.Random) -> Graph:
    """A sparse, realistic graph: the hubs linked with each other; every other node with one
    or two hubs of the cities its province's members go to, and with one to three of its
    province's neighbours (the nearest codes); and the brief's own links."""
    links: set[frozenset[str]] = set()
    hubs = [j for j in chosen if j.hub]
    codes = {j.code for j in chosen}
    links.update(frozenset(pair) for pair in KNOWN_LINKS if set(pair) <= codes)
    for a, b in itertools.combinations(hubs, 2):
        links.add(frozenset((a.code, b.code)))
    for j in chosen:
        if j.hub:
            continue
        cities = HUB_CITIES[j.province]
        reachable = [h for h in hubs if h.province in cities] or hubs
        weights = [cities.get(h.province, 1.0) * DRAW.get(h.code, 1.0) for h in reachable]
        for hub in _weighted_sample(reachable, weights, rng.choice((1, 2)), rng):
            links.add(frozenset((j.code, hub.code)))
        kin = [k for k in chosen if k.province == j.province and not k.hub and k != j]
        kin.sort(key=lambda k: (abs(int(k.code) - int(j.code)), k.code))
        for neighbour in rng.sample(kin[:4], min(len(kin[:4]), rng.randint(1, 3))):
            links.add(frozenset((j.code, neighbour.code)))
    return Graph(tuple(chosen), frozenset(links))


def _weighted_sample(
    items: Sequence[T], weights: Sequence[float], k: int, rng: random.Random
) -> list[T]:
    """``k`` of ``items`` drawn without replacement, each draw by weight."""
    pool, chosen = list(zip(items, weights, strict=True)), []
    for _ in range(min(k, len(pool))):
        pick = rng.choices(range(len(pool)), [w for _, w in pool])[0]
        chosen.append(pool.pop(pick)[0])
    return chosen


# -- a member's day -------------------------------------------------------------------------


class Side(StrEnum):
    ORIGIN = "origin"
    HOST = "host"


class Action(StrEnum):
    """A secretary's step through the node's HTTP API (``POST /v1/movements/{id}/<value>``;
    ``register`` is ``POST /v1/movements``)."""

    REGISTER = "register"
    CHECK_IN = "check-in"
    DETAILS = "details"
    PARTICIPATION = "participations"
    RETURN = "return"
    TRANSFER_REQUEST = "transfer/request"
    TRANSFER_REPLY = "transfer/reply"
    TRANSFER_COMPLETE = "transfer/complete"
    TRANSFER_WITHDRAW = "transfer/withdraw"
    ENROL = "enrol"
    RELOCATE = "relocate"
    LOST_CONTACT = "lost-contact"
    RESTORE_CONTACT = "restore-contact"
    REJECT = "reject"
    CANCEL = "cancel"

    @property
    def side(self) -> Side:
        return Side.HOST if self in _HOST_ACTIONS else Side.ORIGIN


_HOST_ACTIONS = frozenset(
    {
        Action.CHECK_IN,
        Action.PARTICIPATION,
        Action.TRANSFER_REPLY,
        Action.ENROL,
        Action.LOST_CONTACT,
        Action.RESTORE_CONTACT,
        Action.REJECT,
    }
)


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    """When in the simulated day (seconds since midnight)."""
    action: Action
    args: dict[str, Any] = field(default_factory=dict)
    """What the plan decides of the request: a decision, the new host of a relocation."""


@dataclass(frozen=True, slots=True)
class Story:
    """One member's day: an outflow registration and the steps either side takes after it,
    one after another (each waits for the one before; a step the acting node cannot take yet,
    because the partner's change has not reached it, is tried again)."""

    number: int
    origin: str
    host: str
    steps: tuple[Step, ...]

    @property
    def ending(self) -> str:
        """What the story is about, for the summary."""
        actions = {s.action for s in self.steps}
        for action, name in _ENDINGS:
            if action in actions:
                return name
        return "checked in" if Action.CHECK_IN in actions else "registered"


_ENDINGS = (
    (Action.CANCEL, "cancelled"),
    (Action.REJECT, "rejected by the host"),
    (Action.ENROL, "transferred"),
    (Action.TRANSFER_WITHDRAW, "transfer rejected"),
    (Action.RELOCATE, "relocated"),
    (Action.LOST_CONTACT, "lost and restored contact"),
    (Action.RETURN, "returned"),
)


def origin_weight(j: Jurisdiction) -> float:
    if j.hub:
        return ORIGIN_WEIGHT["hub"]
    return ORIGIN_WEIGHT["district" if HUB_CITIES[j.province].keys() == {j.province} else "county"]


def destination_weights(graph: Graph, origin: str) -> tuple[list[str], list[float]]:
    """The partners ``origin``'s members go to, by weight: a hub draws most."""
    me = graph.jurisdiction(origin)
    partners = graph.partners(origin)
    weights = []
    for code in partners:
        other = graph.jurisdiction(code)
        if other.hub:
            weights.append((HUB_TO_HUB if me.hub else TO_HUB) * DRAW.get(code, 1.0))
        else:
            weights.append(TO_NEIGHBOUR)
    return partners, weights


class _Clock:
    """The plan's hours of registrations, drawn by the day's profile."""

    def __init__(self) -> None:
        total = sum(REGISTRATIONS_BY_HOUR)
        self.cumulative = list(itertools.accumulate(w / total for w in REGISTRATIONS_BY_HOUR))

    def draw(self, rng: random.Random) -> float:
        hour = min(bisect.bisect(self.cumulative, rng.random()), 23)
        return (hour + rng.random()) * HOUR


LAST_STEP = DAY - 10 * 60
"""No step after 23:50: the day's requests are all in before it ends."""


def day_plan(graph: Graph, movements: int, rng: random.Random) -> list[Story]:
    """``movements`` members' days, registrations spread over office hours, their steps
    following over the day; sorted by registration time."""
    codes = [j.code for j in graph.nodes]
    weights = list(itertools.accumulate(origin_weight(j) for j in graph.nodes))
    clock = _Clock()
    stories = []
    for number in range(movements):
        origin = rng.choices(codes, cum_weights=weights)[0]
        partners, to = destination_weights(graph, origin)
        host = rng.choices(partners, to)[0]
        start = min(clock.draw(rng), LAST_STEP - 2 * HOUR)
        steps = _steps(graph, origin, host, start, rng)
        stories.append(Story(number, origin, host, tuple(steps)))
    stories.sort(key=lambda s: (s.steps[0].at, s.number))
    return stories


def _steps(graph: Graph, origin: str, host: str, start: float, rng: random.Random) -> list[Step]:
    at = start
    steps = [Step(at, Action.REGISTER)]

    def then(action: Action, lo: float, hi: float, **args: Any) -> None:
        nonlocal at
        at = min(at + rng.uniform(lo, hi) * HOUR, LAST_STEP)
        steps.append(Step(at, action, args))

    fate = rng.random()
    if fate < 0.03:
        then(Action.CANCEL, 0.2, 2)
        return steps
    if fate < 0.06:
        then(Action.REJECT, 0.5, 3)
        return steps
    if fate < 0.14:
        return steps  # not arrived yet when the day ends
    then(Action.CHECK_IN, 0.5, 5)
    if rng.random() < 0.3:
        then(Action.DETAILS, 0.2, 2, phone=f"+86 139 {rng.randrange(10**8):08d}")
    for _ in range(rng.choice((0, 1, 1, 2))):
        then(Action.PARTICIPATION, 0.5, 3)
    ending = rng.random()
    if ending < 0.25:
        then(Action.RETURN, 1, 5)
    elif ending < 0.33:
        then(Action.TRANSFER_REQUEST, 0.3, 2)
        then(Action.TRANSFER_REPLY, 0.3, 2, decision="accepted")
        then(Action.TRANSFER_COMPLETE, 0.2, 1)
        then(Action.ENROL, 0.2, 1)
    elif ending < 0.37:
        then(Action.TRANSFER_REQUEST, 0.3, 2)
        then(Action.TRANSFER_REPLY, 0.3, 2, decision="rejected")
        then(Action.TRANSFER_WITHDRAW, 0.2, 1)
    elif ending < 0.43:
        partners, to = destination_weights(graph, origin)
        elsewhere = [(p, w) for p, w in zip(partners, to, strict=True) if p != host]
        if elsewhere:
            new_host = rng.choices([p for p, _ in elsewhere], [w for _, w in elsewhere])[0]
            then(Action.RELOCATE, 1, 4, host=new_host)
            then(Action.CHECK_IN, 0.5, 3)
        else:
            then(Action.RETURN, 1, 5)
    elif ending < 0.47:
        then(Action.LOST_CONTACT, 1, 3)
        then(Action.RESTORE_CONTACT, 0.5, 3)
    return steps


# -- faults ---------------------------------------------------------------------------------


class FaultKind(StrEnum):
    OFFLINE = "offline"
    """A partner off its host for an hour of simulated time (``yixian host remove``)."""
    KILL = "kill"
    """``kill -9`` of a node host's process, started again."""
    BROKER = "broker"
    """The Kafka broker stopped and started."""
    DATABASE = "database"
    """The PostgreSQL server stopped and started."""


CHEAP_FAULTS = frozenset({FaultKind.OFFLINE, FaultKind.KILL})
"""What disturbs only the simulation's own processes (not the shared stack)."""


@dataclass(frozen=True, slots=True)
class Fault:
    at: float
    kind: FaultKind
    target: str = ""
    """The node (offline), ``<host>/<service>`` (kill); nothing for the servers."""
    lasts: float = 0.0
    """Simulated seconds (offline)."""

    def describe(self) -> str:
        when = f"{int(self.at // HOUR):02d}:{int(self.at % HOUR // 60):02d}"
        what = {
            FaultKind.OFFLINE: f"node {self.target} off its host for {self.lasts / HOUR:g} h",
            FaultKind.KILL: f"kill -9 of {self.target}, started again",
            FaultKind.BROKER: "the Kafka broker restarted",
            FaultKind.DATABASE: "the PostgreSQL server restarted",
        }[self.kind]
        return f"{when} {what}"


def fault_plan(
    kinds: Iterable[FaultKind],
    layout: dict[str, list[str]],
    stories: Sequence[Story],
    kills: int = 3,
) -> list[Fault]:
    """When each kind of fault strikes: the busiest hub goes offline at 08:00 for an hour
    (scenario 4); the biggest host's registry, the next one's sync and the third one's notify
    are killed in the late morning and early afternoon (the first ``kills`` of them); the
    broker restarts at 16:00 and the database at 20:00, the last fault."""
    wanted = set(kinds)
    faults = []
    if FaultKind.OFFLINE in wanted:
        busiest = Counter(s.host for s in stories).most_common(1)
        if busiest:
            faults.append(Fault(8 * HOUR, FaultKind.OFFLINE, busiest[0][0], HOUR))
    if FaultKind.KILL in wanted:
        hosts = sorted(layout, key=lambda h: (-len(layout[h]), h))
        services = ((10.5, "registry"), (12.5, "sync"), (14, "notify"))[:kills]
        for n, (hour, service) in enumerate(services):
            faults.append(Fault(hour * HOUR, FaultKind.KILL, f"{hosts[n % len(hosts)]}/{service}"))
    if FaultKind.BROKER in wanted:
        faults.append(Fault(16 * HOUR, FaultKind.BROKER))
    if FaultKind.DATABASE in wanted:
        faults.append(Fault(20 * HOUR, FaultKind.DATABASE))
    return faults
