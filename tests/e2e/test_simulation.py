"""The network simulation at smoke size (``make sim`` runs it with fifty nodes and every
fault): six nodes on two node hosts, set up with ``yixian host add`` and ``partner link``, a
few hundred members' days compressed into seconds, a partner off its host for an hour of the
day and ``kill -9`` of a host's registry process (its nodes' APIs and relays). Not the broker's or the
database's restart: the tests running beside this one share them. Afterwards every replica
pair is identical row by row, every notice was sent once, and the figures are there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.sim import Options, simulate
from yixian.localstack.sim.plan import CHEAP_FAULTS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SMOKE = Options(
    nodes=6, hosts=2, movements=200, seed=2026, faults=CHEAP_FAULTS, day_seconds=30, kills=1
)


async def test_a_day_of_six_nodes_on_two_hosts_ends_with_identical_replicas(
    local_stack: LocalStack,
    make_database: Callable[[], Awaitable[str]],
    topic_names: TopicNames,
    tmp_path: Path,
) -> None:
    async def database(_code: str) -> str:
        return await make_database()

    result = await simulate(local_stack, SMOKE, tmp_path, database, topic_names)

    assert result.ok, result.problems
    figures = result.figures
    assert figures["traffic"]["members_days_done"] == SMOKE.movements
    assert not figures["traffic"]["failures"]
    replicas = figures["replicas"]
    assert replicas["identical"]
    assert replicas["movements"] > SMOKE.movements  # relocations open a second movement
    assert replicas["participations"] > 0
    notices = figures["notices"]
    assert notices["each_once"]
    assert notices["planned"] == notices["received_distinct"] > SMOKE.movements
    struck = sorted((f["kind"], f["target"].split("/")[-1]) for f in figures["faults"])
    assert [kind for kind, _ in struck] == ["kill", "offline"]
    assert struck[0] == ("kill", "registry")
    assert figures["convergence"]["seconds_after_last_fault"] is not None
    assert figures["lag_ms"]["count"] > SMOKE.movements
    assert 0 < figures["lag_ms"]["p50"] <= figures["lag_ms"]["p99"]
    assert figures["cpu"]["per_movement_ms"] > 0
    assert figures["memory"]["per_node_mib"] > 0
    assert figures["links_recorded"] == "every node keeps a link with each of its partners"
