"""The committed JSON Schemas: fresh, valid, and compatible with every published release."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from yixian.contracts import CATALOGUE, CONTRACT_RELEASE
from yixian.contracts.asyncapi import PAIR_ENVELOPE
from yixian.contracts.examples import example_events
from yixian.contracts.schemas import (
    SCHEMA_ROOT,
    breaks_against_published,
    current_dir,
    load_dir,
    main,
    published_dirs,
    stale_files,
)


def test_committed_schemas_match_the_models() -> None:
    stale = stale_files(current_dir())
    assert not stale, f"stale schemas {stale}: run `make schemas` and commit the result"


def test_every_event_type_has_a_committed_schema() -> None:
    assert set(load_dir(current_dir())) == set(CATALOGUE) | {PAIR_ENVELOPE}


def test_at_least_one_release_is_published() -> None:
    assert [d.name for d in published_dirs()][:2] == ["1.0.0", "1.1.0"]


def test_models_do_not_break_any_published_release() -> None:
    assert breaks_against_published() == []


@pytest.mark.parametrize("event", example_events(), ids=lambda e: e.type)
def test_examples_validate_against_their_published_schema(event: object) -> None:
    """An independent JSON Schema validator agrees with the models on the wire form."""
    wire = json.loads(event.encode())  # type: ignore[attr-defined]
    schema = load_dir(current_dir())[wire["type"]]
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(wire)


def test_schema_rejects_what_the_model_rejects() -> None:
    wire = json.loads(example_events()[0].encode())
    wire["data"]["group"]["nickname"] = "x"
    schema = load_dir(current_dir())[wire["type"]]
    errors = list(Draft202012Validator(schema).iter_errors(wire))
    assert any("nickname" in e.message for e in errors)


def test_schema_root_is_the_contracts_folder() -> None:
    assert (SCHEMA_ROOT.parent / "pyproject.toml").read_text().count(
        'name = "yixian-contracts"'
    ) == 1


def _copy_contract(root: Path) -> Path:
    """A copy of the committed contract (current and published) under ``root``."""
    shutil.copytree(current_dir(), current_dir(root))
    shutil.copytree(SCHEMA_ROOT / "published", root / "published")
    return root / "published" / CONTRACT_RELEASE


def test_the_check_passes_on_the_committed_contract(tmp_path: Path) -> None:
    _copy_contract(tmp_path)
    assert main(["check"], root=tmp_path) == 0


def test_the_check_fails_when_the_frozen_release_of_the_version_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Release ``CONTRACT_RELEASE`` is frozen: a contract that differs from it, however
    compatibly, is another release and must say so (the AsyncAPI document's version)."""
    frozen = _copy_contract(tmp_path) / "yixian.link.heartbeat.v1.json"
    schema = json.loads(frozen.read_text())
    schema["description"] = "Said otherwise when it was frozen."
    frozen.write_text(json.dumps(schema))
    assert main(["check"], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert f"yixian.link.heartbeat.v1.json differs from release {CONTRACT_RELEASE}" in out
    assert "topics.CONTRACT_RELEASE" in out
