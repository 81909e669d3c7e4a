"""The unregistered visitor (ADR 21) in memory: the host asks, the origin looks, confirms
or declines, and the host sees the answer; nothing of the number crosses."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest

from yixian.contracts import ClaimResult, Contact, VisitorClaimAnswered, VisitorClaimAsked
from yixian.registry.domain import Conflict, Invalid, InvalidTransition
from yixian.registry.domain.visitor import ClaimState, claim_state, first_result
from yixian.registry.entrypoints import schemas as s
from yixian.registry.service_layer import handlers, visitors
from yixian.registry.service_layer.unit_of_work import Denied, Result
from yixian.runtime.apikeys import Role

from .test_handlers import CHAOYANG, GUSHI, Node, World

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def national_id(first17: str) -> str:
    """A valid 18-character number from its first 17 digits (GB 11643 check digit)."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


ZHANG_ID = national_id("41152519850312123")


def same_ending(number: str) -> str:
    """Another valid number of the same region with the same last four characters."""
    for day in range(1, 29):
        other = national_id(f"{number[:6]}197001{day:02d}{number[14:17]}")
        if other[-4:] == number[-4:]:
            return other
    raise AssertionError("no birth date gives the same check digit")  # pragma: no cover


WANG_ID = national_id("41152519900101456")


async def _member(world: World, name: str, number: str) -> UUID:
    body = s.NewMember(
        org_id=world.gushi.branch.org_id,
        name=name,
        joined_on=date(2008, 7, 1),
        phone="+86 138 0000 0001",
        national_id=number,
    )
    result = await world.gushi.run(lambda uow: handlers.add_member(uow, **s.fields(body)))
    return UUID(result.body["member_id"])


async def _ask(node: Node, name: str, number: str, **extra: Any) -> Result:
    body = s.NewVisitor(
        name=name, national_id=number, contact=Contact(phone="+86 139 0000 0002"), **extra
    )
    result: Result = await node.run(lambda uow: visitors.record_visitor(uow, **s.fields(body)))
    return result


def _carry_claims(host: Node, origin: Node) -> None:
    """What sync does at the origin with the claims on the host's pair topic."""
    for envelope, _local, pair in host.tables.outbox:
        if pair and pair[1] == origin.code and isinstance(envelope.data, VisitorClaimAsked):
            claim = envelope.data
            origin.tables.visitor_claims_asked.setdefault(
                claim.claim_id,
                claim.model_dump() | {"received_at": origin.now},
            )


def _carry_answers(origin: Node, host: Node) -> None:
    for envelope, _local, pair in origin.tables.outbox:
        if pair and pair[1] == host.code and isinstance(envelope.data, VisitorClaimAnswered):
            answer = envelope.data
            host.tables.visitor_claim_answers[answer.claim_id] = answer.model_dump(mode="python")


async def _look(origin: Node) -> None:
    for claim_id in list(origin.tables.visitor_claims_asked):
        await origin.run(lambda uow, c=claim_id: visitors.look_at_claim(uow, c))


def _pair_bytes(node: Node) -> bytes:
    return b"".join(e.encode() for e, _local, pair in node.tables.outbox if pair)


