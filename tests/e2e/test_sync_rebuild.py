"""Rebuilding a node's partner-owned data from the pair topic."""

from __future__ import annotations

import subprocess
import sys
from uuid import uuid4

import pytest

from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_resilience import _all_converged, _register
from .test_sync_scenarios import CHAOYANG, GUSHI

pytestmark = pytest.mark.e2e


def _rebuild(node: LocalNode, partner: str) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "yixian.sync", "rebuild", "--partner", partner],
            env=node.env, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"rebuild hung: {str(exc.stderr)[-4000:]}") from exc
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


async def _snapshot(node: LocalNode) -> list[tuple[object, ...]]:
    rows = await node.query(
        "SELECT movement_id, origin_version, origin_group, host_version, host_group"
        " FROM movements ORDER BY movement_id"
    )
    return [tuple(r) for r in rows]


async def test_both_sides_rebuild_what_the_partner_owns(network: NetworkFactory) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    movements = await _register(gushi, 30)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="registrations arrive")
    committee = await chaoyang.org("工委", kind="working_committee")
    for movement in movements[:10]:
        await chaoyang.post(
            f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200
        )
        await chaoyang.post(
            f"/v1/movements/{movement}/participations",
            {
                "participation_id": str(uuid4()),
                "kind": "theme_day",
                "title": "主题党日",
                "attended_at": "2026-03-01T01:00:00Z",
            },
            201,
        )
    for movement in movements[10:15]:
        await gushi.post(f"/v1/movements/{movement}/cancel", None, 200)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="both sides settle")
    participations = await gushi.value("SELECT count(*) FROM participations")
    assert participations == 10
    before = {GUSHI: await _snapshot(gushi), CHAOYANG: await _snapshot(chaoyang)}

    for node, partner in ((chaoyang, GUSHI), (gushi, CHAOYANG)):
        node.sync.stop()
        local_before = await node.value("SELECT count(*) FROM outbox WHERE destination IS NULL")
        output = _rebuild(node, partner)
        assert "records" in output
        assert await _snapshot(node) == before[node.code], f"{node.code} rebuilt differently"
        assert (
            await node.value("SELECT count(*) FROM outbox WHERE destination IS NULL")
            == local_before
        )
        node.sync.start()
    assert await gushi.value("SELECT count(*) FROM participations") == participations
    # the restarted consumers find nothing new to apply
    await eventually(lambda: _all_converged(gushi, chaoyang), what="still converged")
    assert await _snapshot(gushi) == before[GUSHI]
    assert await _snapshot(chaoyang) == before[CHAOYANG]
