"""The compatibility rule of a major version, shown on deliberate changes.

Each breaking change below is made to the real schemas (or to a real model) and must be
reported; the allowed changes must not be.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import create_model

from yixian.contracts import CATALOGUE, Envelope, HostGroup, HostGroupChanged
from yixian.contracts.compat import breaking_changes, catalogue_breaks
from yixian.contracts.schemas import (
    SCHEMA_ROOT,
    all_schemas,
    breaks_against_published,
    event_schema,
    load_dir,
)

HOST = "yixian.movement.host_group.v1"
ORIGIN = "yixian.movement.origin_group.v1"


def _host_group_def(schema: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = schema["$defs"]["HostGroup"]
    return group


def _changed(event_type: str, change: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    old = event_schema(event_type)
    new = copy.deepcopy(old)
    change(new)
    return old, new


def test_identical_schemas_are_compatible() -> None:
    old = all_schemas()
    assert catalogue_breaks(old, copy.deepcopy(old)) == []


def test_adding_an_optional_property_is_allowed() -> None:
    def add_optional(s: dict[str, Any]) -> None:
        _host_group_def(s)["properties"]["wechat_openid"] = {"type": "string"}

    assert breaking_changes(*_changed(HOST, add_optional)) == []


def test_editing_descriptions_is_allowed() -> None:
    def reword(s: dict[str, Any]) -> None:
        _host_group_def(s)["description"] = "Reworded."
        _host_group_def(s)["properties"]["reason"]["description"] = "Why, in other words."

    assert breaking_changes(*_changed(HOST, reword)) == []


def test_marking_a_property_deprecated_is_allowed() -> None:
    """deprecated, readOnly and writeOnly are meta-data: a validator ignores them."""

    def deprecate(s: dict[str, Any]) -> None:
        reason = _host_group_def(s)["properties"]["reason"]
        reason.update(deprecated=True, readOnly=True, writeOnly=False)

    assert breaking_changes(*_changed(HOST, deprecate)) == []


def _remove_property(s: dict[str, Any]) -> None:
    del _host_group_def(s)["properties"]["reason"]


def _add_required(s: dict[str, Any]) -> None:
    _host_group_def(s)["properties"]["badge"] = {"type": "string"}
    _host_group_def(s)["required"].append("badge")


def _make_required(s: dict[str, Any]) -> None:
    _host_group_def(s)["required"].append("reason")


def _make_optional(s: dict[str, Any]) -> None:
    _host_group_def(s)["required"].remove("host")


def _change_type(s: dict[str, Any]) -> None:
    _host_group_def(s)["properties"]["version"]["type"] = "string"


def _drop_enum_value(s: dict[str, Any]) -> None:
    s["$defs"]["HostStatus"]["enum"].remove("lost_contact")


def _add_enum_value(s: dict[str, Any]) -> None:
    s["$defs"]["HostStatus"]["enum"].append("on_leave")


def _tighten_pattern(s: dict[str, Any]) -> None:
    _host_group_def(s)["properties"]["host"]["pattern"] = "^11\\d{4}$"


def _change_const(s: dict[str, Any]) -> None:
    s["properties"]["type"]["const"] = "yixian.movement.host_group.v2"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_remove_property, "reason: property removed"),
        (_add_required, "badge: property added as required"),
        (_make_required, "reason: optional property became required"),
        (_make_optional, "host: required property became optional"),
        (_change_type, "version: type changed"),
        (_drop_enum_value, "status: enum changed"),
        (_add_enum_value, "status: enum changed"),
        (_tighten_pattern, "host: pattern changed"),
        (_change_const, "type: const changed"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_breaking_changes_are_reported(change: Any, expected: str) -> None:
    problems = breaking_changes(*_changed(HOST, change))
    assert any(expected in p for p in problems), problems


def test_removing_an_event_type_is_reported() -> None:
    old = all_schemas()
    new = {k: v for k, v in old.items() if k != ORIGIN}
    assert catalogue_breaks(old, new) == [f"{ORIGIN}: event type removed"]


def test_a_model_made_stricter_is_reported() -> None:
    """The same check on a model changed in code: `reason` made required."""
    stricter_group = create_model(
        "HostGroup",
        __base__=HostGroup,
        reason=(str, ...),
    )
    stricter_payload = create_model(
        "HostGroupChanged",
        __base__=HostGroupChanged,
        group=(stricter_group, ...),
    )
    old = event_schema(HOST)
    new = Envelope[stricter_payload].model_json_schema()
    new["properties"]["type"] = old["properties"]["type"]
    new["properties"]["dataschema"] = old["properties"]["dataschema"]
    problems = breaking_changes(old, new)
    assert any("reason: optional property became required" in p for p in problems), problems
    assert HOST in CATALOGUE


# -- the tightenings of 1.1.0: exactly as listed, nothing beside them ---------------------

HEARTBEAT = "yixian.link.heartbeat.v1"


def _published(release: str, event_type: str) -> dict[str, Any]:
    return load_dir(SCHEMA_ROOT / "published" / release)[event_type]


@pytest.mark.parametrize("event_type", [HOST, HEARTBEAT, "yixian.activity.scheduled.v1"])
def test_the_listed_tightenings_pass_against_1_0_0(event_type: str) -> None:
    old, new = _published("1.0.0", event_type), event_schema(event_type)
    assert "specversion" not in old["required"]
    assert "specversion" in new["required"]
    assert "pattern" not in old["properties"]["traceparent"]
    assert breaking_changes(old, new, event_type, "1.0.0") == []


def test_pairseq_required_passes_only_for_a_type_that_travels_only_on_pair_topics() -> None:
    old, new = _published("1.0.0", HEARTBEAT), event_schema(HEARTBEAT)
    assert "pairseq" in new["required"]
    # the same change, checked as if it were a type that also travels on local topics
    assert breaking_changes(old, new, HOST, "1.0.0") == [
        "$.pairseq: optional property became required",
        "$.pairseq: keyword 'anyOf' removed",
        "$.pairseq: keyword 'minimum' added",
        "$.pairseq: keyword 'type' added",
    ]


def _unlisted_required(s: dict[str, Any]) -> None:
    s["required"].append("subject")


def _other_pattern(s: dict[str, Any]) -> None:
    s["properties"]["traceparent"]["pattern"] = "^00-[0-9a-f]{32}-[0-9a-f]{16}-01$"


def _pairseq_on_a_shared_type(s: dict[str, Any]) -> None:
    s["properties"]["pairseq"] = {"minimum": 1, "type": "integer"}
    s["required"].append("pairseq")


def _specversion_2(s: dict[str, Any]) -> None:
    s["properties"]["specversion"]["const"] = "2.0"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_unlisted_required, "$.subject: optional property became required"),
        (_other_pattern, "$.traceparent: keyword 'pattern' added"),
        (_pairseq_on_a_shared_type, "$.pairseq: optional property became required"),
        (_specversion_2, "$.specversion: const changed"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_a_tightening_not_listed_is_a_break(change: Any, expected: str) -> None:
    old = _published("1.0.0", HOST)
    new = event_schema(HOST)
    change(new)
    problems = breaking_changes(old, new, HOST, "1.0.0")
    assert any(expected in p for p in problems), problems


def test_a_tightening_is_not_undone_against_the_release_that_made_it() -> None:
    old = _published("1.1.0", HEARTBEAT)
    new = copy.deepcopy(old)
    new["required"].remove("specversion")
    new["properties"]["traceparent"].pop("pattern")
    assert breaking_changes(old, new, HEARTBEAT, "1.1.0") == [
        "$.specversion: required property became optional",
        "$.traceparent: keyword 'pattern' removed",
    ]


PARTICIPATION = "yixian.movement.participation_recorded.v1"

_PAIR_ONLY_PARTICIPATION = f"""
import dataclasses, json
from yixian.contracts.routes import PAIR, ROUTES
ROUTES[{PARTICIPATION!r}] = dataclasses.replace(ROUTES[{PARTICIPATION!r}], topics=PAIR)
from yixian.contracts.schemas import breaks_against_published
print(json.dumps(breaks_against_published()))
"""


def test_a_type_made_pair_only_later_is_a_break() -> None:
    """The list names the types pair-only in 1.1.0 for good: a later edit of the routes
    that makes a type pair-only (its schema then requires ``pairseq``) is no listed
    tightening, even though the routes table would now call it pair-only."""
    run = subprocess.run(
        [sys.executable, "-c", _PAIR_ONLY_PARTICIPATION], capture_output=True, check=True
    )
    problems = json.loads(run.stdout)
    for release in ("1.0.0", "1.1.0"):
        assert f"[{release}] {PARTICIPATION} $.pairseq: optional property became required" in (
            problems
        )


def test_a_tightening_passes_only_against_a_release_before_its_own(tmp_path: Path) -> None:
    """Against a release that already had 1.1.0's number (or a later one), a listed rule
    is no excuse: a 1.1.0 frozen without the rules could not gain them afterwards."""
    for release in ("1.0.0", "1.1.0"):
        target = tmp_path / "published" / release
        target.mkdir(parents=True)
        for path in (SCHEMA_ROOT / "published" / "1.0.0").glob("*.json"):
            (target / path.name).write_text(path.read_text())
    problems = breaks_against_published(tmp_path)
    assert not [p for p in problems if p.startswith("[1.0.0]")]
    assert f"[1.1.0] {HEARTBEAT} $.specversion: optional property became required" in problems
    assert f"[1.1.0] {HEARTBEAT} $.traceparent: keyword 'pattern' added" in problems
    assert f"[1.1.0] {HEARTBEAT} $.pairseq: optional property became required" in problems