async def test_a_matched_visitor_becomes_the_origins_movement_and_is_counted_once() -> None:
    world = World()
    member = await _member(world, "张建国", ZHANG_ID)
    chaoyang, gushi = world.chaoyang, world.gushi
    asked = await _ask(chaoyang, "张建国", ZHANG_ID)
    assert asked.status == 201
    assert asked.body["origin"] == GUSHI  # from the number's first six digits
    assert asked.body["state"] == "asked"
    assert ZHANG_ID not in str(asked.body)
    _carry_claims(chaoyang, gushi)
    await _look(gushi)
    claims = await gushi.run(visitors.list_claims)
    [claim] = claims["claims"]
    assert (claim["result"], claim["member_id"], claim["answered"]) == ("match", str(member), False)
    assert not any(isinstance(e.data, VisitorClaimAnswered) for e, _, _ in gushi.tables.outbox)
    confirmed = await gushi.run(
        lambda uow: visitors.confirm_claim(
            uow, UUID(claim["claim_id"]), member_id=None, place="北京", period=None, contact=None
        )
    )
    assert confirmed.status == 201
    world.movement_id = UUID(confirmed.body["movement_id"])
    world.deliver(gushi, chaoyang)
    _carry_answers(gushi, chaoyang)
    seen = await chaoyang.run(lambda uow: visitors.list_visitors(uow))
    [visitor] = seen["visitors"]
    assert (visitor["state"], visitor["movement_id"]) == ("matched", str(world.movement_id))
    assert not visitor["to_do"]
    assert chaoyang.tables.members == {}  # never a member of the host: counted at the origin
    assert list(chaoyang.tables.movements) == [world.movement_id]
    again = await gushi.run(
        lambda uow: visitors.confirm_claim(
            uow, UUID(claim["claim_id"]), member_id=None, place="北京", period=None, contact=None
        )
    )
    assert again.status == 200
    assert len(gushi.tables.movements) == 1
    for number in (ZHANG_ID, ZHANG_ID[:14]):
        assert number.encode() not in _pair_bytes(chaoyang) + _pair_bytes(gushi)


async def test_no_member_is_answered_at_once_and_lands_in_the_hosts_to_do() -> None:
    world = World()
    await _member(world, "张建国", ZHANG_ID)
    asked = await _ask(world.chaoyang, "李四", WANG_ID)
    _carry_claims(world.chaoyang, world.gushi)
    await _look(world.gushi)
    _carry_answers(world.gushi, world.chaoyang)
    [answer] = world.chaoyang.tables.visitor_claim_answers.values()
    assert answer["result"] is ClaimResult.NO_MATCH
    assert answer["movement_id"] is None
    to_do = await world.chaoyang.run(lambda uow: visitors.list_visitors(uow, to_do=True))
    assert [v["claim_id"] for v in to_do["visitors"]] == [asked.body["claim_id"]]
    assert to_do["visitors"][0]["state"] == "no_match"


async def test_a_member_away_elsewhere_is_not_found_and_nothing_tells_where() -> None:
    world = World()
    member = await _member(world, "张建国", ZHANG_ID)
    world.member_id = member
    from .test_handlers import outflow

    await world.gushi.run(
        lambda uow: handlers.register_outflow(uow, **s.fields(outflow(member)))
    )  # away at Chaoyang; now Changping asks
    from .test_handlers import CHANGPING, make_node

    changping = make_node(CHANGPING)
    await _ask(changping, "张建国", ZHANG_ID)
    _carry_claims(changping, world.gushi)
    await _look(world.gushi)
    answers = [e.data for e, _, pair in world.gushi.tables.outbox if pair and pair[1] == CHANGPING]
    assert [(a.result, a.movement_id) for a in answers] == [(ClaimResult.NO_MATCH, None)]
    assert set(answers[0].model_dump()) == {
        "claim_id", "host", "origin", "result", "movement_id", "answered_at"
    }  # fmt: skip


async def test_several_members_fitting_are_ambiguous_until_the_secretary_names_one() -> None:
    world = World()
    first = await _member(world, "张建国", ZHANG_ID)
    await _member(world, "张建国", same_ending(ZHANG_ID))  # same name, same ending
    asked = await _ask(world.chaoyang, "张建国", ZHANG_ID)
    _carry_claims(world.chaoyang, world.gushi)
    await _look(world.gushi)
    claim_id = UUID(asked.body["claim_id"])
    [claim] = (await world.gushi.run(visitors.list_claims))["claims"]
    assert (claim["result"], claim["candidates"], claim["member_id"]) == ("ambiguous", 2, None)
    with pytest.raises(InvalidTransition) as unnamed:
        await world.gushi.run(
            lambda uow: visitors.confirm_claim(
                uow, claim_id, member_id=None, place="北京", period=None, contact=None
            )
        )
    assert unnamed.value.field == "member_id"
    confirmed = await world.gushi.run(
        lambda uow: visitors.confirm_claim(
            uow, claim_id, member_id=first, place="北京", period=None, contact=None
        )
    )
    assert confirmed.body["result"] == "match"
    _carry_answers(world.gushi, world.chaoyang)
    [visitor] = (await world.chaoyang.run(visitors.list_visitors))["visitors"]
    assert visitor["state"] == "matched"


