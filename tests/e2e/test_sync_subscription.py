"""Sync reads exactly its linked partners' pair topics (ADR 27): a partner linked while
sync runs is read from then on, without a restart; a topic named like a pair topic to the
node that nobody linked is never read."""

from __future__ import annotations

import httpx
import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_resilience import _produce, _register
from .test_sync_scenarios import CHANGPING, CHAOYANG, GUSHI, PUTIAN

pytestmark = pytest.mark.e2e

UNLINKED = "999999"


async def _applied_from(node: LocalNode, partner: str) -> int:
    return int(await node.value("SELECT count(*) FROM inbox WHERE source = $1", partner))


async def test_a_partner_linked_while_sync_runs_is_read_and_an_unlinked_topic_never(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    # Chaoyang starts linked with Gushi only; Putian already sends to Chaoyang
    only = {code: {"YIXIAN_PARTNERS": p} for code, p in
            {CHAOYANG: GUSHI, GUSHI: CHAOYANG, PUTIAN: CHAOYANG}.items()}  # fmt: skip
    nodes = await network([GUSHI, CHAOYANG, PUTIAN], env_of=only)
    gushi, chaoyang, putian = nodes[GUSHI], nodes[CHAOYANG], nodes[PUTIAN]
    unlinked = topic_names.pair(UNLINKED, CHAOYANG)  # the old pattern would have read it
    await _produce(local_stack, unlinked, [(b"k", b"not an event")])

    from_gushi = await _register(gushi, 2)
    from_putian = await _register(putian, 2)

    async def have(movements: list[str]) -> bool:
        rows = await chaoyang.query("SELECT movement_id::text AS id FROM movements")
        return set(movements) <= {r["id"] for r in rows}

    await eventually(lambda: have(from_gushi), what="Gushi's movements at Chaoyang")
    await eventually(
        lambda: putian.value(
            "SELECT bool_and(published_at IS NOT NULL) FROM outbox WHERE destination = $1"
            " AND event_type = 'yixian.movement.origin_group.v1'",
            CHAOYANG,
        ),
        what="Putian's events on its pair topic",
    )
    assert await _applied_from(chaoyang, PUTIAN) == 0, "no link with Putian yet"

    assert chaoyang.sync.url is not None
    async with httpx.AsyncClient(base_url=chaoyang.sync.url, timeout=30) as sync:
        refused = await sync.put(f"/v1/links/{UNLINKED}")
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "partner"
        itself = await sync.put(f"/v1/links/{CHAOYANG}")
        assert (itself.status_code, itself.json()["field"]) == (422, "partner")
        assert (await sync.put("/v1/links/11010x")).status_code == 422

        linked = await sync.put(f"/v1/links/{PUTIAN}")
        assert (linked.status_code, linked.json()["status"]) == (201, "linked")
        assert (await sync.put(f"/v1/links/{PUTIAN}")).status_code == 200
        # a partner linked before its topic exists does not break the consumer
        assert (await sync.put(f"/v1/links/{CHANGPING}")).status_code == 201

    await eventually(lambda: have(from_putian), what="Putian's movements at Chaoyang")
    more = await _register(gushi, 1)
    await eventually(lambda: have(more), what="Gushi's later movement at Chaoyang")

    assert await chaoyang.value("SELECT count(*) FROM inbox WHERE topic = $1", unlinked) == 0
    assert await chaoyang.value("SELECT count(*) FROM dead_letters") == 0
    partners = {view["partner"] for view in await chaoyang.sync_get("/v1/links")}
    assert partners == {GUSHI, PUTIAN, CHANGPING}
