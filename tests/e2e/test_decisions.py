"""Decisions after lost contact, the member's report and the host's reply deadline on live
nodes (issue #15, points 4 and 5): the host loses contact, the origin's secretary is
prompted, records the suspension with its reason, the host sees it and both secretaries
are told once, no second prompt comes, and the reinstatement follows; the origin's report
interval brings the member's reminder and a recorded report moves it on; the host's own
reply deadline is the one the origin counts with."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.sinks import HttpSink, MailSink

from .conftest import NetworkFactory, channels
from .test_sync_scenarios import CHAOYANG, GUSHI

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
DEPARTED = TODAY - timedelta(days=200)
LOST_SINCE = TODAY - timedelta(days=190)  # six months and more: the prompt is due today


def _outflow(member: UUID) -> dict[str, Any]:
    return {
        "member_id": str(member),
        "destination": {"jurisdiction": CHAOYANG, "place": "北京"},
        "period": {"departed_on": DEPARTED.isoformat()},
        "contact": {"phone": "+86 138 0000 0000"},
        "reason": {"kind": "work", "text": "务工"},
    }


async def _reasons(node: LocalNode, movement: str) -> Counter[str]:
    rows = await node.query("SELECT reason FROM notices WHERE movement_id = $1", UUID(movement))
    return Counter(r["reason"] for r in rows)


async def test_lost_contact_suspension_reinstatement_report_and_the_hosts_deadline(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network(
        [GUSHI, CHAOYANG],
        **channels(mail, http, YIXIAN_SCHEDULE_SECONDS="1"),
        env_of={
            GUSHI: {"YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS": "60"},
            CHAOYANG: {"YIXIAN_DEADLINES__TRANSFER_REPLY_DAYS": "10"},
        },
    )
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("陈集镇第一党支部", contact_email="chenji@gushi.example")
    committee = await chaoyang.org(
        "驻京工委", kind="working_committee", contact_email="wc@chaoyang.example"
    )
    movements = {}
    for name in ("失联", "汇报", "转接"):
        member = await gushi.member(branch, name)
        movements[name] = (await gushi.post("/v1/movements", _outflow(member), 201))["movement_id"]

    async def known() -> bool:
        return await chaoyang.value("SELECT count(*) FROM movements") == len(movements)

    await eventually(known, what="the host knows every movement")
    for movement in movements.values():
        await chaoyang.post(
            f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200
        )
    lost = movements["失联"]
    await chaoyang.post(
        f"/v1/movements/{lost}/lost-contact", {"since": LOST_SINCE.isoformat()}, 200
    )

    # the origin's secretary is prompted, and sees it to do
    def subjects() -> Counter[tuple[str, str]]:
        return Counter((m.to[0], m.subject) for m in mail.mails)

    prompt = ("chenji@gushi.example", "失联失联已满六个月")

    async def prompted() -> bool:
        return subjects()[prompt] == 1

    await eventually(prompted, what="the suspension prompt", within=60)
    queue = await gushi.get("/v1/queues")
    assert {(e["movement_id"], e["reason"]) for e in queue["to_do"]} == {
        (lost, "lost contact 6 months: decide suspension")
    }

    # suspension with its reason; the host sees it; both secretaries are told once
    reason = "失联六个月，经多方查找仍无法联系"
    suspended = await gushi.post(f"/v1/movements/{lost}/suspend", {"reason": reason}, 200)
    assert suspended["origin_group"]["decision"]["standing"] == "suspended"

    async def host_sees(standing: str) -> bool:
        group = (await chaoyang.get(f"/v1/movements/{lost}"))["origin_group"]
        return bool(group["decision"] and group["decision"]["standing"] == standing)

    await eventually(lambda: host_sees("suspended"), what="the host sees the suspension")
    told = {("chenji@gushi.example", "失联已停止党籍"), ("wc@chaoyang.example", "失联已停止党籍")}

    async def both_told() -> bool:
        return set(subjects()) >= told

    await eventually(both_told, what="both secretaries told of the suspension")
    body = next(m.body for m in mail.mails if m.subject == "失联已停止党籍")
    assert reason in body

    # no second prompt while the scheduler keeps running (every second here)
    await asyncio.sleep(4)
    assert (await _reasons(gushi, lost))["suspension_prompt"] == 1
    assert subjects()[prompt] == 1
    assert (await gushi.get(f"/v1/movements/{lost}"))["queue"]["queue"] == "waiting"

    # reinstatement, seen by the host, told to both
    await gushi.post(f"/v1/movements/{lost}/reinstate", {"reason": "本人已与党组织恢复联系"}, 200)
    await eventually(lambda: host_sees("reinstated"), what="the host sees the reinstatement")
    reinstated = {
        ("chenji@gushi.example", "失联已恢复党籍"),
        ("wc@chaoyang.example", "失联已恢复党籍"),
    }

    async def both_told_again() -> bool:
        return set(subjects()) >= reinstated

    await eventually(both_told_again, what="both secretaries told of the reinstatement")
    assert {k: v for k, v in subjects().items() if v > 1} == {}, "a notice arrived twice"

    # the report interval (60 days, the origin's) brings the member's reminder; a recorded
    # report moves the next one on, and closes the overdue entry of the origin's queue
    reporting = movements["汇报"]

    async def reminded() -> bool:
        return (await _reasons(gushi, reporting))["yearly_report_due"] == 1

    await eventually(reminded, what="the member's report reminder", within=60)
    texts = [r.json()["text"] for r in http.requests if r.path == "/sms/messages"]
    assert any("汇报同志" in t and "报告" in t for t in texts)
    view = await gushi.get(f"/v1/movements/{reporting}")
    assert view["queue"]["reason"] == "the member's report is overdue"
    reported = await gushi.post(
        f"/v1/movements/{reporting}/report", {"reported_on": TODAY.isoformat()}, 200
    )
    assert reported["report_due_on"] == (TODAY + timedelta(days=60)).isoformat()
    assert reported["queue"] is None
    await asyncio.sleep(3)
    assert (await _reasons(gushi, reporting))["yearly_report_due"] == 1

    # the host's 10-day reply setting (the origin's own is 30) travels in the host group
    transfer = movements["转接"]

    async def active() -> bool:
        return (await gushi.get(f"/v1/movements/{transfer}"))["state"] == "active"

    await eventually(active, what="the origin sees the check-in")
    requested = await gushi.post(f"/v1/movements/{transfer}/transfer/request", {}, 200)
    due = requested["transfer_reply_due_on"]
    assert date.fromisoformat(due) - date.fromisoformat(
        requested["origin_group"]["transfer"]["requested_at"][:10]
    ) == timedelta(days=10)

    async def host_counts_the_same() -> bool:
        view = await chaoyang.get(f"/v1/movements/{transfer}")
        return bool(view["state"] == "transfer_pending" and view["transfer_reply_due_on"] == due)

    await eventually(host_counts_the_same, what="the host counts with its own deadline")
