"""Dues the host records (period, amount, receipt) and the report a member gives at the
host, through the HTTP API on PostgreSQL: what each answers and refuses, and what the origin
sees once the host group is shared (the e2e tests run the same over Kafka)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import CHAOYANG, GUSHI, Node, NodeFactory
from .test_one_effect import checked_in, share

pytestmark = pytest.mark.integration

PAYMENT = {
    "period": {"from_month": "2026-02", "to_month": "2026-03"},
    "amount_fen": 9000,
    "receipt": "BJ-2026-0001",
}


async def _member_of(gushi: Node, movement: Any) -> str:
    return str(
        (await gushi.get(f"/v1/movements/{movement}"))["origin_group"]["member"]["member_id"]
    )


async def test_dues_paid_at_the_host_are_seen_at_the_origin_per_month(
    gushi: Node, chaoyang: Node
) -> None:
    movement = await checked_in(gushi, chaoyang)  # departed 2026-02-20, checked in 03-01
    paid = await chaoyang.post(f"/v1/movements/{movement}/dues", PAYMENT, expect=200)
    assert paid["host_group"]["dues_paid"] == ["2026-02", "2026-03"]
    assert paid["host_group"]["dues"][0]["amount_fen"] == 9000
    await share(chaoyang, gushi, movement)  # what sync does with the host group

    member = await _member_of(gushi, movement)
    dues = await gushi.get(f"/v1/members/{member}/dues")
    assert [(m["month"], [p["host"] for p in m["paid_at"]]) for m in dues["months"]] == [
        ("2026-02", [CHAOYANG]),
        ("2026-03", [CHAOYANG]),
    ]
    assert dues["months"][1]["paid_at"][0]["payment"]["receipt"] == "BJ-2026-0001"
    assert [(p["host"], p["amount_fen"]) for p in dues["payments"]] == [(CHAOYANG, 9000)]
    detail = await gushi.get(f"/v1/members/{member}")
    assert detail["dues"]["months"] == dues["months"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**PAYMENT, "receipt": "BJ-2"}, 422, "period"),  # the months are paid already
        ({**PAYMENT, "period": {"from_month": "2026-03", "to_month": "2026-03"}}, 422, "period"),
        ({**PAYMENT, "amount_fen": 0}, 422, "amount_fen"),
        ({**PAYMENT, "amount_fen": -4500}, 422, "amount_fen"),
        ({**PAYMENT, "amount_fen": 10_000_000_000}, 422, "amount_fen"),
        ({**PAYMENT, "period": {"from_month": "2026-03", "to_month": "2026-02"}}, 422, "period"),
        ({**PAYMENT, "period": {"from_month": "2026-01", "to_month": "2026-01"}}, 422,
         "period.from_month"),
        ({**PAYMENT, "months": ["2026-02"]}, 422, "period"),
        ({"period": PAYMENT["period"]}, 422, "amount_fen"),
    ],
)  # fmt: skip
async def test_overlapping_months_and_absurd_amounts_are_refused_naming_the_field(
    gushi: Node, chaoyang: Node, body: dict[str, Any], status: int, field: str
) -> None:
    movement = await checked_in(gushi, chaoyang)
    await chaoyang.post(f"/v1/movements/{movement}/dues", PAYMENT, expect=200)
    refused = await chaoyang.call("POST", f"/v1/movements/{movement}/dues", json=body)
    assert (refused.status_code, refused.json().get("field")) == (status, field), refused.json()
    kept = await chaoyang.get(f"/v1/movements/{movement}")
    assert [p["receipt"] for p in kept["host_group"]["dues"]] == ["BJ-2026-0001"]


async def test_unpaid_dues_are_overdue_in_the_hosts_queue(gushi: Node, chaoyang: Node) -> None:
    movement = await checked_in(gushi, chaoyang)
    chaoyang.clock.advance(days=40)  # 2026-04-10, 09:00 in Beijing: March is due today
    assert (await chaoyang.get("/v1/queues"))["overdue"] == []
    chaoyang.clock.advance(days=1)
    overdue = (await chaoyang.get("/v1/queues"))["overdue"]
    assert [(e["reason"], e["due_on"]) for e in overdue] == [
        ("dues unpaid since 2026-03", "2026-04-10")
    ]
    one_month = {"period": {"from_month": "2026-03", "to_month": "2026-03"}, "amount_fen": 4500}
    paid = await chaoyang.post(f"/v1/movements/{movement}/dues", one_month, expect=200)
    assert paid["dues_overdue_month"] is None
    assert (await chaoyang.get("/v1/queues"))["overdue"] == []


async def test_a_report_given_at_the_host_closes_the_origins_overdue_report(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS", "60")
    gushi = await make_node(GUSHI)
    monkeypatch.delenv("YIXIAN_DEADLINES__REPORT_INTERVAL_DAYS")
    chaoyang = await make_node(CHAOYANG)
    movement = await checked_in(gushi, chaoyang)  # departed 2026-02-20
    gushi.clock.advance(days=60)
    chaoyang.clock.advance(days=60)
    overdue = (await gushi.get("/v1/queues"))["overdue"]
    assert [(e["reason"], e["due_on"]) for e in overdue] == [
        ("the member's report is overdue", "2026-04-21")
    ]
    path = f"/v1/movements/{movement}/report-received"
    refused = await gushi.call("POST", path, json={"reported_on": "2026-04-29"})
    assert (refused.status_code, refused.json()["error"]) == (409, "not_owner")
    future = await chaoyang.call("POST", path, json={"reported_on": "2026-06-29"})
    assert (future.status_code, future.json().get("field")) == (422, "reported_on")
    received = await chaoyang.post(path, {"reported_on": "2026-04-29"}, expect=200)
    assert received["host_group"]["report_received_on"] == "2026-04-29"
    await share(chaoyang, gushi, movement)
    assert (await gushi.get("/v1/queues"))["overdue"] == []
    assert (await gushi.get(f"/v1/movements/{movement}"))["report_due_on"] == "2026-06-28"
