"""The Kafka key of every event the registry publishes, as its handlers make them: the
outbox keys each record with ``record_key`` (ADR 4). What must stay in order shares a key:
a movement's events the movement's id, an activity's the activity's id, a visitor claim's
the claim's id; none uses ``link``, the key of the link's own events. Where an event
names what it concerns (``correlationid``), that is its key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from yixian.contracts import LINK_KEY, ActivityKind, record_key
from yixian.registry.service_layer import handlers, visitors

from .test_handlers import NOW, Node, World
from .test_visitors import ZHANG_ID, _ask, _carry_claims, _look, _member


def _queued(*nodes: Node) -> list[Any]:
    return [event for node in nodes for event, _local, _pair in node.tables.outbox]


def _key(id_: UUID | str) -> bytes:
    return str(id_).encode()


async def test_a_movements_events_at_both_sides_are_keyed_by_the_movement() -> None:
    world = World()
    await world.register()
    for path in ("check-in", "participations", "dues", "lost-contact", "restore-contact"):
        await world.step(path)
    await world.step("details")
    assert world.movement_id is not None
    events = _queued(world.gushi, world.chaoyang)
    assert {e.type for e in events} == {
        "yixian.movement.origin_group.v1",
        "yixian.movement.host_group.v1",
        "yixian.movement.participation_recorded.v1",
    }
    for event in events:
        assert record_key(event) == _key(world.movement_id) != LINK_KEY, event.type
        assert event.correlationid == world.movement_id


async def test_a_relocations_events_are_keyed_by_the_movement_each_concerns() -> None:
    """The closing of the stay at the first host and the opening of the next travel on
    different keys: each movement's own events stay in order, not the two together."""
    world = World()
    await world.register()
    result = await world.step("relocate")
    successor = UUID(result.body["movement_id"])
    keys = {record_key(e): e.correlationid for e in _queued(world.gushi)}
    assert keys == {_key(world.movement_id or ""): world.movement_id, _key(successor): successor}


async def test_an_activity_is_keyed_by_its_id() -> None:
    node = World().gushi
    result = await node.run(
        lambda uow: handlers.schedule_activity(
            uow,
            org_id=node.root.org_id,
            kind=ActivityKind.THEME_DAY,
            title="四月主题党日",
            starts_at=NOW + timedelta(days=3),
            ends_at=None,
            location="县委党校",
        )
    )
    [event] = _queued(node)
    assert record_key(event) == _key(result.body["activity_id"]) != LINK_KEY


async def test_a_visitor_claim_and_its_answer_are_keyed_by_the_claim() -> None:
    world = World()
    member = await _member(world, "张建国", ZHANG_ID)
    asked = await _ask(world.chaoyang, "张建国", ZHANG_ID)
    claim_id = UUID(asked.body["target_id"])
    _carry_claims(world.chaoyang, world.gushi)
    await _look(world.gushi)
    await world.gushi.run(
        lambda uow: visitors.confirm_claim(
            uow, claim_id, member_id=member, place="北京", period=None, contact=None
        )
    )
    claims = [
        e for e in _queued(world.chaoyang, world.gushi) if e.type.startswith("yixian.visitor")
    ]
    assert sorted(e.type for e in claims) == [
        "yixian.visitor.claim_answered.v1",
        "yixian.visitor.claim_asked.v1",
    ]
    for event in claims:
        assert record_key(event) == _key(claim_id)
        assert event.correlationid == claim_id
