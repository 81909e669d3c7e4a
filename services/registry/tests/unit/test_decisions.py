"""The origin's decisions after lost contact (lost contact at either side, suspension,
reinstatement, removal), the member's report, and the host's transfer-reply deadline, on
two nodes held in memory (``test_handlers.World``). No database, no broker."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from yixian.contracts import (
    REMOVED_STATUS,
    HostStatus,
    MovementState,
    MovementStep,
    Standing,
    movement_state,
)
from yixian.registry.domain import Deadlines, Invalid, InvalidTransition, MemberStatus
from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.routers.movements import STEPS
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Denied
from yixian.runtime.apikeys import Role

from .test_handlers import NOW, Node, World, outflow

SINCE = date(2026, 3, 8)
SIX_MONTHS_ON = NOW + timedelta(days=183)


async def _origin(world: World, step: str, body: s.Body | None) -> Any:
    """Take an origin step at Gushi with this body, and deliver the origin group."""
    assert world.movement_id is not None
    movement_id = world.movement_id
    found = next(candidate for candidate in STEPS if candidate.path == step)
    result = await world.gushi.run(lambda uow: found.run(uow, movement_id, body))
    world.deliver(world.gushi, world.chaoyang)
    return result


async def _lost_at_host(world: World) -> None:
    await world.register()
    await world.step("check-in")
    await world.chaoyang.run(
        lambda uow: handlers.mark_lost_contact(uow, world.movement_id, since=SINCE)  # type: ignore[arg-type]
    )
    world.deliver(world.chaoyang, world.gushi)


def _state_at(node: Node, world: World) -> MovementState:
    assert world.movement_id is not None
    kept = node.tables.movements[world.movement_id]
    return movement_state(kept.origin_group, kept.host_group)


def _origin_event_steps(world: World) -> list[str]:
    return [
        event.data.step
        for event, _, _ in world.gushi.tables.outbox
        if event.type == "yixian.movement.origin_group.v1"
    ]


async def test_lost_contact_prompt_suspension_seen_by_the_host_then_reinstatement() -> None:
    world = World()
    await _lost_at_host(world)
    world.gushi.now = SIX_MONTHS_ON
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [e["reason"] for e in queue["to_do"]] == ["lost contact 6 months: decide suspension"]

    result = await _origin(world, "suspend", s.Suspension(reason="失联六个月，多方查找无果"))

    decision = result.body["origin_group"]["decision"]
    assert (decision["standing"], decision["lost_contact_since"]) == ("suspended", "2026-03-08")
    assert decision["reason"] == "失联六个月，多方查找无果"
    assert result.body["queue"]["queue"] == "waiting"  # the prompt is closed
    seen = world.chaoyang.tables.movements[world.movement_id].origin_group  # type: ignore[index]
    assert seen is not None
    assert seen.decision is not None
    assert seen.decision.standing is Standing.SUSPENDED  # the host sees it

    again = await _origin(world, "suspend", s.Suspension(reason="失联六个月，多方查找无果"))
    assert again.body["origin_group"]["version"] == result.body["origin_group"]["version"]

    back = await _origin(world, "reinstate", s.Reinstatement(reason="本人已与党组织恢复联系"))
    group = back.body["origin_group"]
    assert group["decision"]["standing"] == "reinstated"
    assert group["decision"]["suspended_at"] == decision["suspended_at"]
    assert _origin_event_steps(world) == [
        MovementStep.REGISTERED,
        MovementStep.SUSPENDED,
        MovementStep.REINSTATED,
    ]


async def test_decisions_out_of_order_are_refused_naming_why() -> None:
    world = World()
    await _lost_at_host(world)
    with pytest.raises(InvalidTransition, match="reinstatement needs a suspension first"):
        await _origin(world, "reinstate", s.Reinstatement(reason="已恢复联系"))
    with pytest.raises(InvalidTransition, match="removal needs a suspension first") as early:
        await _origin(world, "remove", s.Removal(reason="仍失联", force=True))
    with pytest.raises(InvalidTransition, match="due on 2026-09-07; set force") as early:
        await _origin(world, "suspend", s.Suspension(reason="失联"))
    assert early.value.field == "force"
    await _origin(world, "suspend", s.Suspension(reason="失联", force=True))  # decided early
    with pytest.raises(InvalidTransition, match="already suspended"):
        await _origin(world, "suspend", s.Suspension(reason="另一个理由"))
    with pytest.raises(InvalidTransition, match=r"due on 2028-09-06\); set force") as removal:
        await _origin(world, "remove", s.Removal(reason="仍失联"))
    assert removal.value.field == "force"


async def test_suspension_needs_lost_contact() -> None:
    world = World()
    await world.register()
    await world.step("check-in")
    with pytest.raises(InvalidTransition, match="needs a member in lost contact"):
        await _origin(world, "suspend", s.Suspension(reason="失联", force=True))


async def test_removal_after_the_deadline_closes_the_movement() -> None:
    world = World()
    await _lost_at_host(world)
    world.gushi.now = SIX_MONTHS_ON
    await _origin(world, "suspend", s.Suspension(reason="失联六个月"))
    world.gushi.now = NOW + timedelta(days=183 + 730)
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [e["reason"] for e in queue["to_do"]] == ["lost contact over 2.5 years: decide removal"]
    removed = await _origin(world, "remove", s.Removal(reason="停止党籍两年后仍无法联系"))
    assert removed.body["state"] == MovementState.CLOSED_REMOVED.value
    assert _state_at(world.chaoyang, world) is MovementState.CLOSED_REMOVED
    again = await _origin(world, "remove", s.Removal(reason="停止党籍两年后仍无法联系"))
    assert again.body["origin_group"]["version"] == removed.body["origin_group"]["version"]
    with pytest.raises(InvalidTransition, match="closed"):
        await _origin(world, "reinstate", s.Reinstatement(reason="恢复"))
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert all(not entries for entries in queue.values())
    # the removed member is away nowhere and can be sent nowhere again
    assert world.member_id is not None
    status = await world.gushi.run(lambda uow: handlers.status_of(uow, world.member_id))
    assert status is MemberStatus.REMOVED
    assert world.movement_id is not None
    assert world.gushi.tables.movements[world.movement_id].origin_status == REMOVED_STATUS
    assert world.chaoyang.tables.movements[world.movement_id].origin_status == REMOVED_STATUS
    away = await world.gushi.run(lambda uow: queries.members_away(uow, None))
    assert away == []
    member = world.member_id
    with pytest.raises(InvalidTransition, match="removed"):
        await world.gushi.run(
            lambda uow: handlers.register_outflow(uow, **s.fields(outflow(member)))
        )


async def test_either_side_records_lost_contact_of_a_member_who_never_arrived() -> None:
    world = World()
    await world.register()
    result = await _origin(world, "origin/lost-contact", s.LostContact(since=date(2026, 3, 1)))
    assert result.body["state"] == MovementState.LOST_CONTACT.value
    assert result.body["origin_group"]["lost_contact_since"] == "2026-03-01"
    assert _state_at(world.chaoyang, world) is MovementState.LOST_CONTACT
    with pytest.raises(InvalidTransition, match="already recorded since 2026-03-01"):
        await _origin(world, "origin/lost-contact", s.LostContact(since=date(2026, 3, 2)))
    restored = await _origin(world, "origin/restore-contact", None)
    assert restored.body["state"] == MovementState.AWAITING_CHECK_IN.value

    other = World()
    await other.register()
    lost = await other.step("lost-contact")  # the host, for a member it expected
    assert lost.body["host_group"]["status"] == HostStatus.LOST_CONTACT.value
    back = await other.step("restore-contact")
    assert back.body["host_group"]["status"] == HostStatus.EXPECTED.value  # never checked in


async def test_a_future_lost_contact_day_names_the_field() -> None:
    world = World()
    await world.register()
    with pytest.raises(Invalid) as refused:
        await _origin(world, "origin/lost-contact", s.LostContact(since=date(2026, 4, 1)))
    assert refused.value.field == "since"


@pytest.mark.parametrize("step", ["suspend", "reinstate", "remove", "report"])
async def test_a_reader_or_another_subtree_may_not_decide(step: str) -> None:
    world = World()
    await _lost_at_host(world)
    bodies: dict[str, s.Body] = {
        "suspend": s.Suspension(reason="失联", force=True),
        "reinstate": s.Reinstatement(reason="恢复"),
        "remove": s.Removal(reason="仍失联", force=True),
        "report": s.Report(reported_on=date(2026, 3, 9)),
    }
    handler = getattr(handlers, {"report": "record_report"}.get(step, step))
    movement_id = world.movement_id
    for who in (
        world.gushi.key(Role.AUDITOR),
        world.gushi.key(Role.SECRETARY, world.gushi.other_branch),
    ):
        with pytest.raises(Denied):
            await world.gushi.run(
                lambda uow: handler(uow, movement_id, **s.fields(bodies[step])), who
            )
    assert _origin_event_steps(world) == [MovementStep.REGISTERED]


def test_a_decision_without_a_reason_names_the_field() -> None:
    for body in (s.Suspension, s.Reinstatement, s.Removal):
        with pytest.raises(ValueError, match="reason"):
            body.model_validate({"force": True} if body is not s.Reinstatement else {})
    with pytest.raises(ValueError, match="force"):
        s.Suspension.model_validate({"reason": "失联", "force": "maybe"})


async def test_a_recorded_report_moves_the_next_one_on() -> None:
    world = World()
    world.gushi.config = replace(world.gushi.config, deadlines=Deadlines(report_interval_days=60))
    await world.register()
    world.gushi.now = NOW + timedelta(days=60)  # departed 2026-02-20: due 2026-04-21
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [(e["reason"], e["due_on"]) for e in queue["overdue"]] == [
        ("check-in overdue", "2026-03-22")
    ]
    await world.step("check-in")
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [(e["reason"], e["due_on"]) for e in queue["overdue"]] == [
        ("the member's report is overdue", "2026-04-21")
    ]
    reported = await _origin(world, "report", s.Report(reported_on=date(2026, 5, 8)))
    assert reported.body["report_due_on"] == date(2026, 7, 7)
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert queue["overdue"] == []
    with pytest.raises(Invalid) as refused:
        await _origin(world, "report", s.Report(reported_on=date(2026, 5, 1)))
    assert refused.value.field == "reported_on"


async def test_the_hosts_reply_deadline_makes_the_origins_request_overdue() -> None:
    world = World()
    world.chaoyang.config = replace(
        world.chaoyang.config, deadlines=Deadlines(transfer_reply_days=10)
    )
    await world.register()
    await world.step("check-in")  # the host group carries the host's 10 days
    result = await world.step("transfer/request")  # the origin's own setting is 30 days
    assert result.body["transfer_reply_due_on"] == (NOW + timedelta(days=10)).date()
    assert result.body["origin_group"]["transfer"]["reply_due_on"] == "2026-03-20"
    world.gushi.now = NOW + timedelta(days=10)
    assert (await world.gushi.run(lambda uow: queries.work_queues(uow, None)))["overdue"] == []
    world.gushi.now = NOW + timedelta(days=11)
    queue = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [(e["reason"], e["due_on"]) for e in queue["overdue"]] == [
        ("transfer reply overdue", "2026-03-20")
    ]
