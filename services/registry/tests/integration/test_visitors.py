"""The unregistered visitor (ADR 21) on PostgreSQL: twenty identical claims at once make one
claim and one event; the origin's look and twenty confirmations at once make one decision,
one movement and one answer; nothing of the number is in any event."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from yixian.contracts import decode
from yixian.record import schema
from yixian.registry.bootstrap import node_config
from yixian.registry.entrypoints.answerer import ClaimAnswerer
from yixian.registry.service_layer.unit_of_work import TransactionRunner

from .conftest import CHAOYANG, GUSHI, Node
from .test_one_effect import TIMES, at_once, count

pytestmark = pytest.mark.integration
SYNC_MIGRATIONS = Path(__file__).parents[3] / "sync" / "src" / "yixian" / "sync" / "migrations"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def national_id(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


ZHANG = national_id("41152519850312123")


def _visitor(number: str = ZHANG) -> dict[str, Any]:
    return {"name": "张建国", "national_id": number, "contact": {"phone": "+86 139 0000 0002"}}


async def _with_sync_views(node: Node) -> None:
    """sync's migrations on the node's database: the views the registry reads claims by."""
    await schema.migrate(node.settings.database_url, "sync", SYNC_MIGRATIONS)


async def _claims_sent(node: Node) -> list[Any]:
    return [
        decode(bytes(r["value"])).data
        for r in await node.outbox()
        if r["event_type"].startswith("yixian.visitor.")
    ]


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_identical_claims_at_once_make_one(chaoyang: Node, idempotent: bool) -> None:
    await _with_sync_views(chaoyang)
    statuses = await at_once(chaoyang, "/v1/visitors", _visitor(), idempotent=idempotent)
    assert statuses == (Counter({201: TIMES}) if idempotent else Counter({201: 1, 200: TIMES - 1}))
    assert await count(chaoyang, "SELECT count(*) FROM visitors") == 1
    [claim] = await _claims_sent(chaoyang)
    assert (claim.origin, claim.name, claim.id_ending) == (GUSHI, "张建国", ZHANG[-4:])
    for row in await chaoyang.outbox():
        assert ZHANG[:14].encode() not in bytes(row["value"])
        assert row["topic"].endswith(f"{CHAOYANG}.to.{GUSHI}")  # the pair topic only
    listed = await chaoyang.get("/v1/visitors")
    assert [v["state"] for v in listed["visitors"]] == ["asked"]
    assert ZHANG not in str(listed)


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_confirmations_at_once_register_one_outflow(
    gushi: Node, chaoyang: Node, idempotent: bool
) -> None:
    await _with_sync_views(gushi)
    await _with_sync_views(chaoyang)
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.member(branch, phone="+86 138 0000 0001", national_id=ZHANG)
    await chaoyang.post("/v1/visitors", _visitor(), expect=201)
    [claim] = await _claims_sent(chaoyang)
    async with gushi.pool.acquire() as conn:  # what gushi's sync keeps of the claim
        await conn.execute(
            "INSERT INTO visitor_claims_received (claim_id, host, name, id_ending, asked_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            claim.claim_id, claim.host, claim.name, claim.id_ending, claim.asked_at,
        )  # fmt: skip
    answerer = ClaimAnswerer(
        gushi.pool, TransactionRunner(gushi.pool, node_config(gushi.settings)), gushi.clock, 1
    )
    assert await answerer.answer_once() == 1
    assert await answerer.answer_once() == 0  # looked at once
    [found] = (await gushi.get("/v1/visitor-claims"))["claims"]
    assert (found["result"], found["member_id"], found["answered"]) == ("match", str(member), False)
    assert await _claims_sent(gushi) == []  # a unique match waits for the secretary

    path = f"/v1/visitor-claims/{claim.claim_id}/confirm"
    statuses = await at_once(gushi, path, {"place": "北京"}, idempotent=idempotent)
    assert statuses == (Counter({201: TIMES}) if idempotent else Counter({201: 1, 200: TIMES - 1}))
    assert await count(gushi, "SELECT count(*) FROM movements WHERE member_id = $1", member) == 1
    [answer] = await _claims_sent(gushi)
    assert answer.result.value == "match"
    assert answer.host == CHAOYANG
    movement_id = await _movement_of(gushi, member)
    assert answer.movement_id == movement_id
    confirmed = await count(
        gushi,
        "SELECT count(*) FROM audit_log WHERE action = 'visitor_claim.confirm' AND outcome = 'ok'",
    )
    assert confirmed == 1


async def _movement_of(node: Node, member: UUID) -> UUID:
    async with node.pool.acquire() as conn:
        found: UUID = await conn.fetchval(
            "SELECT movement_id FROM movements WHERE member_id = $1", member
        )
    return found
