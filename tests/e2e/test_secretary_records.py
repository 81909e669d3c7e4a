"""Members found and decided on, and the node's reports, on live nodes (#15, points 3 and
8): Gushi's secretary finds a member by name, phone ending and national ID, reads the
member's movements (with what Chaoyang did), updates one contact field without losing the
others; statistics count members and movements by period, branch, partner and state;
queues are scoped to the caller's organization and filtered by kind and partner; the audit
log keeps each changed field before and after and filters by actor and time. Bad input is
a 4xx naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e

CHANGPING = "110114"
NATIONAL_ID = "11010519491231002X"


async def test_a_secretary_finds_reads_and_updates_a_member_and_reads_the_reports(
    network: NetworkFactory,
) -> None:
    nodes = await network([GUSHI, CHAOYANG, CHANGPING])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    assert gushi.root_id is not None
    first = await gushi.org("陈集镇第一党支部")
    second = await gushi.org("陈集镇第二党支部")
    created = await gushi.post(
        "/v1/members",
        {
            "org_id": str(first),
            "name": "张建国",
            "joined_on": "2008-07-01",
            "phone": "+86 138 0000 1234",
            "email": "zhang@example.cn",
            "national_id": NATIONAL_ID,
        },
        201,
    )
    zhang = UUID(created["member_id"])
    li = await gushi.member(second, "李娜")
    first_secretary = await gushi.api_key("first", "secretary", first)
    second_secretary = await gushi.api_key("second", "secretary", second)

    to_chaoyang = (await gushi.post("/v1/movements", outflow(zhang, CHAOYANG), 201))["movement_id"]
    to_changping = (await gushi.post("/v1/movements", outflow(li, CHANGPING), 201))["movement_id"]
    await eventually(
        lambda: _state_is(chaoyang, to_chaoyang, "awaiting_check_in"), what="Chaoyang expects"
    )
    assert chaoyang.root_id is not None
    await chaoyang.post(
        f"/v1/movements/{to_chaoyang}/assign", {"org_id": str(chaoyang.root_id)}, 200
    )
    await chaoyang.post(f"/v1/movements/{to_chaoyang}/check-in", {}, 200)
    await eventually(
        lambda: _state_is(gushi, to_chaoyang, "active"), what="Gushi sees the check-in"
    )

    # 3 — found by name, by the end of the phone number, by national ID; never outside
    for params in ({"name": "建国"}, {"phone": "00001234"}, {"national_id": NATIONAL_ID}):
        found = (await gushi.request("GET", "/v1/members", params=params)).json()
        assert [m["member_id"] for m in found["items"]] == [str(zhang)], params
        assert "national_id" not in found["items"][0]
    outside = await gushi.request(
        "GET", "/v1/members", headers=second_secretary, params={"name": "建国"}
    )
    assert outside.status_code == 200
    assert outside.json()["items"] == []
    away = await gushi.request("GET", "/v1/members", params={"status": "away"})
    assert {m["member_id"] for m in away.json()["items"]} == {str(zhang), str(li)}

    detail = await gushi.request("GET", f"/v1/members/{zhang}", headers=first_secretary)
    assert detail.status_code == 200, detail.text
    [movement] = detail.json()["movements"]
    assert movement["movement_id"] == to_chaoyang
    assert movement["host_group"]["status"] == "checked_in"  # what Chaoyang did
    hidden = await gushi.request("GET", f"/v1/members/{zhang}", headers=second_secretary)
    assert hidden.status_code == 404

    patched = await gushi.request("PATCH", f"/v1/members/{zhang}", headers=first_secretary,
        body={"contact": {"phone": "+86 139 0000 5678", "address": "北京市朝阳区十八里店乡"}},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    contact = (await gushi.request("GET", f"/v1/members/{zhang}")).json()
    assert (contact["phone"], contact["email"], contact["address"]) == (
        "+86 139 0000 5678",
        "zhang@example.cn",  # the field not sent is kept
        "北京市朝阳区十八里店乡",
    )
    emptied = await gushi.request(
        "PATCH", f"/v1/members/{li}", body={"contact": {"phone": None}}
    )  # 李娜 has no other way to be reached
    assert emptied.status_code == 422
    assert emptied.json()["field"].startswith("contact")

    # 8 — statistics: members and movements, by period, branch, partner and state
    stats = (await gushi.request("GET", "/v1/statistics", params={"group_by": "partner"})).json()
    assert (stats["movements"], stats["members"]) == (2, 2)
    assert {g["key"]: g["movements"] for g in stats["groups"]} == {CHAOYANG: 1, CHANGPING: 1}
    by_branch = (await gushi.request("GET", "/v1/statistics", params={"group_by": "branch"})).json()
    assert {g["name"]: g["members"] for g in by_branch["groups"]} == {
        "陈集镇第一党支部": 1,
        "陈集镇第二党支部": 1,
    }
    by_state = (await gushi.request("GET", "/v1/statistics", params={"group_by": "state"})).json()
    assert {g["key"]: g["movements"] for g in by_state["groups"]} == {
        "active": 1,
        "awaiting_check_in": 1,
    }
    before = (
        await gushi.request("GET", "/v1/statistics", params={"to": "2026-02-01"})
    ).json()  # both left on 2026-02-20
    assert (before["movements"], before["members"]) == (0, 0)
    wrong = await gushi.request(
        "GET", "/v1/statistics", params={"from": "2026-03-01", "to": "2026-02-01"}
    )
    assert (wrong.status_code, wrong.json()["field"]) == (422, "to")

    # queues: the caller's organization, one kind, one partner
    mine = (await gushi.request("GET", "/v1/queues", headers=second_secretary)).json()
    assert {e["movement_id"] for q in mine.values() for e in q} == {to_changping}
    only = (
        await gushi.request("GET", "/v1/queues", params={"partner": CHAOYANG, "queue": "waiting"})
    ).json()
    assert set(only) == {"waiting"}
    assert {e["movement_id"] for e in only["waiting"]} <= {to_chaoyang}
    stranger = await gushi.request("GET", "/v1/queues", params={"partner": "999999"})
    assert (stranger.status_code, stranger.json()["field"]) == (422, "partner")

    # audit: before and after of each changed field, by actor and time
    since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    rows = (
        await gushi.request("GET", "/v1/audit", params={"target": str(zhang), "since": since})
    ).json()
    [update] = [r for r in rows if r["action"] == "member.update_contact"]
    changes = update["detail"]["changes"]
    assert changes["contact.phone"] == {"before": "+86 138 0000 1234", "after": "+86 139 0000 5678"}
    assert "contact.email" not in changes
    by_actor = (await gushi.request("GET", "/v1/audit", params={"actor": update["actor"]})).json()
    assert by_actor
    assert {r["actor"] for r in by_actor} == {update["actor"]}
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (await gushi.request("GET", "/v1/audit", params={"since": later})).json() == []


async def _state_is(node: LocalNode, movement_id: str, state: str) -> bool:
    response = await node.request("GET", f"/v1/movements/{movement_id}")
    return response.status_code == 200 and response.json()["state"] == state
