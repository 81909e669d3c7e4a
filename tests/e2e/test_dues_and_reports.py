"""Dues and the yearly report on live nodes (issue #16, points 3 and 4): the host records
dues a visiting member paid there (period, amount, receipt) and the origin sees, per member,
which months are paid where; the member's report given at the host reaches the origin,
which counts it as the report: its due date moves on by the origin's interval, its queue's
"report overdue" closes and its notify sends no further reminder."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
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


def _month(day: Any) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _outflow(member: UUID) -> dict[str, Any]:
    return {
        "member_id": str(member),
        "destination": {"jurisdiction": CHAOYANG, "place": "北京"},
        "period": {"departed_on": DEPARTED.isoformat()},
        "contact": {"phone": "+86 138 0000 0000"},
        "reason": {"kind": "work"},
    }


async def _reasons(node: LocalNode, movement: str) -> Counter[str]:
    rows = await node.query("SELECT reason FROM notices WHERE movement_id = $1", UUID(movement))
    return Counter(r["reason"] for r in rows)


async def test_dues_paid_at_the_host_and_a_report_given_there_reach_the_origin(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network(
        [GUSHI, CHAOYANG],
        **channels(mail, http, YIXIAN_SCHEDULE_SECONDS="1"),
        env_of={GUSHI: {"YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS": "60"}},
    )
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("陈集镇第一党支部", contact_email="chenji@gushi.example")
    committee = await chaoyang.org(
        "驻京工委", kind="working_committee", contact_email="wc@chaoyang.example"
    )
    member = await gushi.member(branch, "缴费")
    movement = (await gushi.post("/v1/movements", _outflow(member), 201))["movement_id"]

    async def known() -> bool:
        return await chaoyang.value("SELECT count(*) FROM movements") == 1

    await eventually(known, what="the host knows the movement")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200)

    # dues: a payment over the months of the stay, recorded once however often it is sent
    first, last = _month(DEPARTED), _month(TODAY)
    payment = {
        "period": {"from_month": first, "to_month": last},
        "amount_fen": 27000,
        "receipt": "BJ-2026-0042",
    }
    path = f"/v1/movements/{movement}/dues"
    answers = await asyncio.gather(*(chaoyang.post(path, payment, 200) for _ in range(5)))
    assert len({a["host_group"]["version"] for a in answers}) == 1
    overlap = {**payment, "period": {"from_month": last, "to_month": last}, "receipt": "BJ-2"}
    refused = await chaoyang.post(path, overlap, 422)
    assert refused["field"] == "period"

    async def origin_sees_dues() -> bool:
        dues = await gushi.get(f"/v1/members/{member}/dues")
        return bool(dues["months"]) and dues["months"][-1]["month"] == last

    await eventually(origin_sees_dues, what="the origin sees the dues paid at the host")
    dues = await gushi.get(f"/v1/members/{member}/dues")
    assert dues["months"][0]["month"] == first
    assert {p["host"] for m in dues["months"] for p in m["paid_at"]} == {CHAOYANG}
    assert [(p["host"], p["amount_fen"], p["receipt"]) for p in dues["payments"]] == [
        (CHAOYANG, 27000, "BJ-2026-0042")
    ]
    assert (await gushi.get(f"/v1/members/{member}"))["dues"]["payments"] == dues["payments"]

    # the report: due 60 days (the origin's interval) after departure, so the member is
    # reminded; the host receives the report, and the origin counts it
    async def reminded() -> bool:
        return (await _reasons(gushi, movement))["yearly_report_due"] == 1

    await eventually(reminded, what="the member's report reminder", within=60)
    view = await gushi.get(f"/v1/movements/{movement}")
    assert view["queue"]["reason"] == "the member's report is overdue"
    received = await chaoyang.post(
        f"/v1/movements/{movement}/report-received", {"reported_on": TODAY.isoformat()}, 200
    )
    assert received["host_group"]["report_received_on"] == TODAY.isoformat()

    async def origin_counts_it() -> bool:
        view = await gushi.get(f"/v1/movements/{movement}")
        return bool(view["report_due_on"] == (TODAY + timedelta(days=60)).isoformat())

    await eventually(origin_counts_it, what="the origin counts the report the host received")
    view = await gushi.get(f"/v1/movements/{movement}")
    assert view["queue"] is None
    assert (await gushi.get("/v1/queues"))["overdue"] == []
    await asyncio.sleep(3)  # the scheduler ticks every second: no further reminder
    assert (await _reasons(gushi, movement))["yearly_report_due"] == 1
    assert (await _reasons(chaoyang, movement))["yearly_report_due"] == 0