async def test_the_same_claim_twice_is_one_claim_and_one_event() -> None:
    world = World()
    first = await _ask(world.chaoyang, "张建国", ZHANG_ID)
    second = await _ask(world.chaoyang, "张建国", ZHANG_ID)
    assert (first.status, second.status) == (201, 200)
    assert first.body["claim_id"] == second.body["claim_id"]
    assert len(world.chaoyang.tables.visitors) == 1
    assert len(world.chaoyang.tables.outbox) == 1


@pytest.mark.parametrize(
    ("number", "extra", "field"),
    [
        (national_id("11010519850312123"), {}, "origin"),  # this node itself
        (national_id("35030019850312123"), {}, "origin"),  # not a partner
        (ZHANG_ID[:17] + ("0" if ZHANG_ID[17] != "0" else "1"), {}, "national_id"),
        (ZHANG_ID, {"origin": CHAOYANG}, "origin"),
    ],
)
async def test_bad_claims_name_the_field(number: str, extra: dict[str, Any], field: str) -> None:
    world = World()
    with pytest.raises(Invalid) as refused:
        await _ask(world.chaoyang, "张建国", number, **extra)
    assert refused.value.field == field
    assert world.chaoyang.tables.outbox == []


async def test_a_member_of_the_host_is_no_visitor_and_readers_record_nothing() -> None:
    world = World()
    body = s.NewMember(
        org_id=world.chaoyang.branch.org_id,
        name="张建国",
        joined_on=date(2008, 7, 1),
        phone="1",
        national_id=ZHANG_ID,
    )
    await world.chaoyang.run(lambda uow: handlers.add_member(uow, **s.fields(body)))
    with pytest.raises(Conflict) as refused:
        await _ask(world.chaoyang, "张建国", ZHANG_ID)
    assert refused.value.field == "national_id"
    reader = world.chaoyang.key(Role.AUDITOR)
    with pytest.raises(Denied):
        await world.chaoyang.run(
            lambda uow: visitors.record_visitor(
                uow,
                name="王五",
                national_id=WANG_ID,
                origin=None,
                contact=Contact(phone="1"),
                org_id=None,
            ),
            reader,
        )


async def test_a_declined_claim_is_no_match_and_a_confirmed_one_cannot_be_declined() -> None:
    world = World()
    await _member(world, "张建国", ZHANG_ID)
    asked = await _ask(world.chaoyang, "张建国", ZHANG_ID)
    _carry_claims(world.chaoyang, world.gushi)
    await _look(world.gushi)
    claim_id = UUID(asked.body["claim_id"])
    declined = await world.gushi.run(lambda uow: visitors.decline_claim(uow, claim_id))
    assert declined.body["result"] == "no_match"
    with pytest.raises(Denied):
        await world.gushi.run(
            lambda uow: visitors.decline_claim(uow, claim_id), world.gushi.key(Role.AUDITOR)
        )


def test_the_claims_state_follows_the_answer_and_the_deadline() -> None:
    due = date(2026, 3, 17)
    assert claim_state(None, due, due) is ClaimState.ASKED
    assert claim_state(None, due, due + timedelta(days=1)) is ClaimState.OVERDUE
    assert claim_state(ClaimResult.AMBIGUOUS, due, due + timedelta(days=1)) is ClaimState.OVERDUE
    assert claim_state(ClaimResult.MATCH, due, due + timedelta(days=30)) is ClaimState.MATCHED
    assert claim_state(ClaimResult.NO_MATCH, due, due) is ClaimState.NO_MATCH
    assert [first_result(n) for n in (0, 1, 2)] == [
        ClaimResult.NO_MATCH,
        ClaimResult.MATCH,
        ClaimResult.AMBIGUOUS,
    ]
