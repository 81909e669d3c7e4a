"""The origin's decisions after lost contact, the member's report and the host's reply
deadline, through the HTTP API on PostgreSQL: what each answers, in which order the
refusals come (authentication, the body, the role, then the rule) and what the other node
sees once the group is shared."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from .conftest import CHAOYANG, GUSHI, Node, NodeFactory
from .test_one_effect import checked_in, registered, share

pytestmark = pytest.mark.integration

SUSPENSION = {"reason": "失联六个月，多方查找无果"}


async def _lost_at_host(gushi: Node, chaoyang: Node) -> str:
    movement_id = await checked_in(gushi, chaoyang)
    await chaoyang.post(
        f"/v1/movements/{movement_id}/lost-contact", {"since": "2026-02-25"}, expect=200
    )
    await share(chaoyang, gushi, movement_id)
    return str(movement_id)


async def test_suspension_after_the_prompt_is_seen_by_the_host_then_reinstatement(
    gushi: Node, chaoyang: Node
) -> None:
    movement = await _lost_at_host(gushi, chaoyang)
    gushi.clock.advance(days=183)
    queues = await gushi.get("/v1/queues")
    assert [e["reason"] for e in queues["to_do"]] == ["lost contact 6 months: decide suspension"]

    suspended = await gushi.post(f"/v1/movements/{movement}/suspend", SUSPENSION, expect=200)
    assert suspended["origin_group"]["decision"]["standing"] == "suspended"
    assert suspended["queue"]["queue"] == "waiting"
    await share(gushi, chaoyang, movement)  # what sync does with the origin group
    seen = await chaoyang.get(f"/v1/movements/{movement}")
    assert seen["origin_group"]["decision"]["reason"] == SUSPENSION["reason"]

    back = await gushi.post(
        f"/v1/movements/{movement}/reinstate", {"reason": "本人已恢复联系"}, expect=200
    )
    assert back["origin_group"]["decision"]["standing"] == "reinstated"
    assert back["origin_group"]["lost_contact_since"] is None
    again = await gushi.call(
        "POST", f"/v1/movements/{movement}/reinstate", json={"reason": "另一个理由"}
    )
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_transition"
    assert "needs a suspension first" in again.json()["message"]
    async with gushi.pool.acquire() as conn:
        actions = await conn.fetch(
            "SELECT action, outcome FROM audit_log WHERE target = $1 ORDER BY id", movement
        )
    assert [(r["action"], r["outcome"]) for r in actions][-3:] == [
        ("movement.suspend", "ok"),
        ("movement.reinstate", "ok"),
        ("movement.reinstate", "refused"),
    ]


async def test_refusals_come_in_order_and_name_why(gushi: Node, chaoyang: Node) -> None:
    movement = await _lost_at_host(gushi, chaoyang)
    path = f"/v1/movements/{movement}"
    reader = await gushi.key("reader", "auditor")
    other = await gushi.key("other-branch", "secretary", await gushi.org("另一支部"))

    missing = await gushi.call("POST", f"{path}/suspend", json={})
    assert (missing.status_code, missing.json().get("field")) == (422, "reason")
    bad_force = await gushi.call("POST", f"{path}/suspend", json={**SUSPENSION, "force": "maybe"})
    assert (bad_force.status_code, bad_force.json().get("field")) == (422, "force")
    for key in (reader, other):  # authorization before the rule: 403, not 409
        refused = await gushi.call("POST", f"{path}/reinstate", key, json={"reason": "x"})
        assert refused.status_code == 403, refused.text
    unknown = await gushi.call("POST", f"/v1/movements/{uuid4()}/suspend", json=SUSPENSION)
    assert unknown.status_code == 404
    early = await gushi.call("POST", f"{path}/suspend", json=SUSPENSION)
    assert (early.status_code, early.json().get("field")) == (409, "force")
    assert "due on 2026-08-27" in early.json()["message"]
    not_yet = await gushi.call("POST", f"{path}/remove", json={"reason": "x", "force": True})
    assert not_yet.status_code == 409
    assert "removal needs a suspension first" in not_yet.json()["message"]
    at_host = await chaoyang.call("POST", f"{path}/suspend", json=SUSPENSION)
    assert (at_host.status_code, at_host.json()["error"]) == (409, "not_owner")

    await gushi.post(f"{path}/suspend", {**SUSPENSION, "force": True}, expect=200)
    removal = await gushi.call("POST", f"{path}/remove", json={"reason": "仍无法联系"})
    assert (removal.status_code, removal.json().get("field")) == (409, "force")
    removed = await gushi.post(
        f"{path}/remove", {"reason": "仍无法联系", "force": True}, expect=200
    )
    assert removed["state"] == "closed_removed"


async def test_the_origin_marks_lost_contact_of_a_member_who_never_arrived(
    gushi: Node, chaoyang: Node
) -> None:
    movement = await registered(gushi, chaoyang)
    path = f"/v1/movements/{movement}"
    future = await gushi.call("POST", f"{path}/origin/lost-contact", json={"since": "2026-09-01"})
    assert (future.status_code, future.json().get("field")) == (422, "since")
    lost = await gushi.post(f"{path}/origin/lost-contact", {"since": "2026-02-25"}, expect=200)
    assert lost["state"] == "lost_contact"
    await share(gushi, chaoyang, movement)
    assert (await chaoyang.get(path))["state"] == "lost_contact"
    assert (await chaoyang.get("/v1/queues"))["to_do"][0]["reason"] == (
        "lost contact: keep trying to reach the member"
    )
    restored = await gushi.post(f"{path}/origin/restore-contact", expect=200)
    assert restored["state"] == "awaiting_check_in"


async def test_a_recorded_report_closes_the_reminder(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS", "60")
    gushi = await make_node(GUSHI)
    monkeypatch.delenv("YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS")
    chaoyang = await make_node(CHAOYANG)
    movement = await checked_in(gushi, chaoyang)  # departed 2026-02-20
    gushi.clock.advance(days=60)
    overdue = (await gushi.get("/v1/queues"))["overdue"]
    assert [(e["reason"], e["due_on"]) for e in overdue] == [
        ("the member's report is overdue", "2026-04-21")
    ]
    bad = await gushi.call("POST", f"/v1/movements/{movement}/report", json={"reported_on": 7})
    assert (bad.status_code, bad.json().get("field")) == (422, "reported_on")
    reported = await gushi.post(
        f"/v1/movements/{movement}/report", {"reported_on": "2026-04-29"}, expect=200
    )
    assert reported["report_due_on"] == "2026-06-28"
    assert (await gushi.get("/v1/queues"))["overdue"] == []


async def test_the_hosts_reply_setting_makes_the_request_overdue_at_the_origin(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIXIAN_DEADLINES__TRANSFER_REPLY_DAYS", "10")
    chaoyang = await make_node(CHAOYANG)
    monkeypatch.delenv("YIXIAN_DEADLINES__TRANSFER_REPLY_DAYS")
    gushi = await make_node(GUSHI)
    movement = await checked_in(gushi, chaoyang)  # the host group carries its 10 days
    requested = await gushi.post(f"/v1/movements/{movement}/transfer/request", expect=200)
    due = (gushi.clock.now + timedelta(days=10)).date().isoformat()
    assert requested["transfer_reply_due_on"] == due
    assert requested["origin_group"]["transfer"]["reply_due_on"] == due
    gushi.clock.advance(days=10)
    assert (await gushi.get("/v1/queues"))["overdue"] == []
    gushi.clock.advance(days=1)
    overdue = (await gushi.get("/v1/queues"))["overdue"]
    assert [(e["reason"], e["due_on"]) for e in overdue] == [("transfer reply overdue", due)]
