"""Dues the host records for a visiting member (period, amount, receipt), which the origin
sees per month and host, the host's "dues overdue" queue entry, and the member's report
given at the host, which the origin counts: two nodes in memory (``test_handlers.World``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from yixian.contracts import DuesPeriod, MovementStep
from yixian.registry.domain import Conflict, Deadlines, Invalid, InvalidTransition
from yixian.registry.entrypoints import schemas as s
from yixian.registry.service_layer import handlers, queries

from .test_handlers import NOW, World


def _payment(first: str, last: str, fen: int = 4500, receipt: str | None = None) -> s.DuesPaid:
    return s.DuesPaid(
        period=DuesPeriod(from_month=first, to_month=last), amount_fen=fen, receipt=receipt
    )


async def _dues(world: World, body: s.DuesPaid) -> Any:
    movement_id = world.movement_id
    assert movement_id is not None
    result = await world.chaoyang.run(
        lambda uow: handlers.confirm_dues_paid(uow, movement_id, **s.fields(body))
    )
    world.deliver(world.chaoyang, world.gushi)
    return result


async def _checked_in() -> World:
    world = World()
    await world.register()
    await world.step("check-in")  # 2026-03-07, departed 2026-02-20
    return world


def _host_steps(world: World) -> list[str]:
    return [
        event.data.step
        for event, _, _ in world.chaoyang.tables.outbox
        if event.type == "yixian.movement.host_group.v1"
    ]


async def test_dues_paid_at_the_host_are_seen_at_the_origin_per_month_and_host() -> None:
    world = await _checked_in()
    first = await _dues(world, _payment("2026-02", "2026-03", 9000, "BJ-2026-0001"))
    host = first.body["host_group"]
    assert host["dues_paid"] == ["2026-02", "2026-03"]  # what an older reader understands
    assert host["dues"] == [
        {
            "period": {"from_month": "2026-02", "to_month": "2026-03"},
            "amount_fen": 9000,
            "receipt": "BJ-2026-0001",
            "recorded_at": NOW.isoformat().replace("+00:00", "Z"),
        }
    ]
    assert _host_steps(world)[-1] == MovementStep.DUES_PAID

    assert world.member_id is not None
    member_id = world.member_id
    seen = await world.gushi.run(lambda uow: queries.member_dues(uow, member_id))
    assert [m["month"] for m in seen["months"]] == ["2026-02", "2026-03"]
    paid_at = seen["months"][0]["paid_at"]
    assert [(p["host"], p["payment"]["amount_fen"]) for p in paid_at] == [("110105", 9000)]
    assert seen["payments"][0]["receipt"] == "BJ-2026-0001"
    detail = await world.gushi.run(lambda uow: queries.get_member(uow, member_id))
    assert detail["dues"] == {k: v for k, v in seen.items() if k != "member_id"}


async def test_the_same_payment_again_changes_nothing_and_an_overlap_is_refused() -> None:
    world = await _checked_in()
    first = await _dues(world, _payment("2026-02", "2026-03", receipt="BJ-1"))
    again = await _dues(world, _payment("2026-02", "2026-03", receipt="BJ-1"))
    assert again.body["host_group"]["version"] == first.body["host_group"]["version"]
    assert _host_steps(world).count(MovementStep.DUES_PAID) == 1

    with pytest.raises(Conflict, match="2026-03 already recorded paid") as overlap:
        await _dues(world, _payment("2026-03", "2026-03", receipt="BJ-2"))
    assert overlap.value.field == "period"
    with pytest.raises(Conflict) as other_amount:  # the same months for another amount
        await _dues(world, _payment("2026-02", "2026-03", 1, receipt="BJ-1"))
    assert other_amount.value.field == "period"


async def test_a_receipt_is_one_payments() -> None:
    world = await _checked_in()
    await _dues(world, _payment("2026-02", "2026-02", receipt="BJ-1"))
    with pytest.raises(Conflict) as receipt:
        await _dues(world, _payment("2026-03", "2026-03", receipt="BJ-1"))
    assert receipt.value.field == "receipt"
    await _dues(world, s.DuesPaid(months=["2026-03"]))  # confirmed without an amount
    with pytest.raises(Conflict, match="2026-03") as overlap:
        await _dues(world, _payment("2026-03", "2026-03", receipt="BJ-2"))
    assert overlap.value.field == "period"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_payment("2026-01", "2026-01"), "period.from_month"),  # departed in February
        (_payment("2026-03", "2026-04"), "period.to_month"),  # April is still to come
        (s.DuesPaid(period=DuesPeriod(from_month="2026-02", to_month="2026-02")), "amount_fen"),
        (s.DuesPaid(months=["2026-02"], amount_fen=100), "amount_fen"),
        (s.DuesPaid(), "period"),
    ],
)
async def test_a_payment_outside_the_stay_or_without_an_amount_is_refused(
    body: s.DuesPaid, field: str
) -> None:
    world = await _checked_in()
    with pytest.raises(Invalid) as refused:
        await _dues(world, body)
    assert refused.value.field == field


@pytest.mark.parametrize("fen", [0, -100, 10_000_001])
def test_an_amount_of_nothing_or_absurdly_much_is_refused_by_the_body(fen: int) -> None:
    with pytest.raises(ValueError, match="amount_fen"):
        s.DuesPaid.model_validate(
            {"period": {"from_month": "2026-02", "to_month": "2026-02"}, "amount_fen": fen}
        )
    with pytest.raises(ValueError, match="period"):
        s.DuesPaid.model_validate(
            {"period": {"from_month": "2026-03", "to_month": "2026-02"}, "amount_fen": 100}
        )


async def test_a_payment_over_two_years_is_refused() -> None:
    world = await _checked_in()
    world.chaoyang.now = NOW + timedelta(days=800)
    with pytest.raises(Invalid) as refused:
        await _dues(world, _payment("2026-02", "2028-03"))
    assert refused.value.field == "period"


async def test_unpaid_dues_are_overdue_in_the_hosts_queue_until_recorded() -> None:
    world = await _checked_in()
    world.chaoyang.now = NOW + timedelta(days=31)  # 2026-04-10: March is due today
    queue = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None))
    assert queue["overdue"] == []
    world.chaoyang.now = NOW + timedelta(days=32)  # 2026-04-11
    queue = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None))
    assert [(e["reason"], e["due_on"]) for e in queue["overdue"]] == [
        ("dues unpaid since 2026-03", "2026-04-10")
    ]
    at_origin = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert at_origin["overdue"] == []  # the origin's queue does not count the host's dues
    paid = await _dues(world, _payment("2026-03", "2026-03"))
    assert paid.body["dues_overdue_month"] is None
    queue = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None))
    assert queue["overdue"] == []


async def test_the_hosts_due_day_is_its_own_setting() -> None:
    world = await _checked_in()
    world.chaoyang.config = replace(world.chaoyang.config, deadlines=Deadlines(dues_due_day=20))
    world.chaoyang.now = NOW + timedelta(days=35)  # 2026-04-14
    queue = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None))
    assert queue["overdue"] == []


async def test_a_member_not_checked_in_pays_no_dues_and_gives_no_report_here() -> None:
    world = World()
    await world.register()
    with pytest.raises(InvalidTransition):
        await _dues(world, _payment("2026-02", "2026-02"))
    movement_id = world.movement_id
    assert movement_id is not None
    with pytest.raises(InvalidTransition):
        await world.chaoyang.run(
            lambda uow: handlers.record_report_received(
                uow, movement_id, reported_on=date(2026, 3, 1)
            )
        )


async def _report_received(world: World, day: date) -> Any:
    movement_id = world.movement_id
    assert movement_id is not None
    result = await world.chaoyang.run(
        lambda uow: handlers.record_report_received(uow, movement_id, reported_on=day)
    )
    world.deliver(world.chaoyang, world.gushi)
    return result


async def test_a_report_given_at_the_host_closes_the_origins_overdue_report() -> None:
    world = await _checked_in()
    world.gushi.config = replace(world.gushi.config, deadlines=Deadlines(report_interval_days=60))
    world.gushi.now = world.chaoyang.now = NOW + timedelta(days=60)  # due 2026-04-21
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [(e["reason"], e["due_on"]) for e in queue["overdue"]] == [
        ("the member's report is overdue", "2026-04-21")
    ]
    received = await _report_received(world, date(2026, 5, 8))
    assert received.body["host_group"]["report_received_on"] == "2026-05-08"
    assert _host_steps(world)[-1] == MovementStep.REPORT_RECEIVED
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert queue["overdue"] == []
    assert world.movement_id is not None
    movement_id = world.movement_id
    at_origin = await world.gushi.run(lambda uow: queries.get_movement(uow, movement_id))
    assert at_origin["report_due_on"] == date(2026, 7, 7)  # the origin's 60 days

    again = await _report_received(world, date(2026, 5, 8))
    assert again.body["host_group"]["version"] == received.body["host_group"]["version"]
    with pytest.raises(Invalid) as earlier:
        await _report_received(world, date(2026, 5, 1))
    assert earlier.value.field == "reported_on"
    with pytest.raises(Invalid) as future:
        await _report_received(world, date(2026, 6, 1))
    assert future.value.field == "reported_on"
