"""The simulation's plan: real jurisdictions, hosts by province, a sparse connected partner
graph, a day whose traffic goes mostly to the hub cities, faults at their hours; the same
for the same seed."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from yixian.localstack.sim.plan import (
    CATALOGUE,
    CHEAP_FAULTS,
    DAY,
    KNOWN_LINKS,
    LAST_STEP,
    MAX_NODES,
    Action,
    FaultKind,
    Graph,
    Side,
    Story,
    day_plan,
    fault_plan,
    host_layout,
    partner_graph,
    select,
)
from yixian.runtime.divisions import divisions


def world(nodes: int = 50, hosts: int = 5, seed: int = 1) -> tuple[Graph, dict[str, list[str]]]:
    chosen = select(nodes)
    return partner_graph(chosen, random.Random(seed)), host_layout(chosen, hosts)


def stories(graph: Graph, movements: int = 1000, seed: int = 1) -> list[Story]:
    return day_plan(graph, movements, random.Random(seed))


def test_fifty_current_divisions_a_fifth_of_them_hubs() -> None:
    chosen = select(MAX_NODES)
    codes = [j.code for j in chosen]
    assert len(set(codes)) == len(codes) == 50 == len(CATALOGUE)
    assert not [c for c in codes if c not in divisions()]
    assert sum(j.hub for j in chosen) == 10
    assert {"411525", "350300", "110105", "110114"} <= set(codes)  # the brief's own


@pytest.mark.parametrize("nodes", [2, 6, 17, 50])
def test_a_smaller_network_keeps_hubs_and_origins(nodes: int) -> None:
    chosen = select(nodes)
    assert len(chosen) == nodes
    assert 2 <= sum(j.hub for j in chosen) < nodes or nodes == 2


@pytest.mark.parametrize("nodes", [1, 51])
def test_a_network_size_out_of_range_is_refused(nodes: int) -> None:
    with pytest.raises(ValueError, match="nodes"):
        select(nodes)


def test_hosts_serve_whole_provinces() -> None:
    _, layout = world()
    assert sorted(layout) == ["beijing", "fujian", "guangdong", "henan", "shanghai"]
    assert sum(len(codes) for codes in layout.values()) == 50
    _, two = world(6, 2)
    assert len(two) == 2
    province = {j.code: j.province for j in CATALOGUE}
    for codes in two.values():
        for other in two.values():
            if other is not codes:
                assert not {province[c] for c in codes} & {province[c] for c in other}


def test_more_hosts_than_provinces_makes_one_per_province() -> None:
    _, layout = world(6, 9)
    assert len(layout) == len({j.province for j in select(6)})


def test_the_partner_graph_is_sparse_connected_and_realistic() -> None:
    graph, _ = world()
    hubs = [j.code for j in graph.nodes if j.hub]
    assert graph.connected()
    assert len(graph.links) < 0.2 * 50 * 49 / 2  # far from every pair
    for a, b in itertools.combinations(hubs, 2):
        assert frozenset((a, b)) in graph.links  # the hubs linked with each other
    for j in graph.nodes:
        if not j.hub:
            partners = graph.partners(j.code)
            assert set(partners) & set(hubs), f"{j.code} has no hub city"
            assert len(partners) <= 2 + 3 + 8, partners  # its own picks and its neighbours'
    for pair in KNOWN_LINKS:
        assert frozenset(pair) in graph.links


def test_the_same_seed_makes_the_same_graph_and_day() -> None:
    (a, _), (b, _), (c, _) = world(seed=7), world(seed=7), world(seed=8)
    assert a.links == b.links != c.links
    assert stories(a, 500, seed=3) == stories(b, 500, seed=3)


def test_link_commands_make_every_link_once() -> None:
    graph, _ = world()
    made = [frozenset((node, p)) for node, partners in graph.link_commands() for p in partners]
    assert len(made) == len(set(made))
    assert set(made) == graph.links
    assert len(graph.link_commands()) < len(graph.links) / 3


def test_most_members_go_to_a_few_host_cities() -> None:
    graph, _ = world()
    day = stories(graph)
    hubs = {j.code for j in graph.nodes if j.hub}
    to_hubs = sum(1 for s in day if s.host in hubs)
    assert to_hubs > 0.7 * len(day)
    busiest = Counter(s.host for s in day).most_common(3)
    assert busiest[0][0] == "110105"  # Chaoyang, as for Gushi
    origins = Counter(s.origin for s in day)
    assert sum(n for code, n in origins.items() if code not in hubs) > 0.7 * len(day)


def test_every_story_is_a_registration_and_steps_in_order_within_the_day() -> None:
    graph, _ = world()
    day = stories(graph)
    registered = [s.steps[0].at for s in day]
    assert registered == sorted(registered)
    office = sum(1 for at in registered if 8 * 3600 <= at < 18 * 3600)
    assert office > 0.6 * len(day)
    for story in day:
        assert story.steps[0].action is Action.REGISTER
        assert story.host in graph.partners(story.origin)
        times = [step.at for step in story.steps]
        assert times == sorted(times)
        assert times[0] >= 0
        assert times[-1] <= LAST_STEP < DAY
        for step in story.steps:
            if step.action is Action.RELOCATE:
                assert step.args["host"] in graph.partners(story.origin)
                assert step.args["host"] != story.host
    endings = Counter(s.ending for s in day)
    for ending in ("returned", "transferred", "transfer rejected", "relocated", "cancelled",
                   "rejected by the host", "lost and restored contact"):  # fmt: skip
        assert endings[ending] > 0, ending


def test_each_step_is_taken_by_its_owner() -> None:
    assert Action.CHECK_IN.side is Side.HOST
    assert Action.TRANSFER_REPLY.side is Side.HOST
    assert Action.RETURN.side is Side.ORIGIN
    assert Action.TRANSFER_COMPLETE.side is Side.ORIGIN


def test_faults_strike_through_the_day_and_the_database_last() -> None:
    graph, layout = world()
    day = stories(graph)
    faults = fault_plan(FaultKind, layout, day)
    assert [f.kind for f in faults] == [
        FaultKind.OFFLINE, FaultKind.KILL, FaultKind.KILL, FaultKind.KILL,
        FaultKind.BROKER, FaultKind.DATABASE,
    ]  # fmt: skip
    offline = faults[0]
    assert offline.target == Counter(s.host for s in day).most_common(1)[0][0]
    assert offline.lasts == 3600
    killed = [f.target for f in faults if f.kind is FaultKind.KILL]
    assert [t.split("/")[1] for t in killed] == ["registry", "sync", "notify"]
    assert {t.split("/")[0] for t in killed} <= set(layout)
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    cheap = fault_plan(CHEAP_FAULTS, layout, day)
    assert {f.kind for f in cheap} == {FaultKind.OFFLINE, FaultKind.KILL}
    assert fault_plan((), layout, day) == []
