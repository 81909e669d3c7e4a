"""Feedback in memory: a visiting member's concern raised with the host, answered by the
host's secretary (the first answer stamps the time to first answer), closed; the host group
tells the origin counts and times, a concern's text only where the member shared it; the
queue flags what waits past the deadline; the statistics give the median and p90."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import Deadlines, HostGroupChanged, MovementStep
from yixian.registry.domain import (
    Addressee,
    Concern,
    FeedbackState,
    Invalid,
    InvalidTransition,
    NotFound,
)
from yixian.registry.domain.feedback import answer_statistics, percentile
from yixian.registry.entrypoints import schemas as s
from yixian.registry.service_layer import feedback
from yixian.registry.service_layer.unit_of_work import Denied, Result
from yixian.runtime.apikeys import Role

from .test_handlers import NOW, Node, World


async def _visiting() -> World:
    world = World()
    await world.register()
    await world.step("check-in")
    return world


async def _raise(
    world: World, text: str = "住房补贴申请无人答复", *, share: bool = False
) -> Result:
    host = world.chaoyang
    body = s.NewConcern(
        movement_id=world.movement_id, addressed_to=Addressee.HOST, text=text,
        share_with_origin=share,
    )  # fmt: skip
    result: Result = await host.run(lambda uow: feedback.raise_concern(uow, **s.fields(body)))
    world.deliver(host, world.gushi)
    return result


async def _answer(world: World, feedback_id: str, text: str, after: timedelta) -> Result:
    host = world.chaoyang
    host.now = NOW + after
    result: Result = await host.run(
        lambda uow: feedback.answer(uow, UUID(feedback_id), text=text),
        host.key(Role.SECRETARY, host.branch),
    )
    world.deliver(host, world.gushi)
    return result


def _origin_sees(world: World) -> dict[str, Any]:
    assert world.movement_id is not None
    group = world.gushi.tables.movements[world.movement_id].host_group
    assert group is not None
    assert group.feedback is not None
    return group.feedback.model_dump(mode="json")


async def test_a_concern_raised_answered_and_closed_tells_the_origin_counts_not_text() -> None:
    world = await _visiting()
    host = world.chaoyang
    raised = await _raise(world)
    assert raised.status == 201
    concern = raised.body
    assert (concern["state"], concern["org_id"]) == ("open", str(host.branch.org_id))
    seen = _origin_sees(world)
    assert (seen["raised"], seen["open"], seen["answered"], seen["shared"]) == (1, 1, 0, [])

    answered = await _answer(
        world, concern["feedback_id"], "已转街道办，三日内答复", timedelta(minutes=30)
    )
    assert answered.status == 201
    assert answered.body["state"] == "answered"
    assert answered.body["first_answer_seconds"] == 1800
    event, _, _ = host.tables.outbox[-1]
    assert isinstance(event.data, HostGroupChanged)
    assert event.data.step == MovementStep.FEEDBACK_ANSWERED
    seen = _origin_sees(world)
    assert (seen["answered"], seen["open"], seen["last_first_answer_seconds"]) == (1, 0, 1800)
    assert "住房" not in str(seen)

    # a second answer stamps nothing new but is a new version (the member hears of it)
    second = await _answer(world, concern["feedback_id"], "街道办已受理", timedelta(hours=2))
    assert second.body["first_answer_seconds"] == 1800
    assert [a["text"] for a in second.body["answers"]] == ["已转街道办，三日内答复", "街道办已受理"]
    assert _origin_sees(world)["answers"] == 2

    closed = await host.run(lambda uow: feedback.close(uow, UUID(concern["feedback_id"])))
    world.deliver(host, world.gushi)
    assert closed.body["state"] == "closed"
    assert _origin_sees(world)["closed"] == 1
    with pytest.raises(InvalidTransition) as refused:
        await _answer(world, concern["feedback_id"], "补充答复", timedelta(hours=3))
    assert refused.value.field == "feedback_id"


async def test_a_shared_concern_reaches_the_origin_with_its_text() -> None:
    world = await _visiting()
    await _raise(world, "希望参加本地党课", share=True)
    (shared,) = _origin_sees(world)["shared"]
    assert (shared["text"], shared["state"]) == ("希望参加本地党课", "open")


async def test_the_same_concern_or_answer_again_is_one_effect() -> None:
    world = await _visiting()
    first = await _raise(world)
    again = await _raise(world)
    assert (again.status, again.body["feedback_id"]) == (200, first.body["feedback_id"])
    assert len(world.chaoyang.tables.feedback) == 1
    one = await _answer(world, first.body["feedback_id"], "已答复", timedelta(minutes=5))
    versions = len(world.chaoyang.tables.outbox)
    repeat = await _answer(world, first.body["feedback_id"], "已答复", timedelta(minutes=6))
    assert (one.status, repeat.status, repeat.body["duplicate"]) == (201, 200, True)
    assert len(world.chaoyang.tables.feedback_answers) == 1
    assert len(world.chaoyang.tables.outbox) == versions


async def test_authorization_comes_first_and_bad_input_names_its_field() -> None:
    world = await _visiting()
    host = world.chaoyang
    body = s.NewConcern(movement_id=world.movement_id, addressed_to=Addressee.ORIGIN, text="x")
    for who in (host.key(Role.AUDITOR), host.key(Role.SECRETARY, host.other_branch)):
        with pytest.raises(Denied):
            await host.run(lambda uow: feedback.raise_concern(uow, **s.fields(body)), who)
    with pytest.raises(Invalid) as wrong_side:
        await host.run(lambda uow: feedback.raise_concern(uow, **s.fields(body)))
    assert wrong_side.value.field == "addressed_to"
    with pytest.raises(NotFound) as unknown:
        await host.run(lambda uow: feedback.answer(uow, uuid4(), text="答复"))
    assert unknown.value.field == "feedback_id"
    nothing = s.NewConcern(addressed_to=Addressee.ORIGIN, text="x")
    with pytest.raises(Invalid) as missing:
        await host.run(lambda uow: feedback.raise_concern(uow, **s.fields(nothing)))
    assert missing.value.field == "movement_id"
    concern = await _raise(world)
    with pytest.raises(Denied):
        await host.run(
            lambda uow: feedback.answer(uow, UUID(concern.body["feedback_id"]), text="答复"),
            host.key(Role.SECRETARY, host.other_branch),
        )


async def test_a_concern_with_the_origin_stays_at_the_origin() -> None:
    world = await _visiting()
    origin = world.gushi
    body = s.NewConcern(member_id=world.member_id, addressed_to=Addressee.ORIGIN, text="党费标准")
    raised = await origin.run(lambda uow: feedback.raise_concern(uow, **s.fields(body)))
    assert (raised.status, raised.body["org_id"]) == (201, str(origin.branch.org_id))
    assert origin.tables.outbox[-1][0].type != "yixian.movement.host_group.v1"
    queue = await origin.run(
        lambda uow: feedback.queue(uow), origin.key(Role.SECRETARY, origin.branch)
    )
    assert [i["feedback_id"] for i in queue["items"]] == [raised.body["feedback_id"]]
    other = await origin.run(
        lambda uow: feedback.queue(uow), origin.key(Role.SECRETARY, origin.other_branch)
    )
    assert other["items"] == []


async def test_the_queue_flags_a_concern_past_the_deadline() -> None:
    world = await _visiting()
    host: Node = world.chaoyang
    await _raise(world)
    host.now = NOW + timedelta(hours=23)
    fresh = await host.run(lambda uow: feedback.queue(uow, state=FeedbackState.OPEN))
    assert (fresh["overdue"], fresh["items"][0]["overdue"]) == (0, False)
    host.now = NOW + timedelta(hours=25)
    late = await host.run(lambda uow: feedback.queue(uow, overdue=True))
    assert (late["overdue"], len(late["items"])) == (1, 1)
    host.config = replace(host.config, deadlines=Deadlines(feedback_answer_hours=48))
    assert (await host.run(lambda uow: feedback.queue(uow)))["overdue"] == 0


async def test_statistics_give_the_median_and_p90_of_time_to_first_answer() -> None:
    world = await _visiting()
    host = world.chaoyang
    first = await _raise(world, "一")
    second = await _raise(world, "二")
    await _raise(world, "三")
    await _answer(world, first.body["feedback_id"], "答一", timedelta(minutes=30))
    await _answer(world, second.body["feedback_id"], "答二", timedelta(hours=2))
    day = NOW.date()
    stats = await host.run(lambda uow: feedback.statistics(uow, since=day, until=day))
    assert (stats["raised"], stats["answered"], stats["open"]) == (3, 2, 1)
    assert stats["first_answer_seconds"] == {"median": 1800, "p90": 7200}
    with pytest.raises(Invalid) as backwards:
        await host.run(
            lambda uow: feedback.statistics(uow, since=day, until=day - timedelta(days=1))
        )
    assert backwards.value.field == "to"


def test_percentiles_by_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5], 0.9) == 5
    values = list(range(1, 11))
    assert (percentile(values, 0.5), percentile(values, 0.9)) == (5, 9)
    concern = Concern(
        feedback_id=uuid4(), org_id=uuid4(), movement_id=None, member_id=uuid4(),
        member_name="王芳", addressed_to=Addressee.ORIGIN, text="x", share_with_origin=False,
        state=FeedbackState.OPEN, raised_at=NOW, raised_by="key:x",
    )  # fmt: skip
    stats = answer_statistics([concern], NOW + timedelta(days=2), Deadlines())
    assert (stats["overdue"], stats["first_answer_seconds"]["median"]) == (1, None)
