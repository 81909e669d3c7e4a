"""All seven brief scenarios on three live nodes (Gushi, Putian, Chaoyang), every service a
real process, every node its own SASL principal, everything through the HTTP APIs.

Scenarios 1, 2, 3, 6 and 7 are the main job's (``make demo``): they assert each state on
both sides as they go. Scenario 2 runs as Putian → Chaoyang → Gushi, the network's third
node standing in for Changping. Then scenario 4 (Chaoyang offline while Gushi keeps
registering) and 5 (duplicates, reordering and loss repaired by anti-entropy); at the end
every movement's replicas are identical on its two nodes and every notice went out once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from yixian.localstack.demo import _scenarios
from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.sinks import HttpSink, MailSink

from .conftest import NetworkFactory, channels
from .test_sync_resilience import _register
from .test_sync_scenarios import CHAOYANG, GUSHI, PUTIAN

pytestmark = pytest.mark.e2e


async def _all_converged(a: LocalNode, b: LocalNode) -> bool:
    """Every movement between ``a`` and ``b`` at the same versions on both."""
    query = (
        "SELECT movement_id, origin_version, host_version FROM movements"
        " WHERE (origin = $1 AND host = $2) OR (origin = $2 AND host = $1) ORDER BY movement_id"
    )
    return [tuple(r) for r in await a.query(query, a.code, b.code)] == [
        tuple(r) for r in await b.query(query, a.code, b.code)
    ]


async def _shared(a: LocalNode, b: LocalNode) -> list[Any]:
    rows = await a.query(
        "SELECT movement_id FROM movements WHERE (origin = $1 AND host = $2)"
        " OR (origin = $2 AND host = $1) ORDER BY movement_id",
        a.code,
        b.code,
    )
    return [r["movement_id"] for r in rows]


async def test_the_seven_scenarios_on_three_live_nodes(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, PUTIAN, CHAOYANG], secure=True, **channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    said: list[str] = []

    # 1, 2, 3, 6, 7
    await _scenarios(nodes, said.append)
    assert any("transfer accepted and completed" in line for line in said)
    assert any("assigns M to the working committee" in line for line in said)
    assert any("Gushi keeps 王伟 as transferred out" in line for line in said)
    assert any("a concern was raised and answered" in line for line in said)
    assert any("membership stays with Gushi" in line for line in said)

    async def invited() -> bool:
        sms = [r.json() for r in http.requests if r.path.endswith("/messages")]
        return sum("邀请参加" in s["text"] for s in sms) == 5

    # 赵敏 and 刘洋 visiting, 陈静 and 周磊 local, and 王伟 enrolled after his transfer
    await eventually(invited, what="five invitations to the theme day", within=60)

    # 4: Chaoyang offline while Gushi keeps registering
    for process in chaoyang.processes:
        process.stop()
    movements = await _register(gushi, 300, CHAOYANG)
    for movement in movements[:50]:
        await gushi.post(f"/v1/movements/{movement}/details", {"contact": {"phone": "139"}}, 200)
    for process in chaoyang.processes:
        process.start()
    await eventually(
        lambda: _all_converged(gushi, chaoyang), what="Chaoyang catches up", within=180
    )
    out_of_order = await chaoyang.value(
        "SELECT count(*) FROM (SELECT movement_id, array_agg(version ORDER BY id) AS v"
        " FROM movement_history WHERE group_name = 'origin' AND movement_id = ANY($1::uuid[])"
        " GROUP BY movement_id) h"
        " WHERE h.v <> (SELECT array_agg(x ORDER BY x) FROM unnest(h.v) x)",
        movements,
    )
    assert out_of_order == 0, "a movement's versions arrived out of order"

    # 5: everything sent again (duplicates, in another order across partitions), and some
    # changes lost without a trace, found by anti-entropy
    await gushi.query("UPDATE outbox SET published_at = NULL WHERE destination = $1", CHAOYANG)
    gushi.relay.stop()
    for movement in movements[50:60]:
        await gushi.post(f"/v1/movements/{movement}/cancel", None, 200)
    await gushi.query(
        "DELETE FROM outbox WHERE published_at IS NULL AND destination = $1"
        " AND event_type = 'yixian.movement.origin_group.v1'"
        " AND movement_id = ANY($2::uuid[])",
        CHAOYANG,
        movements[50:60],
    )
    gushi.relay.start()
    await chaoyang.sync_post(f"/v1/links/{GUSHI}/anti-entropy")
    await eventually(
        lambda: _all_converged(gushi, chaoyang), what="anti-entropy repair", within=120
    )
    applied_twice = await chaoyang.value(
        "SELECT count(*) FROM (SELECT source, event_id FROM inbox WHERE outcome = 'applied'"
        " GROUP BY source, event_id HAVING count(*) > 1) d"
    )
    assert applied_twice == 0

    # every movement identical on its two nodes
    for a, b in itertools.combinations(nodes.values(), 2):
        shared = await _shared(a, b)
        for movement in shared:
            assert await a.replica(movement) == await b.replica(movement), (a.code, b.code)
    assert len(await _shared(gushi, chaoyang)) >= 300

    # every notice once: no two mails or texts alike, no notice key twice
    mails = Counter((tuple(m.to), m.subject) for m in mail.mails)
    assert mails
    assert max(mails.values()) == 1, mails.most_common(3)
    texts = Counter(
        (s["to"], s["text"])
        for s in (r.json() for r in http.requests if r.path.endswith("/messages"))
    )
    assert texts
    assert max(texts.values()) == 1, texts.most_common(3)
