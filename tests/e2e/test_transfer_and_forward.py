"""Issue 15 (ADR 19) on live nodes: a completed transfer moves the member (transferred out
at Gushi, enrolled at Chaoyang), and a forward from Chaoyang to Changping makes Changping
expect the member while Gushi follows."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import uuid4

import pytest

from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_scenarios import CHANGPING, CHAOYANG, GUSHI, outflow, state_at

pytestmark = pytest.mark.e2e


async def _until(node: LocalNode, movement: str, state: str, what: str) -> None:
    async def reached() -> bool:
        try:
            return await state_at(node, movement) == state
        except AssertionError:  # not there yet
            return False

    await eventually(reached, what=what, within=60)


async def _enrol_twenty_times(chaoyang: LocalNode, movement: str, key: str | None) -> Counter[int]:
    assert chaoyang.http is not None
    http = chaoyang.http
    headers = {"Idempotency-Key": key} if key else {}
    responses = await asyncio.gather(
        *(http.post(f"/v1/movements/{movement}/enrol", json={}, headers=headers) for _ in range(20))
    )
    return Counter(r.status_code for r in responses)


async def test_a_completed_transfer_moves_the_member_and_a_forward_is_followed(
    network: NetworkFactory,
) -> None:
    nodes = await network([GUSHI, CHAOYANG, CHANGPING])
    gushi, chaoyang, changping = nodes[GUSHI], nodes[CHAOYANG], nodes[CHANGPING]
    branch = await gushi.org("陈集镇第一党支部")
    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")

    # -- the transfer ----------------------------------------------------------------------
    member = await gushi.member(branch, "王伟")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]
    await _until(chaoyang, movement, "awaiting_check_in", "Chaoyang expects the member")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200)
    await _until(gushi, movement, "active", "Gushi sees the check-in")
    await gushi.post(f"/v1/movements/{movement}/transfer/request", {"note": "已在京定居"}, 200)
    await _until(chaoyang, movement, "transfer_pending", "Chaoyang sees the request")
    early = await chaoyang.post(f"/v1/movements/{movement}/enrol", {}, 409)
    assert early["field"] == "movement_id"
    assert "transfer_pending" in early["message"]
    await chaoyang.post(f"/v1/movements/{movement}/transfer/reply", {"decision": "accepted"}, 200)
    await _until(gushi, movement, "transfer_accepted", "Gushi sees the acceptance")
    await gushi.post(f"/v1/movements/{movement}/transfer/complete", None, 200)
    await _until(chaoyang, movement, "closed_transferred", "Chaoyang sees the completion")

    queues = await chaoyang.get("/v1/queues")
    assert [q["reason"] for q in queues["to_do"] if q["movement_id"] == movement] == [
        "transfer completed: enrol the member"
    ]
    with_key = await _enrol_twenty_times(chaoyang, movement, f"enrol-{uuid4()}")
    without_key = await _enrol_twenty_times(chaoyang, movement, None)
    assert with_key == Counter({201: 20}), with_key
    assert without_key == Counter({200: 20}), without_key
    enrolled = await chaoyang.query(
        "SELECT member_id, org_id, transferred_from FROM members WHERE transfer_movement_id = $1",
        movement,
    )
    assert [(r["org_id"], r["transferred_from"]) for r in enrolled] == [(committee, GUSHI)]
    new_id = str(enrolled[0]["member_id"])
    found = await chaoyang.get("/v1/members?name=王伟")
    assert [(m["member_id"], m["status"]) for m in found["items"]] == [(new_id, "home")]
    present = await chaoyang.get(f"/v1/organizations/{committee}/present")
    assert [(p["member_id"], p["presence"]) for p in present] == [(new_id, "local")]

    refused = await gushi.post("/v1/movements", outflow(member, CHAOYANG), 409)
    assert refused["field"] == "member_id"
    assert "transferred out" in refused["message"]
    found = await gushi.get("/v1/members?name=王伟")
    assert [m["status"] for m in found["items"]] == ["transferred_out"]
    assert await gushi.get(f"/v1/organizations/{branch}/present") == []

    async def origin_sees_enrolment() -> bool:
        host = (await gushi.get(f"/v1/movements/{movement}"))["host_group"]
        return host is not None and (host.get("enrolment") or {}).get("member_id") == new_id

    await eventually(origin_sees_enrolment, what="Gushi sees the enrolment", within=60)

    # -- the forward -----------------------------------------------------------------------
    other = await gushi.member(branch, "刘洋")
    forwarded = (await gushi.post("/v1/movements", outflow(other, CHAOYANG), 201))["movement_id"]
    await _until(chaoyang, forwarded, "awaiting_check_in", "Chaoyang expects the second member")
    body = {"forwarded_to": CHANGPING, "reason": "该党员在昌平区工作"}
    await chaoyang.post(f"/v1/movements/{forwarded}/forward", body, 200)
    await _until(gushi, forwarded, "closed_relocated", "Gushi follows the forward")
    view = await gushi.get(f"/v1/movements/{forwarded}")
    successor = view["origin_group"]["next_movement_id"]
    assert successor is not None
    await _until(changping, successor, "awaiting_check_in", "Changping expects the member")
    visiting = await changping.get("/v1/members/visiting")
    assert [v["movement_id"] for v in visiting] == [successor]
    assert (await changping.get(f"/v1/movements/{successor}"))["origin_group"]["member"][
        "name"
    ] == "刘洋"
    await _until(chaoyang, forwarded, "closed_relocated", "Chaoyang closes its movement")
    away = await gushi.get("/v1/members/away")
    assert [(a["movement_id"], a["host"]) for a in away] == [(successor, CHANGPING)]
