"""The envelope rules, as a partner's validator sees them: only the committed JSON Schema
files and a JSON Schema library, no project model. Each record is validated against the
schema its ``dataschema`` names and, read from a pair topic, against the pair envelope's.
What the producers emit (the examples, on each topic their type travels) passes; an
envelope without ``specversion``, with a malformed ``traceparent``, or a pair-topic event
without ``pairseq`` does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from yixian.contracts import ROUTES, MalformedEvent, Topic, decode
from yixian.contracts.examples import example_events
from yixian.contracts.schemas import current_dir

PAIR_ENVELOPE = "urn:yixian:schema:pair-envelope.v1"


def _committed() -> Registry:
    resources = []
    for path in sorted(current_dir().glob("*.json")):
        document = json.loads(path.read_text())
        if "$id" in document:  # the JSON Schemas, not the AsyncAPI document
            resources.append((document["$id"], Resource.from_contents(document)))
    registry: Registry = Registry().with_resources(resources)
    return registry


REGISTRY = _committed()


def refusals(record: dict[str, Any], *, pair_topic: bool) -> list[str]:
    """Why a partner's schema-only validator refuses ``record``: empty when it passes."""
    names = [record.get("dataschema", "")] + ([PAIR_ENVELOPE] if pair_topic else [])
    reasons = []
    for name in names:
        try:
            schema = REGISTRY.contents(name)
        except LookupError:
            reasons.append(f"dataschema: {name!r} names no published schema")
            continue
        validator = Draft202012Validator(schema, registry=REGISTRY, format_checker=FormatChecker())
        reasons += [
            f"{'.'.join(map(str, e.path)) or '$'}: {e.message}"
            for e in validator.iter_errors(record)
        ]
    return reasons


def _produced() -> list[tuple[str, dict[str, Any], bool]]:
    """(type, wire form, read from a pair topic) of every example on each kind of topic
    its type travels on, as the relay publishes it there: numbered on pair topics only."""
    out = []
    for event in example_events():
        topics = ROUTES[event.type].topics
        if Topic.PAIR in topics:
            out.append((event.type, json.loads(event.encode()), True))
        if Topic.LOCAL in topics:
            unnumbered = event.model_copy(update={"pairseq": None, "pairepoch": None})
            out.append((event.type, json.loads(unnumbered.encode()), False))
    return out


@pytest.mark.parametrize(
    ("event_type", "record", "pair_topic"),
    _produced(),
    ids=lambda v: (
        v if isinstance(v, str) else ("pair" if v is True else "local" if v is False else "")
    ),
)
def test_what_producers_send_passes(
    event_type: str, record: dict[str, Any], pair_topic: bool
) -> None:
    assert refusals(record, pair_topic=pair_topic) == []


def _example(event_type: str) -> dict[str, Any]:
    event = next(e for e in example_events() if e.type == event_type)
    record: dict[str, Any] = json.loads(event.encode())
    return record


@pytest.mark.parametrize(
    "event_type",
    ["yixian.movement.origin_group.v1", "yixian.link.heartbeat.v1", "yixian.activity.scheduled.v1"],
)
def test_an_envelope_without_specversion_is_refused(event_type: str) -> None:
    record = _example(event_type)
    del record["specversion"]
    assert any(
        "'specversion' is a required property" in r for r in refusals(record, pair_topic=False)
    )


@pytest.mark.parametrize(
    "traceparent",
    [
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version 01
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "4bf92f3577b34da6a3ce929d0e0e4736",  # a bare trace id
    ],
)
def test_a_malformed_traceparent_is_refused(traceparent: str) -> None:
    record = _example("yixian.movement.host_group.v1")
    record["traceparent"] = traceparent
    assert any(r.startswith("traceparent:") for r in refusals(record, pair_topic=True))


def test_a_pair_only_event_without_pairseq_is_refused_by_its_own_schema() -> None:
    record = _example("yixian.link.heartbeat.v1")
    del record["pairseq"]
    assert any("'pairseq' is a required property" in r for r in refusals(record, pair_topic=False))


@pytest.mark.parametrize(
    "event_type", ["yixian.movement.origin_group.v1", "yixian.movement.participation_recorded.v1"]
)
def test_an_event_on_a_pair_topic_without_pairseq_is_refused(event_type: str) -> None:
    """A type that travels on both kinds of topic: without a number it is a valid local
    record, and no valid pair record."""
    record = _example(event_type)
    del record["pairseq"]
    assert refusals(record, pair_topic=False) == []
    assert refusals(record, pair_topic=True) == ["$: 'pairseq' is a required property"]


@pytest.mark.parametrize(("pairseq", "pairepoch"), [(0, None), (None, 5), ("7", None), (3, -1)])
def test_a_pair_number_out_of_its_range_is_refused(pairseq: Any, pairepoch: Any) -> None:
    record = copy.deepcopy(_example("yixian.link.digest.v1"))
    record.pop("pairseq")
    record |= {k: v for k, v in (("pairseq", pairseq), ("pairepoch", pairepoch)) if v is not None}
    assert refusals(record, pair_topic=True)


@pytest.mark.parametrize(
    ("event_type", "named"),
    [
        ("yixian.link.heartbeat.v1", "yixian.link.digest.v1"),
        ("yixian.movement.host_group.v1", "yixian.movement.origin_group.v1"),
    ],
)
def test_a_record_is_refused_by_the_schema_of_another_type(event_type: str, named: str) -> None:
    """Each schema holds its own ``type``: a record that names another type's schema fails
    it (and one naming no published schema is refused outright)."""
    record = _example(event_type)
    record["dataschema"] = f"urn:yixian:schema:{named}"
    assert f"type: {named!r} was expected" in refusals(record, pair_topic=True)
    record["dataschema"] = f"urn:yixian:schema:{event_type.removesuffix('v1')}v9"
    assert refusals(record, pair_topic=False) == [
        f"dataschema: {record['dataschema']!r} names no published schema"
    ]


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n"),
        ("traceparent", " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("source", "urn:yixian:node:110105\n"),
        ("source", "urn:yixian:node:\u0664\u0661\u0661\u0665\u0662\u0665"),  # Arabic-Indic
        ("dataschema", "urn:yixian:schema:yixian.link.heartbeat.v1\n"),
    ],
    ids=[
        "traceparent-newline",
        "traceparent-space",
        "source-newline",
        "source-digits",
        "dataschema",
    ],
)
def test_the_model_refuses_what_the_schema_refuses(attribute: str, value: str) -> None:
    """A node reads no envelope the published schema refuses. JSON Schema's patterns are
    ECMA-262 regular expressions, where ``$`` is the end of the text (no final newline
    before it) and ``\\d`` an ASCII digit: a validator that follows the specification
    (jsonschema-rs) refuses these, and so does the model."""
    record = _example("yixian.link.heartbeat.v1")
    schema = REGISTRY.contents(record["dataschema"])
    record[attribute] = value
    errors = list(jsonschema_rs.validator_for(schema).iter_errors(record))
    assert [e.instance_path for e in errors] == [[attribute]]
    with pytest.raises(MalformedEvent, match=attribute):
        decode(json.dumps(record).encode())
