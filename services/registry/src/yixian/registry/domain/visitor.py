"""The unregistered visitor (口袋党员, ADR 21), without I/O.

The host records the person and asks the claimed origin; only the name and the last
four characters of the national ID cross. The origin looks among its members at home
with the same name and the same ending, and answers: none is ``no_match`` (at once), one
waits for its secretary to confirm (``match``, with the outflow registered), several are
``ambiguous`` until the secretary names one.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from yixian.contracts import ClaimResult

from .errors import Invalid
from .member import normalise_national_id


class ClaimState(StrEnum):
    """Where a visitor's claim stands at the host."""

    ASKED = "asked"
    """Waiting for the origin's answer."""
    AMBIGUOUS = "ambiguous"
    """The origin found several members; its secretary decides."""
    MATCHED = "matched"
    """The origin registered the outflow: the member is expected here as any other."""
    NO_MATCH = "no_match"
    """The origin does not know the person: the host's to-do."""
    OVERDUE = "overdue"
    """No confirmation by the deadline: the host's to-do."""


def claimed_origin(
    national_id: str, origin: str | None, *, node: str, partners: frozenset[str]
) -> str:
    """The node asked: the one the person named, else the region of the ID number (its
    first six digits), which must be a linked partner other than this node."""
    number = normalise_national_id(national_id)
    asked = origin or number[:6]
    if asked == node:
        raise Invalid(
            "is this node: a member of this node is not a visitor (find the member instead)",
            field="origin",
        )
    if asked not in partners:
        raise Invalid(
            f"{asked} is not a linked partner of this node; name the origin the person claims",
            field="origin",
        )
    return asked


def id_ending(national_id: str) -> str:
    """What crosses of the number: its last four characters (sequence and check digit)."""
    return normalise_national_id(national_id)[-4:]


def first_result(candidates: int) -> ClaimResult:
    """What the origin finds before anyone confirms."""
    if candidates == 0:
        return ClaimResult.NO_MATCH
    return ClaimResult.MATCH if candidates == 1 else ClaimResult.AMBIGUOUS


def answered_at_once(result: ClaimResult) -> bool:
    """Whether the origin answers without its secretary: a unique match waits for a
    confirmation, which registers the outflow; no match and ambiguity are told at once."""
    return result is not ClaimResult.MATCH


def claim_state(answer: ClaimResult | None, due_on: date, today: date) -> ClaimState:
    """The host's view of its claim from the origin's latest answer and the deadline."""
    if answer is ClaimResult.MATCH:
        return ClaimState.MATCHED
    if answer is ClaimResult.NO_MATCH:
        return ClaimState.NO_MATCH
    if today > due_on:
        return ClaimState.OVERDUE
    return ClaimState.AMBIGUOUS if answer is ClaimResult.AMBIGUOUS else ClaimState.ASKED


TO_DO = frozenset({ClaimState.NO_MATCH, ClaimState.OVERDUE})
"""The claims a host secretary must act on (enrol the person, or find the right origin)."""
