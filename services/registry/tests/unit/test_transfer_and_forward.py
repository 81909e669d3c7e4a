"""Issue 15 (ADR 19) in memory: a completed transfer moves the member (transferred out at
the origin, enrolled at the host), and the origin follows a host's forward."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from uuid import UUID

import pytest

from yixian.contracts import MovementStep, OriginStatus
from yixian.registry.domain import Invalid, InvalidTransition, MemberStatus, NotFound, NotOwner
from yixian.registry.domain.dates import local_date
from yixian.registry.domain.reporting import GroupBy
from yixian.registry.entrypoints import schemas as s
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Denied, Result
from yixian.runtime.apikeys import Role

from .test_handlers import CHANGPING, CHAOYANG, GUSHI, World, outflow


async def _transferred(world: World) -> UUID:
    await world.register()
    for step in ("check-in", "transfer/request", "transfer/reply", "transfer/complete"):
        await world.step(step)
    assert world.movement_id is not None
    return world.movement_id


async def _enrol(world: World, movement_id: UUID, who: Role = Role.OPERATOR) -> Result:
    node = world.chaoyang
    result: Result = await node.run(
        lambda uow: handlers.enrol(uow, movement_id, org_id=None), node.key(who)
    )
    return result


# -- the origin: transferred out -------------------------------------------------------------


async def test_a_transferred_member_is_transferred_out_and_cannot_leave_again() -> None:
    world = World()
    await _transferred(world)
    gushi = world.gushi
    found = await gushi.run(lambda uow: queries.search_members(uow, name="张建国"))
    assert [m["status"] for m in found["items"]] == [MemberStatus.TRANSFERRED_OUT.value]
    detail = await gushi.run(lambda uow: queries.get_member(uow, world.member_id))
    assert detail["status"] == "transferred_out"
    assert [m["state"] for m in detail["movements"]] == ["closed_transferred"]  # history kept
    queued = len(gushi.tables.outbox)
    with pytest.raises(InvalidTransition) as refused:
        await gushi.run(
            lambda uow: handlers.register_outflow(uow, **s.fields(outflow(world.member_id)))
        )
    assert refused.value.field == "member_id"
    assert "transferred out" in refused.value.message
    assert len(gushi.tables.movements) == 1
    assert len(gushi.tables.outbox) == queued


async def test_a_reader_is_denied_before_being_told_the_member_was_transferred() -> None:
    world = World()
    await _transferred(world)
    reader = world.gushi.key(Role.AUDITOR)
    with pytest.raises(Denied):
        await world.gushi.run(
            lambda uow: handlers.register_outflow(uow, **s.fields(outflow(world.member_id))),
            reader,
        )


async def test_present_and_statistics_leave_out_a_member_transferred_out() -> None:
    world = World()
    await world.add_member("李娜")  # stays home
    await _transferred(world)
    gushi = world.gushi
    present = await gushi.run(lambda uow: queries.present_in_area(uow, gushi.root.org_id))
    assert [p["name"] for p in present] == ["李娜"]
    stats = await gushi.run(lambda uow: queries.statistics(uow, None, group_by=GroupBy.STATE))
    assert stats["members_by_status"] == {
        "home": 1,
        "away": 0,
        "transferred_out": 1,
        "removed": 0,
        "transferred_in": 0,
    }
    assert [(g["key"], g["movements"]) for g in stats["groups"]] == [("closed_transferred", 1)]


# -- the host: enrolment ---------------------------------------------------------------------


async def test_the_host_enrols_the_member_once_from_the_movements_data() -> None:
    world = World()
    movement_id = await _transferred(world)
    chaoyang = world.chaoyang
    queues = await chaoyang.run(lambda uow: queries.work_queues(uow, None))
    assert [(q["movement_id"], q["reason"]) for q in queues["to_do"]] == [
        (str(movement_id), "transfer completed: enrol the member")
    ]
    queued = len(chaoyang.tables.outbox)

    result = await _enrol(world, movement_id)

    assert result.status == 201
    member = result.body["member"]
    assert member["name"] == "张建国"
    assert member["org_id"] == str(chaoyang.branch.org_id)  # where the member checked in
    assert member["phone"] == "+86 138 0000 0000"  # the contact the origin group carries
    assert member["national_id_masked"] is None  # no national ID crosses nodes (ADR 14)
    assert member["transferred_from"] == GUSHI
    assert member["transfer_movement_id"] == str(movement_id)
    assert UUID(member["member_id"]) != world.member_id  # a member of this node, its own id
    stored = chaoyang.tables.movements[movement_id]
    assert stored.host_group is not None
    assert stored.host_group.enrolment is not None
    assert str(stored.host_group.enrolment.member_id) == member["member_id"]
    (event, _, pair) = chaoyang.tables.outbox[queued]
    assert event.data.step == MovementStep.ENROLLED.value
    assert pair is not None
    assert pair[1] == GUSHI

    again = await _enrol(world, movement_id)
    assert again.status == 200
    assert again.body["member"]["member_id"] == member["member_id"]
    assert len(chaoyang.tables.outbox) == queued + 1
    assert len(chaoyang.tables.members) == 1

    found = await chaoyang.run(lambda uow: queries.search_members(uow, name="张建国"))
    assert [(m["member_id"], m["status"]) for m in found["items"]] == [
        (member["member_id"], "home")
    ]
    present = await chaoyang.run(lambda uow: queries.present_in_area(uow, chaoyang.root.org_id))
    assert [(p["presence"], p["member_id"]) for p in present] == [("local", member["member_id"])]
    queues = await chaoyang.run(lambda uow: queries.work_queues(uow, None))
    assert queues["to_do"] == []
    stats = await chaoyang.run(lambda uow: queries.statistics(uow, None))
    assert stats["members_by_status"] == {
        "home": 1,
        "away": 0,
        "transferred_out": 0,
        "removed": 0,
        "transferred_in": 1,
    }

    world.deliver(chaoyang, world.gushi)  # the origin sees the enrolment
    at_origin = world.gushi.tables.movements[movement_id].host_group
    assert at_origin is not None
    assert at_origin.enrolment is not None


async def test_enrolling_before_the_transfer_completed_is_refused_saying_why() -> None:
    world = World()
    await world.register()
    for step in ("check-in", "transfer/request", "transfer/reply"):
        await world.step(step)
    assert world.movement_id is not None
    with pytest.raises(InvalidTransition) as refused:
        await _enrol(world, world.movement_id)
    assert refused.value.field == "movement_id"
    assert "transfer_accepted" in refused.value.message
    assert "completed" in refused.value.message
    assert world.chaoyang.tables.members == {}


@pytest.mark.parametrize("complete", [False, True])
async def test_an_unauthorized_caller_is_denied_before_anything_else(complete: bool) -> None:
    world = World()
    await world.register()
    steps = ["check-in", "transfer/request", "transfer/reply"]
    for step in [*steps, "transfer/complete"] if complete else steps:
        await world.step(step)
    assert world.movement_id is not None
    movement_id = world.movement_id
    chaoyang = world.chaoyang
    for who in (chaoyang.key(Role.AUDITOR), chaoyang.key(Role.SECRETARY, chaoyang.other_branch)):
        with pytest.raises(Denied):
            await chaoyang.run(lambda uow: handlers.enrol(uow, movement_id, org_id=None), who)
    assert chaoyang.tables.members == {}


async def test_the_origin_cannot_enrol_and_the_host_enrols_only_in_its_subtree() -> None:
    world = World()
    movement_id = await _transferred(world)
    with pytest.raises(NotOwner):
        await world.gushi.run(lambda uow: handlers.enrol(uow, movement_id, org_id=None))
    chaoyang = world.chaoyang
    secretary = chaoyang.key(Role.SECRETARY, chaoyang.branch)
    with pytest.raises(NotFound) as elsewhere:  # outside the branch's subtree: not found
        await chaoyang.run(
            lambda uow: handlers.enrol(uow, movement_id, org_id=chaoyang.other_branch.org_id),
            secretary,
        )
    assert elsewhere.value.field == "org_id"
    result = await chaoyang.run(lambda uow: handlers.enrol(uow, movement_id), secretary)
    assert result.body["member"]["org_id"] == str(chaoyang.branch.org_id)


# -- forward: the origin follows -------------------------------------------------------------


async def test_the_origin_follows_a_forward_to_the_host_named() -> None:
    world = World()
    await world.register()
    await world.step("forward")
    assert world.movement_id is not None
    movement_id = world.movement_id
    gushi = world.gushi
    queues = await gushi.run(lambda uow: queries.work_queues(uow, None))
    assert [q["reason"] for q in queues["to_do"]] == [
        f"host forwarded the member to {CHANGPING}: follow to the new host"
    ]
    waiting = await gushi.uow().movements.forwards_to_follow([CHAOYANG, CHANGPING], 10)
    assert [m for m, _ in waiting] == [movement_id]

    result = await gushi.run(lambda uow: handlers.follow_forward(uow, movement_id, automatic=True))

    assert result.status == 201
    assert result.body["host"] == CHANGPING
    assert result.body["state"] == "awaiting_check_in"
    assert result.body["previous"]["state"] == "closed_relocated"
    successor = gushi.tables.movements[UUID(result.body["movement_id"])]
    previous = gushi.tables.movements[movement_id].origin_group
    assert successor.origin_group is not None
    assert previous is not None
    assert successor.origin_group.previous_movement_id == movement_id
    assert previous.next_movement_id == successor.movement_id
    assert successor.origin_group.period == previous.period  # the same stay goes on
    assert successor.origin_group.check_in_due_on == local_date(gushi.now) + timedelta(days=30)
    assert successor.origin_group.member == previous.member
    topics = [pair[1] for _, _, pair in gushi.tables.outbox[-2:] if pair]
    assert topics == [CHAOYANG, CHANGPING]  # the old host closes, the new one expects
    assert await gushi.uow().movements.forwards_to_follow([CHAOYANG, CHANGPING], 10) == []

    queued = len(gushi.tables.outbox)
    uow = gushi.uow()
    again = await handlers.follow_forward(uow, movement_id, automatic=True)
    assert (again.status, uow.nothing_changed) == (200, True)  # another instance was first
    assert len(gushi.tables.outbox) == queued
    with pytest.raises(InvalidTransition):  # a secretary confirming late is told it closed
        await world.step("forward/follow")

    # correcting the successor's expected return keeps the deadline the follow gave it
    due = successor.origin_group.check_in_due_on
    period = successor.origin_group.period.model_copy(
        update={"expected_return_on": date(2026, 12, 31)}
    )
    successor_id = successor.movement_id
    await gushi.run(
        lambda uow: handlers.update_details(
            uow, successor_id, place=None, host_org_hint=None, period=period, contact=None
        )
    )
    updated = gushi.tables.movements[successor_id].origin_group
    assert updated is not None
    assert updated.period.expected_return_on == date(2026, 12, 31)
    assert updated.check_in_due_on == due


async def test_a_forward_to_a_node_that_is_not_a_partner_waits_for_a_secretary() -> None:
    world = World()
    world.gushi.config = replace(world.gushi.config, partners=frozenset({CHAOYANG}))
    await world.register()
    await world.step("forward")
    assert world.movement_id is not None
    movement_id = world.movement_id
    assert await world.gushi.uow().movements.forwards_to_follow([CHAOYANG], 10) == []
    with pytest.raises(Invalid) as refused:
        await world.step("forward/follow")
    assert refused.value.field == "host_group.forwarded_to"
    assert CHANGPING in refused.value.message
    stored = world.gushi.tables.movements[movement_id].origin_group
    assert stored is not None
    assert stored.status is OriginStatus.REGISTERED


async def test_only_a_forwarded_movement_is_followed() -> None:
    world = World()
    await world.register()
    with pytest.raises(InvalidTransition):
        await world.step("forward/follow")
    assert world.movement_id is not None
    movement_id = world.movement_id
    uow = world.gushi.uow()
    result = await handlers.follow_forward(uow, movement_id, automatic=True)
    assert (result.status, uow.nothing_changed) == (200, True)
    assert len(world.gushi.tables.movements) == 1
