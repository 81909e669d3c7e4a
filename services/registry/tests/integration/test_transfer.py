"""Issue 15 (ADR 19) on PostgreSQL: a completed transfer moves the member, and the origin
follows a host's forward; each effect happens once under twenty requests at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import UUID

import pytest

from yixian.registry.bootstrap import node_config
from yixian.registry.entrypoints.follower import ForwardFollower
from yixian.registry.service_layer.unit_of_work import TransactionRunner

from .conftest import GUSHI, Node, outflow
from .test_one_effect import (
    TIMES,
    _transfer_accepted,
    at_once,
    count,
    effects,
    registered,
    share,
)

pytestmark = pytest.mark.integration
CHANGPING = "110114"


async def _transferred(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await _transfer_accepted(gushi, chaoyang)
    await gushi.post(f"/v1/movements/{movement_id}/transfer/complete", {}, expect=200)
    await share(gushi, chaoyang, movement_id)
    return movement_id


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_enrolments_at_once_make_one_member(
    gushi: Node, chaoyang: Node, idempotent: bool
) -> None:
    movement_id = await _transferred(gushi, chaoyang)
    before = await effects(chaoyang, movement_id)

    statuses = await at_once(
        chaoyang, f"/v1/movements/{movement_id}/enrol", {}, idempotent=idempotent
    )

    assert statuses == (Counter({201: TIMES}) if idempotent else Counter({201: 1, 200: TIMES - 1}))
    after = await effects(chaoyang, movement_id)
    assert after[1] == before[1] + 1  # one enrolment in the host group
    assert after[2] == before[2] + 2  # its event, on the pair topic and the local one
    assert await count(
        chaoyang, "SELECT count(*) FROM members WHERE transfer_movement_id = $1", movement_id
    ) == 1  # fmt: skip
    assert await count(chaoyang, "SELECT count(*) FROM audit_log WHERE action = 'movement.enrol'"
                       " AND outcome = 'ok'") == 1  # fmt: skip


async def test_the_enrolled_member_is_the_hosts_own(gushi: Node, chaoyang: Node) -> None:
    movement_id = await _transferred(gushi, chaoyang)
    body = await chaoyang.post(f"/v1/movements/{movement_id}/enrol", {}, expect=201)
    member = body["member"]
    assert (member["transferred_from"], member["transfer_movement_id"]) == (
        GUSHI,
        str(movement_id),
    )
    assert body["host_group"]["enrolment"]["member_id"] == member["member_id"]
    found = await chaoyang.get("/v1/members", params={"name": "张建国"})
    assert [(m["member_id"], m["status"]) for m in found["items"]] == [
        (member["member_id"], "home")
    ]
    present = await chaoyang.get(f"/v1/organizations/{chaoyang.root_id}/present")
    assert [(p["member_id"], p["presence"]) for p in present] == [(member["member_id"], "local")]
    stats = await chaoyang.get("/v1/statistics")
    assert stats["members_by_status"] == {
        "home": 1,
        "away": 0,
        "transferred_out": 0,
        "removed": 0,
        "transferred_in": 1,
    }
    detail = await chaoyang.get(f"/v1/members/{member['member_id']}")
    assert detail["transferred_from"] == GUSHI
    async with chaoyang.pool.acquire() as conn:  # notify reaches the member through the host
        reached = await conn.fetchval(
            "SELECT count(*) FROM member_contacts WHERE member_id = $1", UUID(member["member_id"])
        )
    assert reached == 1


async def test_the_origin_keeps_the_member_transferred_out(gushi: Node, chaoyang: Node) -> None:
    movement_id = await _transferred(gushi, chaoyang)
    async with gushi.pool.acquire() as conn:
        member = await conn.fetchval(
            "SELECT member_id FROM movements WHERE movement_id = $1", movement_id
        )
        org = await conn.fetchval("SELECT org_id FROM members WHERE member_id = $1", member)
    statuses = await at_once(gushi, "/v1/movements", outflow(member), idempotent=False)
    assert statuses == Counter({409: TIMES})
    refused = await gushi.call("POST", "/v1/movements", json=outflow(member))
    assert refused.json()["field"] == "member_id"
    assert "transferred out" in refused.json()["message"]
    found = await gushi.get("/v1/members", params={"status": "transferred_out"})
    assert [m["member_id"] for m in found["items"]] == [str(member)]
    assert await gushi.get(f"/v1/organizations/{org}/present") == []
    stats = await gushi.get("/v1/statistics")
    assert stats["members_by_status"] == {
        "home": 0,
        "away": 0,
        "transferred_out": 1,
        "removed": 0,
        "transferred_in": 0,
    }
    assert await count(
        gushi, "SELECT count(*) FROM member_contacts WHERE member_id = $1", member
    ) == 0  # fmt: skip
    assert await count(gushi, "SELECT count(*) FROM movements WHERE member_id = $1", member) == 1


async def test_enrolment_is_refused_before_completion_and_to_the_unauthorized(
    gushi: Node, chaoyang: Node
) -> None:
    movement_id = await _transfer_accepted(gushi, chaoyang)
    path = f"/v1/movements/{movement_id}/enrol"
    other = await chaoyang.org("另一支部")
    stranger = await chaoyang.key("stranger", "secretary", other)
    auditor = await chaoyang.key("auditor", "auditor")
    for key in (stranger, auditor):  # before anything else: not told the transfer's state
        response = await chaoyang.call("POST", path, key, json={})
        assert response.status_code == 403, response.text
    response = await chaoyang.call("POST", path, "yx_" + "0" * 32 + "_" + "x" * 40, json={})
    assert response.status_code == 401
    early = await chaoyang.call("POST", path, json={})
    assert early.status_code == 409, early.text
    assert early.json()["field"] == "movement_id"
    assert "transfer_accepted" in early.json()["message"]
    origin = await gushi.call("POST", path, json={})
    assert (origin.status_code, origin.json()["error"]) == (409, "not_owner")
    bad = await chaoyang.call("POST", path, json={"org_id": "not a uuid"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "org_id"
    assert await count(chaoyang, "SELECT count(*) FROM members") == 0


async def _forwarded(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await registered(gushi, chaoyang)
    forward = {"forwarded_to": CHANGPING, "reason": "该党员在昌平区工作"}
    await chaoyang.post(f"/v1/movements/{movement_id}/forward", forward, expect=200)
    await share(chaoyang, gushi, movement_id)
    return movement_id


async def test_the_follower_follows_a_forward_once(gushi: Node, chaoyang: Node) -> None:
    movement_id = await _forwarded(gushi, chaoyang)
    followers = [
        ForwardFollower(
            gushi.pool, TransactionRunner(gushi.pool, node_config(gushi.settings)), gushi.clock, 1
        )
        for _ in range(3)
    ]  # three registry instances at once

    followed = await asyncio.gather(*(f.follow_once() for f in followers))

    assert sum(followed) == 1
    view = await gushi.get(f"/v1/movements/{movement_id}")
    assert view["state"] == "closed_relocated"
    successor = view["origin_group"]["next_movement_id"]
    following = await gushi.get(f"/v1/movements/{successor}")
    assert (following["host"], following["state"]) == (CHANGPING, "awaiting_check_in")
    assert following["origin_group"]["previous_movement_id"] == str(movement_id)
    async with gushi.pool.acquire() as conn:
        topics = await conn.fetch(
            "SELECT destination FROM outbox WHERE movement_id = $1 AND destination IS NOT NULL",
            UUID(successor),
        )
        actors = await conn.fetch(
            "SELECT actor, outcome FROM audit_log WHERE action = 'movement.forward.follow'"
        )
    assert [r["destination"] for r in topics] == [CHANGPING]  # Changping now expects
    assert [tuple(r) for r in actors] == [("registry:forward-follower", "ok")]
    assert await followers[0].follow_once() == 0


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_confirmations_of_a_forward_follow_it_once(
    gushi: Node, chaoyang: Node, idempotent: bool
) -> None:
    movement_id = await _forwarded(gushi, chaoyang)
    statuses = await at_once(
        gushi, f"/v1/movements/{movement_id}/forward/follow", {}, idempotent=idempotent
    )
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    assert await count(
        gushi,
        "SELECT count(*) FROM movements WHERE origin_group->>'previous_movement_id' = $1",
        str(movement_id),
    ) == 1  # fmt: skip
