"""Issue #15, points 7 and 8, on the real database: the origin node numbers certificates
(one number per movement, none twice, no gaps, under 20 requests at once), a registration
says why the member leaves, and secretaries read statistics, queues and the audit log by
period, branch, partner, kind, actor and time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from yixian.contracts import OriginGroup, decode

from .conftest import CHAOYANG, GUSHI, Node, outflow
from .test_one_effect import TIMES, at_once, count

pytestmark = pytest.mark.integration

CHANGPING = "110114"


async def certificates(node: Node) -> list[dict[str, Any]]:
    async with node.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM certificates ORDER BY sequence")
    return [dict(r) for r in rows]


async def test_the_origin_issues_the_certificate_and_the_reason_travels(gushi: Node) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.member(branch)
    body = outflow(member, reason={"kind": "other", "text": "照顾在京住院的父亲"})
    created = await gushi.post("/v1/movements", body, expect=201)
    group = created["origin_group"]
    assert group["certificate"] == {"number": f"{GUSHI}-2026-000001", "issued_on": "2026-03-01"}
    assert group["reason"] == {"kind": "other", "text": "照顾在京住院的父亲"}
    (row,) = await certificates(gushi)
    assert (row["number"], row["movement_id"], row["member_id"]) == (
        f"{GUSHI}-2026-000001",
        UUID(created["movement_id"]),
        member,
    )
    pair = next(r for r in await gushi.outbox() if r["destination"] == CHAOYANG)
    event = decode(bytes(pair["value"]))
    assert isinstance(event.data.group, OriginGroup)
    reason = event.data.group.reason
    assert reason is not None
    assert reason.text == "照顾在京住院的父亲"
    assert event.data.group.certificate is not None
    assert event.data.group.certificate.number == f"{GUSHI}-2026-000001"

    # a relocation's successor carries the same certificate and issues none
    successor = await gushi.post(
        f"/v1/movements/{created['movement_id']}/relocate",
        {
            "destination": {"jurisdiction": CHANGPING, "place": "回龙观"},
            "departed_on": "2026-02-25",
        },
        expect=201,
    )
    assert successor["origin_group"]["certificate"] == group["certificate"]
    assert successor["origin_group"]["reason"] == group["reason"]
    assert len(await certificates(gushi)) == 1

    # a caller never types a number, and a refused registration gives its number back
    other = await gushi.member(branch, "李卫东")
    typed = await gushi.call(
        "POST",
        "/v1/movements",
        json=outflow(
            other, certificate={"number": "411525-2026-000002", "issued_on": "2026-03-01"}
        ),
    )
    assert (typed.status_code, typed.json()["field"]) == (422, "certificate")
    late = await gushi.call(
        "POST", "/v1/movements", json=outflow(other, period={"departed_on": "2020-01-01"})
    )
    assert (late.status_code, late.json()["field"]) == (422, "period.departed_on")
    second = await gushi.post("/v1/movements", outflow(other), expect=201)
    assert second["origin_group"]["certificate"]["number"] == f"{GUSHI}-2026-000002"


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_registrations_of_one_member_issue_one_number(
    gushi: Node, idempotent: bool
) -> None:
    member = await gushi.member(await gushi.org("陈集镇第一党支部"))
    statuses = await at_once(gushi, "/v1/movements", outflow(member), idempotent=idempotent)
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    assert await count(gushi, "SELECT count(*) FROM movements WHERE member_id = $1", member) == 1
    (row,) = await certificates(gushi)
    assert row["number"] == f"{GUSHI}-2026-000001"
    # the refused registrations gave their numbers back: the next is 2
    assert await count(gushi, "SELECT last_sequence FROM certificate_counters") == 1


async def test_twenty_registrations_of_twenty_members_issue_twenty_numbers(gushi: Node) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    members = [await gushi.member(branch, f"党员{i:02d}") for i in range(TIMES)]

    async def register(member: UUID) -> httpx.Response:
        return await gushi.call("POST", "/v1/movements", json=outflow(member))

    responses = await asyncio.gather(*(register(m) for m in members))
    assert [r.status_code for r in responses] == [201] * TIMES, [r.text for r in responses]
    numbers = {r.json()["origin_group"]["certificate"]["number"] for r in responses}
    assert numbers == {f"{GUSHI}-2026-{n:06d}" for n in range(1, TIMES + 1)}
    rows = await certificates(gushi)
    assert {r["member_id"] for r in rows} == set(members)
    assert [r["sequence"] for r in rows] == list(range(1, TIMES + 1))


async def test_statistics_by_period_branch_partner_and_state(gushi: Node) -> None:
    first, second = await gushi.org("第一支部"), await gushi.org("第二支部")
    zhang, li = await gushi.member(first, "张"), await gushi.member(first, "李")
    wang = await gushi.member(second, "王")
    # 张 went away in February and came back on 2026-02-25, then left again for Changping
    went = await gushi.post("/v1/movements", outflow(zhang), expect=201)
    await gushi.post(
        f"/v1/movements/{went['movement_id']}/return", {"returned_on": "2026-02-25"}, expect=200
    )
    again = outflow(zhang, CHANGPING, period={"departed_on": "2026-02-27"})
    await gushi.post("/v1/movements", again, expect=201)
    await gushi.post("/v1/movements", outflow(li), expect=201)
    await gushi.post(
        "/v1/movements", outflow(wang, period={"departed_on": "2026-03-01"}), expect=201
    )

    everything = await gushi.get("/v1/statistics", params={"group_by": "branch"})
    assert (everything["movements"], everything["members"]) == (4, 3)
    assert [(g["name"], g["movements"], g["members"], g["open"]) for g in sorted(
        everything["groups"], key=lambda g: g["name"])] == [
        ("第一支部", 3, 2, 2),
        ("第二支部", 1, 1, 1),
    ]  # fmt: skip
    february = await gushi.get(
        "/v1/statistics", params={"from": "2026-02-01", "to": "2026-02-28", "group_by": "partner"}
    )
    assert (february["movements"], february["members"]) == (3, 2)  # 王 left in March
    assert {g["key"]: (g["movements"], g["members"]) for g in february["groups"]} == {
        CHAOYANG: (2, 2),
        CHANGPING: (1, 1),
    }
    march = await gushi.get("/v1/statistics", params={"from": "2026-03-01", "group_by": "state"})
    assert (march["movements"], march["members"]) == (3, 3)  # 张's first stay ended in February
    assert {g["key"] for g in march["groups"]} == {"awaiting_check_in"}
    to_chaoyang = await gushi.get("/v1/statistics", params={"partner": CHAOYANG})
    assert (to_chaoyang["movements"], to_chaoyang["members"]) == (3, 3)
    # a branch secretary counts its own branch only
    secretary = await gushi.key("second-secretary", "secretary", second)
    own = await gushi.get("/v1/statistics", secretary, params={"group_by": "branch"})
    assert (own["movements"], own["members"], len(own["groups"])) == (1, 1, 1)


async def test_queues_follow_the_callers_organization_and_filters(
    gushi: Node, chaoyang: Node
) -> None:
    first, second = await gushi.org("第一支部"), await gushi.org("第二支部")
    to_chaoyang = await gushi.post(
        "/v1/movements", outflow(await gushi.member(first, "张")), expect=201
    )
    await gushi.post(
        "/v1/movements", outflow(await gushi.member(second, "李"), CHANGPING), expect=201
    )
    group = OriginGroup.model_validate(to_chaoyang["origin_group"])
    await chaoyang.receive_origin_group(group)

    everything = await gushi.get("/v1/queues")
    assert sorted(i["member"] for q in everything.values() for i in q) == ["张", "李"]
    waiting = await gushi.get("/v1/queues", params={"queue": "waiting", "partner": CHANGPING})
    assert list(waiting) == ["waiting"]
    assert [(i["member"], i["partner"], i["org_name"]) for i in waiting["waiting"]] == [
        ("李", CHANGPING, "第二支部")
    ]
    secretary = await gushi.key("first-secretary", "secretary", first)
    mine = await gushi.get("/v1/queues", secretary)
    assert [i["member"] for q in mine.values() for i in q] == ["张"]
    stranger = await gushi.call("GET", "/v1/queues", secretary, params={"org_id": str(second)})
    assert stranger.status_code == 403

    # at the host: the root's intake until a branch checks the member in; then the branch's
    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")
    branch = await chaoyang.org("第三支部", parent=committee)
    branch_key = await chaoyang.key("third-branch", "secretary", branch)
    assert [i for q in (await chaoyang.get("/v1/queues", branch_key)).values() for i in q] == []
    intake = await chaoyang.get("/v1/queues", params={"queue": "to_do", "partner": GUSHI})
    assert [i["org_id"] for i in intake["to_do"]] == [str(chaoyang.root_id)]
    await chaoyang.post(
        f"/v1/movements/{group.movement_id}/check-in",
        {"host_org_id": str(committee), "branch_id": str(branch)},
        expect=200,
    )
    await chaoyang.post(
        f"/v1/movements/{group.movement_id}/lost-contact", {"since": "2026-02-28"}, expect=200
    )
    todo = await chaoyang.get("/v1/queues", branch_key, params={"queue": "to_do"})
    assert [(i["member"], i["org_name"]) for i in todo["to_do"]] == [("张", "第三支部")]
    ancestor = await chaoyang.get("/v1/queues", params={"queue": "to_do"})
    assert [i["movement_id"] for i in ancestor["to_do"]] == [str(group.movement_id)]


async def test_the_audit_log_keeps_before_and_after_and_filters(gushi: Node) -> None:
    branch = await gushi.org("第一支部")
    secretary = await gushi.key("branch-secretary", "secretary", branch)
    member = await gushi.member(branch)
    created = await gushi.post("/v1/movements", outflow(member), secretary, expect=201)
    movement = created["movement_id"]
    await gushi.post(
        f"/v1/movements/{movement}/details",
        {"place": "北京市朝阳区小红门乡"},
        secretary,
        expect=200,
    )
    await gushi.post(f"/v1/movements/{movement}/cancel", {}, secretary, expect=200)

    rows = await gushi.get("/v1/audit", params={"target": movement})
    by_action = {r["action"]: r["detail"]["changes"] for r in rows}
    assert by_action["movement.cancel"]["origin_group.status"] == {
        "before": "registered",
        "after": "cancelled",
    }
    assert by_action["movement.cancel"]["origin_group.version"] == {"before": 2, "after": 3}
    assert by_action["movement.update_details"]["origin_group.destination.place"] == {
        "before": "北京市朝阳区十八里店乡",
        "after": "北京市朝阳区小红门乡",
    }
    registered = by_action["movement.register"]
    assert registered["origin_group.certificate.number"] == {
        "before": None,
        "after": f"{GUSHI}-2026-000001",
    }
    assert registered["origin_group.reason.kind"] == {"before": None, "after": "work"}
    assert "origin_group.changed_at" not in registered

    actor = rows[0]["actor"]
    assert actor.startswith("key:")
    assert rows[0]["key_name"] == "branch-secretary"
    mine = await gushi.get("/v1/audit", params={"actor": actor})
    assert [r["action"] for r in mine] == [
        "movement.cancel",
        "movement.update_details",
        "movement.register",
    ]
    # the audit rows are stamped by the database's clock, not the node's: read them back
    async with gushi.pool.acquire() as conn:
        stamps = [
            r["at"]
            for r in await conn.fetch(
                "SELECT at FROM audit_log WHERE actor = $1 ORDER BY id", actor
            )
        ]
    since = (stamps[1] - timedelta(microseconds=1)).isoformat()
    until = stamps[2].isoformat()
    window = await gushi.get("/v1/audit", params={"actor": actor, "since": since, "until": until})
    assert [r["action"] for r in window] == ["movement.update_details"]
    nobody = await gushi.get(
        "/v1/audit", params={"actor": "key:00000000-0000-4000-8000-000000000000"}
    )
    assert nobody == []
    refused = await gushi.call("GET", "/v1/audit", secretary, params={"actor": actor})
    assert refused.status_code == 403
