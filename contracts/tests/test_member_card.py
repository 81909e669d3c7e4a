"""A member card never carries a national ID hash: one an older producer sends is dropped
on receipt and never passed on (ADR 14)."""

from __future__ import annotations

import json

import pytest

from yixian.contracts import MalformedEvent, MemberCard, OriginGroupChanged, decode, make_event
from yixian.contracts.examples import AT, TRACEPARENT, origin_group

OLD_HASH = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"


def _wire_from_an_older_node(national_id_hash: str) -> bytes:
    """An origin-group event as a node before ADR 14 encoded it, hash and all."""
    event = make_event(
        OriginGroupChanged(group=origin_group()), node="411525", time=AT, traceparent=TRACEPARENT
    )
    doc = json.loads(event.encode())
    doc["data"]["group"]["member"]["national_id_hash"] = national_id_hash
    return json.dumps(doc).encode()


def test_a_received_hash_is_dropped_and_not_passed_on() -> None:
    event = decode(_wire_from_an_older_node(OLD_HASH))
    assert isinstance(event.data, OriginGroupChanged)
    member = event.data.group.member
    assert member.model_dump()["national_id_hash"] is None
    assert OLD_HASH not in event.encode().decode()
    assert OLD_HASH not in json.dumps(event.data.group.model_dump(mode="json"))
    assert b"national_id_hash" not in event.encode()


def test_a_producer_cannot_set_one() -> None:
    card = MemberCard.model_validate(
        {
            "member_id": "2f8a3c1e-0b5d-4e7f-9a6c-1d2e3f4a5b6c",
            "name": "张建国",
            "joined_on": "2008-07-01",
            "national_id_hash": OLD_HASH,
        }
    )
    assert OLD_HASH not in card.model_dump_json()


def test_a_malformed_value_is_still_refused_as_the_schema_says() -> None:
    """The v1 schema keeps the property's pattern (ADR 3): an event that breaks it is
    malformed, whatever the reader then does with a valid value."""
    with pytest.raises(MalformedEvent):
        decode(_wire_from_an_older_node("not-a-hash"))
