"""The registry's HTTP API on the real database: the movement's life from both sides."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import pytest

from yixian.contracts import OriginGroup, decode

from .conftest import CHAOYANG, GUSHI, Node, outflow

pytestmark = pytest.mark.integration


async def _registered(gushi: Node) -> tuple[UUID, dict]:
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.member(branch, national_id="11010519491231002X")
    movement = await gushi.post("/v1/movements", outflow(member), expect=201)
    return UUID(movement["movement_id"]), movement


async def test_outflow_registration_commits_state_events_and_audit(gushi: Node) -> None:
    movement_id, movement = await _registered(gushi)
    assert movement["state"] == "awaiting_check_in"
    assert movement["side"] == "origin"
    assert movement["origin_group"]["version"] == 1
    assert movement["origin_group"]["check_in_due_on"] == "2026-03-22"
    assert movement["origin_group"]["member"].get("national_id_hash") is None  # ADR 14
    assert "11010519491231002X" not in json.dumps(movement)

    rows = await gushi.outbox()
    topics = {r["topic"] for r in rows}
    names = gushi.settings.kafka.topics
    assert topics == {names.pair(GUSHI, CHAOYANG), names.local(GUSHI)}
    pair = next(r for r in rows if r["destination"] == CHAOYANG)
    assert pair["pairseq"] is None  # the relay numbers it as it publishes (test_relay)
    assert pair["record_key"] == str(movement_id).encode()
    event = decode(bytes(pair["value"]))
    assert event.source_node == GUSHI
    assert event.correlationid == movement_id

    audit = await gushi.get("/v1/audit")
    assert audit[0]["action"] == "movement.register"
    assert audit[0]["outcome"] == "ok"
    assert audit[0]["actor"] == f"key:{UUID(gushi.operator_key.split('_')[1])}"  # its id
    assert audit[0]["key_name"] == "operator"


async def test_an_activity_is_announced_locally_keyed_by_its_id(gushi: Node) -> None:
    """Not by ``link``: that key is the link's own events' (ADR 4)."""
    body = {
        "org_id": str(gushi.root_id),
        "kind": "theme_day",
        "title": "四月主题党日",
        "starts_at": "2026-04-10T01:00:00+00:00",
        "location": "县委党校",
    }
    activity = await gushi.post("/v1/activities", body, expect=201)
    [row] = await gushi.outbox()
    assert row["topic"] == gushi.settings.kafka.topics.local(GUSHI)
    assert row["destination"] is None
    assert row["record_key"] == activity["activity_id"].encode()
    assert decode(bytes(row["value"])).subject == activity["activity_id"]


async def test_both_sides_of_a_movement(gushi: Node, chaoyang: Node) -> None:
    movement_id, _ = await _registered(gushi)
    group = OriginGroup.model_validate(
        (await gushi.get(f"/v1/movements/{movement_id}"))["origin_group"]
    )
    await chaoyang.receive_origin_group(group)

    visiting = await chaoyang.get("/v1/members/visiting")
    assert [v["movement_id"] for v in visiting] == [str(movement_id)]
    queues = await chaoyang.get("/v1/queues")
    assert queues["to_do"][0]["reason"].startswith("member expected")

    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")
    branch = await chaoyang.org("第三支部", parent=committee)
    checked = await chaoyang.post(
        f"/v1/movements/{movement_id}/check-in",
        {"host_org_id": str(committee), "branch_id": str(branch)},
        expect=200,
    )
    assert checked["state"] == "active"
    assert checked["host_group"]["version"] == 1
    assert checked["host_group"]["branch"]["org_id"] == str(branch)

    chaoyang.clock.advance(days=3)
    for n in range(3):
        await chaoyang.post(
            f"/v1/movements/{movement_id}/participations",
            {
                "participation_id": str(uuid4()),
                "kind": "theme_day",
                "title": f"主题党日 {n + 1}",
                "attended_at": "2026-03-02T06:00:00+08:00",
            },
            expect=201,
        )
    present = await chaoyang.get(f"/v1/organizations/{committee}/present")
    assert [p["presence"] for p in present] == ["visiting"]
    view = await chaoyang.get(f"/v1/movements/{movement_id}")
    assert view["host_group"]["participation"]["attended"] == 3
    assert len(view["participations"]) == 3
    pair_rows = [r for r in await chaoyang.outbox() if r["destination"] == GUSHI]
    # check-in, then each attendance: the host group's new summary and the record itself
    assert len(pair_rows) == 7
    assert {decode(bytes(r["value"])).type for r in pair_rows} == {
        "yixian.movement.host_group.v1",
        "yixian.movement.participation_recorded.v1",
    }


async def test_the_other_sides_group_is_refused(gushi: Node, chaoyang: Node) -> None:
    movement_id, _ = await _registered(gushi)
    response = await gushi.call(
        "POST", f"/v1/movements/{movement_id}/check-in", json={"host_org_id": str(gushi.root_id)}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "not_owner"
    assert "only host node 110105 writes" in response.json()["message"]

    group = OriginGroup.model_validate(
        (await gushi.get(f"/v1/movements/{movement_id}"))["origin_group"]
    )
    await chaoyang.receive_origin_group(group)
    response = await chaoyang.call("POST", f"/v1/movements/{movement_id}/cancel")
    assert response.status_code == 409
    assert "only origin node 411525 writes" in response.json()["message"]


async def test_idempotency_key_returns_the_first_result(gushi: Node) -> None:
    branch = await gushi.org("支部")
    member = await gushi.member(branch)
    body = outflow(member)
    headers = {"Idempotency-Key": "register-zhang-2026-02"}
    first = await gushi.call("POST", "/v1/movements", json=body, headers=dict(headers), expect=201)
    again = await gushi.call("POST", "/v1/movements", json=body, headers=dict(headers), expect=201)
    assert again.json() == first.json()
    assert len(await gushi.outbox()) == 2  # one event, on the pair and the local topic
    other = await gushi.call(
        "POST", "/v1/movements", json={**body, "contact": {"phone": "1"}}, headers=dict(headers)
    )
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"


async def test_bad_input_names_the_field(gushi: Node) -> None:
    branch = await gushi.org("支部")
    member = await gushi.member(branch)
    cases = [
        (
            {**outflow(member), "destination": {"jurisdiction": "12345", "place": "x"}},
            "destination.jurisdiction",
        ),
        (
            {**outflow(member), "destination": {"jurisdiction": GUSHI, "place": "x"}},
            "destination.jurisdiction",
        ),
        ({**outflow(member), "surprise": 1}, "surprise"),
        (
            {
                **outflow(member),
                "period": {"departed_on": "2026-02-20", "expected_return_on": "2026-01-01"},
            },
            "period",
        ),
        ({k: v for k, v in outflow(member).items() if k != "contact"}, "contact"),
    ]
    for body, field in cases:
        response = await gushi.call("POST", "/v1/movements", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["field"].startswith(field), response.json()
    missing = await gushi.call("POST", "/v1/movements", json=outflow(uuid4()))
    assert missing.status_code == 404
    assert missing.json()["field"] == "member_id"
    bad_id = await gushi.call(
        "POST",
        "/v1/members",
        json={
            "org_id": str(branch),
            "name": "x",
            "joined_on": "2000-01-01",
            "national_id": "110105194912310021",
        },
    )
    assert bad_id.status_code == 422
    assert bad_id.json()["field"] == "national_id"


async def test_queries_away_present_statistics_and_history(gushi: Node) -> None:
    branch = await gushi.org("支部")
    away, home_id, back = [await gushi.member(branch, name=n) for n in ("甲", "乙", "丙")]
    first = await gushi.post("/v1/movements", outflow(away), expect=201)
    second = await gushi.post("/v1/movements", outflow(back), expect=201)
    await gushi.post(
        f"/v1/movements/{second['movement_id']}/return", {"returned_on": "2026-02-28"}, expect=200
    )

    listed = await gushi.get("/v1/members/away")
    assert [m["movement_id"] for m in listed] == [first["movement_id"]]
    present = await gushi.get(f"/v1/organizations/{branch}/present")
    assert {p["name"] for p in present} == {"乙", "丙"}
    assert {p["member_id"] for p in present} >= {str(home_id)}
    stats = await gushi.get("/v1/statistics", params={"group_by": "partner"})
    assert (stats["movements"], stats["members"]) == (2, 2)
    assert stats["groups"] == [{"key": CHAOYANG, "movements": 2, "members": 2, "open": 1}]
    by_state = await gushi.get("/v1/statistics", params={"group_by": "state"})
    assert [(g["key"], g["movements"]) for g in by_state["groups"]] == [
        ("awaiting_check_in", 1),
        ("closed_returned", 1),
    ]
    by_month = await gushi.get("/v1/statistics", params={"group_by": "month"})
    assert [(g["key"], g["movements"]) for g in by_month["groups"]] == [("2026-02", 2)]
    # returned on 2026-02-28: not away in March
    march = await gushi.get("/v1/statistics", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert (march["movements"], march["members"]) == (1, 1)
    view = await gushi.get(f"/v1/movements/{second['movement_id']}")
    assert [(h["group"], h["version"], h["status"]) for h in view["history"]] == [
        ("origin", 1, "registered"),
        ("origin", 2, "returned"),
    ]
    again = await gushi.call(
        "POST", f"/v1/movements/{second['movement_id']}/return", json={"returned_on": "2026-02-28"}
    )
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_transition"
    refusals = [a for a in await gushi.get("/v1/audit") if a["outcome"] == "refused"]
    assert refusals[0]["action"] == "movement.return"
