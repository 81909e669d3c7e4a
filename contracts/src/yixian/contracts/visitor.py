"""The unregistered visitor (口袋党员, ADR 21): a host asks a person's claimed origin
whether the person is its member, and the origin answers.

What crosses is only what the origin needs to look among its own members: the name the
person gave and the last four characters of the national ID (the three-digit sequence
and the check digit). Never the number, its birth date, or any hash of it: the origin
keeps the number only under its own key (ADR 14), so no hash the host could compute
would help it, and any hash sent is a test a reader could try guesses against. The
answer says match, no match or ambiguous, and on a match the movement the origin
registered; nothing of the member (the host learns the member from that movement's
origin group, as for any outflow).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from ._base import ContractModel, JurisdictionCode, ShortText, UtcDateTime

IdEnding = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{3}[0-9X]$",
        description="The last four characters of the person's national ID (sequence and"
        " check digit); the rest of the number never leaves the host.",
        examples=["123X"],
    ),
]


class ClaimResult(StrEnum):
    """What the origin found among its members for a claim."""

    MATCH = "match"
    """Exactly one member, confirmed by the origin, which registered the outflow to the host."""
    NO_MATCH = "no_match"
    """No member of the origin (or one the origin cannot send to the host)."""
    AMBIGUOUS = "ambiguous"
    """Several members fit; the origin's secretary decides (a later answer may follow)."""


class VisitorClaimAsked(ContractModel):
    """A host asks the claimed origin whether a person who turned up is its member."""

    EVENT_TYPE: ClassVar[str] = "yixian.visitor.claim_asked.v1"
    claim_id: UUID
    host: JurisdictionCode = Field(description="The node asking (the topic's source).")
    origin: JurisdictionCode = Field(description="The node asked (the topic's destination).")
    name: ShortText = Field(description="The name the person gave.")
    id_ending: IdEnding
    asked_at: UtcDateTime

    @model_validator(mode="after")
    def _two_nodes(self) -> VisitorClaimAsked:
        if self.host == self.origin:
            raise ValueError("a claim is asked of another node")
        return self


class VisitorClaimAnswered(ContractModel):
    """The origin's answer to a claim. Nothing of the member: on a match, the movement the
    origin registered, whose origin group reaches the host as every outflow does."""

    EVENT_TYPE: ClassVar[str] = "yixian.visitor.claim_answered.v1"
    claim_id: UUID
    host: JurisdictionCode
    origin: JurisdictionCode
    result: ClaimResult
    movement_id: UUID | None = Field(
        default=None, description="On a match: the movement the origin registered to the host."
    )
    answered_at: UtcDateTime

    @model_validator(mode="after")
    def _movement_with_match(self) -> VisitorClaimAnswered:
        if (self.result is ClaimResult.MATCH) != (self.movement_id is not None):
            raise ValueError("movement_id comes with a match, and only with a match")
        if self.host == self.origin:
            raise ValueError("a claim is answered to another node")
        return self
