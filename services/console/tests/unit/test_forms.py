"""The step forms follow the registry's table of steps and its body models, and shape what
a person typed into the body the registry reads; a refusal lands beside its input."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from yixian.console.domain.forms import FORMS, REGISTRATION, StepForm, body_of, place_errors
from yixian.registry.entrypoints import schemas
from yixian.registry.entrypoints.routers.movements import STEPS


def _fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every dotted path a body model takes."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        found.add(path)
        for candidate in getattr(info.annotation, "__args__", (info.annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found |= _fields(candidate, path + ".")
    return found


def test_every_step_of_the_registry_has_a_form_and_no_form_is_for_a_step_it_lacks() -> None:
    assert set(FORMS) == {step.path for step in STEPS}


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.path)
def test_a_form_asks_only_for_what_its_step_takes(step: Any) -> None:
    form = FORMS[step.path]
    taken = _fields(step.body) if step.body is not None else set()
    assert set(form.names) <= taken, set(form.names) - taken


def test_the_registration_form_asks_only_for_what_a_registration_takes() -> None:
    taken = _fields(schemas.OutflowRegistration)
    assert set(REGISTRATION.names) <= taken
    assert "certificate" not in REGISTRATION.names  # the node issues it


def test_a_filled_in_form_becomes_the_nested_body() -> None:
    values = {
        "destination.jurisdiction": "110105",
        "destination.place": " 北京市朝阳区 ",
        "period.departed_on": "2026-03-01",
        "period.expected_return_on": "",
        "contact.phone": "+86 138 0000 0000",
        "reason.kind": "work",
        "unrelated": "ignored",
    }
    assert body_of(REGISTRATION, values) == {
        "destination": {"jurisdiction": "110105", "place": "北京市朝阳区"},
        "period": {"departed_on": "2026-03-01"},
        "contact": {"phone": "+86 138 0000 0000"},
        "reason": {"kind": "work"},
    }


def test_times_are_beijing_time_numbers_are_numbers_and_boxes_are_booleans() -> None:
    check_in = body_of(FORMS["check-in"], {"checked_in_at": "2026-03-02T09:30"})
    assert check_in == {"checked_in_at": "2026-03-02T09:30:00+08:00"}
    zoned = body_of(FORMS["check-in"], {"checked_in_at": "2026-03-02T01:30:00Z"})
    assert zoned == {"checked_in_at": "2026-03-02T01:30:00Z"}  # as typed: the registry decides
    dues = body_of(FORMS["dues"], {"amount_fen": "4500", "period.from_month": "2026-03"})
    assert dues == {"amount_fen": 4500, "period": {"from_month": "2026-03"}}
    assert body_of(FORMS["dues"], {"amount_fen": "45.00"}) == {"amount_fen": "45.00"}
    assert body_of(FORMS["suspend"], {"reason": "失联", "force": "on"}) == {
        "reason": "失联",
        "force": True,
    }
    assert body_of(FORMS["suspend"], {"reason": "失联"}) == {"reason": "失联"}
    assert body_of(FORMS["cancel"], {"anything": "x"}) == {}


def test_a_refusal_is_placed_beside_its_input_or_its_group_or_above_the_form() -> None:
    names = REGISTRATION.names
    placed = place_errors(names, "destination.place", "field required")
    assert placed.by_input == {"destination.place": "field required"}
    grouped = place_errors(names, "contact", "must give at least one way to reach the member")
    assert grouped.by_input == {"contact.phone": "must give at least one way to reach the member"}
    above = place_errors(names, "member_id", "the member is away")
    assert above.by_input == {}
    assert above.general == ["member_id: the member is away"]
    whole = place_errors(names, "body", "the body is not JSON")
    assert whole.general == ["the body is not JSON"]
    several = place_errors(
        names,
        "period.departed_on",
        "period.departed_on: invalid date",
        [
            {"field": "period.departed_on", "reason": "invalid date"},
            {"field": "reason.kind", "reason": "not one of work, study"},
            {"field": "period.departed_on", "reason": "too early"},
        ],
    )
    assert several.by_input == {
        "period.departed_on": "invalid date；too early",
        "reason.kind": "not one of work, study",
    }


def test_forms_without_inputs_are_confirmations() -> None:
    confirmations = {path for path, form in FORMS.items() if not form.inputs}
    assert confirmations == {step.path for step in STEPS if step.body is None}
    assert all(isinstance(form, StepForm) and form.title for form in FORMS.values())
