"""Nothing the registry sends lets a partner recover a member's national ID (ADR 14).

The national ID space is small (a region, a birth date, three digits and a check digit),
so any function of the number a partner could compute on its own is as good as the number:
the events carry neither the number nor its hash, keyed or not.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from yixian.contracts import Destination, OriginGroup, OriginGroupChanged, make_event
from yixian.contracts.examples import GUSHI_BRANCH, TRACEPARENT, origin_group
from yixian.registry.domain import Deadlines, Member, Movement
from yixian.registry.domain import OriginGroupChanged as OriginChanged
from yixian.registry.domain.member import mask_national_id, national_id_hash

GUSHI, CHAOYANG, PUTIAN = "411525", "110105", "350300"
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
NATIONAL_ID = "11010519491231002X"
NODE_KEY = b"this-node-own-secret-never-shared-0123456789"
PARTNERS = frozenset({CHAOYANG, PUTIAN})


def _member() -> Member:
    return Member(
        member_id=uuid4(),
        org_id=GUSHI_BRANCH.org_id,
        name="张建国",
        joined_on=date(2008, 7, 1),
        phone=None,
        email=None,
        national_id_hash=national_id_hash(NODE_KEY, NATIONAL_ID),
        national_id_masked=mask_national_id(NATIONAL_ID),
    )


def _forbidden(member: Member) -> dict[str, str]:
    """Everything a partner could match the number against."""
    assert member.national_id_hash is not None
    return {
        "the number": NATIONAL_ID,
        "its keyed hash": member.national_id_hash,
        "its sha256": hashlib.sha256(NATIONAL_ID.encode()).hexdigest(),
        "its masked form": mask_national_id(NATIONAL_ID),
    }


def _wire(movements: list[Movement]) -> list[str]:
    """Each origin-group event as the registry encodes it for the pair topic."""
    out = []
    for movement in movements:
        for event in movement.events:
            assert isinstance(event, OriginChanged)
            envelope = make_event(
                OriginGroupChanged(group=event.group),
                node=GUSHI,
                time=NOW,
                traceparent=TRACEPARENT,
                subject=str(movement.movement_id),
                correlationid=movement.movement_id,
            )
            out.append(envelope.encode().decode())
    return out


def _register(member: Member) -> Movement:
    example = origin_group()
    return Movement.register_outflow(
        node=GUSHI,
        origin_org=GUSHI_BRANCH,
        member=member.card(),
        destination=example.destination,
        period=example.period,
        contact=example.contact,
        certificate=example.certificate,
        deadlines=Deadlines(),
        partners=PARTNERS,
        now=NOW,
        actor="secretary:gushi",
    )


def test_no_origin_group_event_carries_the_national_id_or_a_function_of_it() -> None:
    member = _member()
    movement = _register(member)
    successor = movement.relocate(
        node=GUSHI,
        destination=Destination(jurisdiction=PUTIAN, place="莆田市"),
        departed_on=date(2026, 3, 5),
        deadlines=Deadlines(),
        partners=PARTNERS,
        now=NOW,
        actor="secretary:gushi",
    )
    successor.update_details(
        node=GUSHI, place="莆田市荔城区", deadlines=Deadlines(), now=NOW, actor="secretary:gushi"
    )
    wire = _wire([movement, successor])
    assert len(wire) == 4  # registered and relocated; the successor registered and corrected
    for encoded in wire:
        assert str(member.member_id) in encoded  # the member is named by id, and only so
        for what, value in _forbidden(member).items():
            assert value not in encoded, f"an event carries {what}"
            assert value.lower() not in encoded.lower(), f"an event carries {what}"


@pytest.mark.parametrize("step", ["cancel", "return_home"])
def test_a_group_stored_with_an_old_hash_is_sent_without_it(step: str) -> None:
    """A movement registered before ADR 14 keeps the hash in its stored group; the next
    version the registry publishes of it does not."""
    member = _member()
    stored = origin_group().model_dump(mode="json")
    stored["member"] |= {
        "member_id": str(member.member_id),
        "national_id_hash": member.national_id_hash,
    }
    group = OriginGroup.model_validate(stored)
    movement = Movement(group.movement_id, GUSHI, CHAOYANG, group, None)
    if step == "cancel":
        movement.cancel(node=GUSHI, now=NOW, actor="o")
    else:
        movement.return_home(node=GUSHI, returned_on=date(2026, 3, 9), now=NOW, actor="o")
    [encoded] = _wire([movement])
    assert member.national_id_hash is not None
    assert member.national_id_hash not in encoded
    assert "national_id_hash" not in encoded
