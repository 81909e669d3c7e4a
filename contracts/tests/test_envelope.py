"""The envelope and payload models: round trips, strictness, and errors that name the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from yixian.contracts import (
    CATALOGUE,
    Envelope,
    HostGroup,
    HostStatus,
    MalformedEvent,
    OriginGroupChanged,
    OriginStatus,
    UnknownEventType,
    decode,
    make_event,
    numbered,
    trace_id,
)
from yixian.contracts.catalogue import _decode_carefully
from yixian.contracts.examples import (
    AT,
    TRACEPARENT,
    example_events,
    host_group,
    origin_group,
    origin_group_stream,
)


def test_every_event_type_has_an_example() -> None:
    assert {e.type for e in example_events()} == set(CATALOGUE)


@pytest.mark.parametrize("event", example_events(), ids=lambda e: e.type)
def test_round_trip_is_byte_for_byte(event: Envelope[OriginGroupChanged]) -> None:
    wire = event.encode()
    again = decode(wire)
    assert again == event
    assert again.encode() == wire


def test_envelope_carries_cloudevents_attributes_and_extensions() -> None:
    event = example_events()[0]
    document = json.loads(event.encode())
    assert document["specversion"] == "1.0"
    assert document["datacontenttype"] == "application/json"
    assert document["source"] == "urn:yixian:node:411525"
    assert document["dataschema"] == "urn:yixian:schema:yixian.movement.origin_group.v1"
    assert document["traceparent"] == TRACEPARENT
    assert document["correlationid"] == document["data"]["group"]["movement_id"]
    assert document["pairseq"] == 1
    assert event.source_node == "411525"
    assert event.trace_id == trace_id(TRACEPARENT) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_optional_extensions_are_left_out_when_absent() -> None:
    event = make_event(OriginGroupChanged(group=origin_group()), node="411525", time=AT)
    document = json.loads(event.encode())
    assert "pairseq" not in document
    assert "correlationid" not in document
    assert document["traceparent"].startswith("00-")


def _error_fields(raw: bytes) -> list[str]:
    with pytest.raises(MalformedEvent) as caught:
        decode(raw)
    return [e["field"] for e in caught.value.errors]


def _mutated(change: dict[str, object]) -> bytes:
    document = json.loads(example_events()[0].encode())
    for path, value in change.items():
        target = document
        *parents, leaf = path.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return json.dumps(document).encode()


def test_a_reader_ignores_what_a_newer_v1_writer_added() -> None:
    """Contracts only grow within v1 (ADR 3): a field or attribute this version does not
    know, at any depth (a list's items included), is left out and the rest is read."""
    original = example_events()[0]
    newer = decode(
        _mutated(
            {
                "surprise": 1,
                "data.urgency": "high",
                "data.group.nickname": "x",
                "data.group.destination.floor": 3,
            }
        )
    )
    assert newer == original
    digest = next(e for e in example_events() if e.type == "yixian.link.digest.v1")
    document = json.loads(digest.encode())
    document["data"]["buckets"][0]["weight"] = 2
    assert decode(json.dumps(document).encode()) == digest


def test_what_this_node_writes_stays_closed_to_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="nickname"):
        HostGroup.model_validate(host_group().model_dump() | {"nickname": "x"})
    # an unknown field does not hide a bad value beside it
    fields = _error_fields(_mutated({"data.group.nickname": "x", "data.group.version": 0}))
    assert fields == ["data.group.version"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.group.origin", "41152"),  # not six digits
        ("data.group.origin", "991525"),  # no such province
        ("data.group.movement_id", "not-a-uuid"),
        ("data.group.version", 0),
        ("data.group.changed_at", "2026-03-01T08:30:00"),  # naive time
        ("data.group.status", "wandering"),
        ("traceparent", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"),
        ("time", "yesterday"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(path: str, value: object) -> None:
    assert path in _error_fields(_mutated({path: value}))


def test_type_must_match_the_payload() -> None:
    raw = _mutated({"type": "yixian.movement.host_group.v1"})
    with pytest.raises(MalformedEvent, match="host_group"):
        decode(raw)


def test_unknown_event_type_is_its_own_error() -> None:
    raw = _mutated({"type": "yixian.movement.teleported.v1"})
    with pytest.raises(UnknownEventType) as caught:
        decode(raw)
    assert caught.value.event_type == "yixian.movement.teleported.v1"


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"id": 1}', b"\xff\xfe"])
def test_garbage_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode(raw)


def test_times_are_normalised_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    event = make_event(
        OriginGroupChanged(group=origin_group()),
        node="411525",
        time=datetime(2026, 3, 1, 16, 30, tzinfo=beijing),
    )
    assert event.time == AT
    assert event.time.utcoffset() == timedelta(0)


def test_models_are_frozen() -> None:
    group = origin_group()
    with pytest.raises(ValidationError):
        group.version = 2  # type: ignore[misc]


def test_group_status_needs_its_details() -> None:
    with pytest.raises(ValidationError, match="next_movement_id"):
        origin_group(status=OriginStatus.RELOCATED)
    with pytest.raises(ValidationError, match="reason"):
        host_group(status=HostStatus.NOT_FOUND)
    with pytest.raises(ValidationError, match="forwarded_to"):
        host_group(status=HostStatus.FORWARDED)


def test_destination_must_differ_from_origin() -> None:
    group = origin_group()
    document = group.model_dump()
    document["destination"]["jurisdiction"] = "411525"
    with pytest.raises(ValidationError, match="must differ from origin"):
        type(group).model_validate(document)


def test_host_group_checked_in_needs_org_and_time() -> None:
    document = host_group().model_dump()
    document["host_org"] = None
    with pytest.raises(ValidationError, match="host_org"):
        HostGroup.model_validate(document)


@pytest.mark.parametrize("event", example_events(), ids=lambda e: e.type)
def test_numbering_an_encoded_event_equals_numbering_the_model(event: Envelope) -> None:
    event = event.model_copy(update={"pairseq": None})
    wire = numbered(event.encode(), 42)
    assert decode(wire) == event.with_pairseq(42)
    assert json.loads(wire) == json.loads(event.with_pairseq(42).encode())


def test_a_number_in_a_link_epoch_carries_the_epoch_beside_it() -> None:
    event = example_events()[0].model_copy(update={"pairseq": None})
    epoch = 1_795_000_000_000_000
    wire = numbered(event.encode(), 5, epoch)
    assert decode(wire) == event.with_pairseq(5, epoch)
    assert (decode(wire).pairseq, decode(wire).pairepoch, decode(wire).epoch) == (5, epoch, epoch)
    assert b"pairepoch" not in numbered(event.encode(), 5, 0)  # epoch 0: as before epochs
    assert decode(numbered(event.encode(), 5)).epoch == 0


def test_a_number_is_given_once() -> None:
    event = example_events()[0].with_pairseq(7)
    assert numbered(event.encode(), 8) == event.encode()
    text = example_events()[0].model_copy(update={"subject": '"pairseq":1', "pairseq": None})
    assert decode(numbered(text.encode(), 3)).pairseq == 3  # a look-alike inside a string


def test_numbering_refuses_what_is_not_an_object() -> None:
    with pytest.raises(MalformedEvent):
        numbered(b"[1, 2]", 1)


def _variants(raw: bytes) -> list[bytes]:
    """An encoded event and edits of it that JSON and Python validation might read apart."""
    name = b'"changed_by":"'
    edits = [
        (b'"version":1', b'"version":1.0'),
        (b'"version":1', b'"version":"1"'),
        (b'"version":1', b'"version":1,"version":2'),
        (b'"version":1', b'"version":NaN'),
        (b'"version":1', b'"version":true'),
        (b'"departed_on":"2026-02-20"', b'"departed_on":1771545600'),
        (b'"departed_on":"2026-02-20"', b'"departed_on":"2026-02-20T00:00:00"'),
        (b'"changed_at":"2026-03-01T08:30:00Z"', b'"changed_at":1772353800'),
        (b'"changed_at":"2026-03-01T08:30:00Z"', b'"changed_at":"2026-03-01T16:30:00+08:00"'),
        (name, name + b"\\ud800"),
        (name, name + b"\\u0000"),
        (name, name + b"\\u202e"),
        (name, name + b"  "),
        (b'"pairseq":1', b'"pairseq":99999999999999999999999'),
        (b'"pairseq":1', b'"pairseq":1,"newer":{"optional":1}'),
        (b'"id":"', b'"id":"urn:uuid:'),
        (b'"type":"', b'"type": "'),
        (b'{"specversion"', b'{"type":"yixian.link.heartbeat.v1","specversion"'),
    ]
    return [raw, b"\xef\xbb\xbf" + raw, raw.decode().encode("utf-16")] + [
        raw.replace(old, new, 1) for old, new in edits if old in raw
    ]


def _read(raw: bytes, way: Callable[[bytes], Envelope[Any]]) -> object:
    try:
        return way(raw)
    except UnknownEventType as unknown:
        return ("unknown", unknown.event_type)
    except MalformedEvent as bad:
        return ("malformed", bad.reason, bad.errors)


@pytest.mark.parametrize(
    "encoded",
    [e.with_pairseq(1).encode() for e in example_events()]
    + [origin_group_stream("411525", 1)[0][1]],
)
def test_decoding_in_one_pass_reads_as_the_careful_way(encoded: bytes) -> None:
    """``decode`` validates the bytes as JSON first; what it takes that way it reads as
    parsing then validating does, and what it does not take gets the careful way's answer."""
    for raw in _variants(encoded):
        fast = _read(raw, decode)
        assert fast == _read(raw, _decode_carefully), raw[:200]
        if isinstance(fast, Envelope):
            assert fast.encode() == _decode_carefully(raw).encode()
