"""Request bodies of the HTTP API: closed to unknown fields; every error names its field."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from yixian.contracts import (
    MAX_DUES_FEN,
    ActivityKind,
    Contact,
    Destination,
    DuesMonth,
    DuesPeriod,
    LongText,
    OrganizationRef,
    OutflowReason,
    Period,
    PlainText,
    ShortText,
    TransferDecision,
    UtcDateTime,
)
from yixian.registry.adapters.auth import Role
from yixian.registry.domain import Addressee, OrgKind
from yixian.runtime.divisions import DivisionCode

# Text follows the contracts' rules (no control characters), which every event also obeys.
Name = ShortText
Text = LongText
Phone = Annotated[str, Field(max_length=50), PlainText]
PatchPhone = Annotated[str, Field(min_length=1, max_length=50), PlainText]
WebhookUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://"), PlainText]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class MergePatch(Body):
    """A JSON merge patch (RFC 7396): only the fields sent change; null removes a field."""

    def sent(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


def fields(body: Body) -> dict[str, Any]:
    """A body's fields as a handler's keyword arguments (nested models stay models, but a
    merge patch becomes the fields it sends); a field excluded from the body's dump is
    there only to be refused with its name, and is no argument."""
    values = {
        name: getattr(body, name)
        for name, info in type(body).model_fields.items()
        if not info.exclude
    }
    return {k: v.sent() if isinstance(v, MergePatch) else v for k, v in values.items()}


class NewOrganization(Body):
    name: Name
    kind: OrgKind
    parent_id: UUID
    jurisdiction: DivisionCode | None = Field(
        default=None,
        description="For a working committee: the host area it serves. Default: the parent's.",
    )
    secretary_name: Name | None = None
    contact_email: EmailStr | None = Field(
        default=None, description="Where its secretary gets notices."
    )
    contact_phone: Phone | None = None
    contact_sms: Phone | None = Field(
        default=None, description="A mobile number for notices by SMS (when no mail is given)."
    )
    webhook_url: WebhookUrl | None = Field(
        default=None, description="Signed webhook for notices to this organization's system."
    )


class OrganizationUpdate(MergePatch):
    """The fields to change: a field sent with a value is set, a contact sent as null is
    removed, a field not sent stays as it is. The name cannot be removed."""

    name: Name | None = None
    secretary_name: Name | None = None
    contact_email: EmailStr | None = Field(
        default=None, description="Where its secretary gets notices."
    )
    contact_phone: PatchPhone | None = None
    contact_sms: PatchPhone | None = Field(
        default=None, description="A mobile number for notices by SMS (when no mail is given)."
    )
    webhook_url: WebhookUrl | None = Field(
        default=None, description="Signed webhook for notices to this organization's system."
    )


class Assignment(Body):
    org_id: UUID = Field(
        description="The organization of this node that takes the member: its secretaries"
        " see the arrival in their queues and check the member in."
    )


class NewApiKey(Body):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    role: Role
    org_id: UUID


class NewMember(Body):
    org_id: UUID
    name: Name
    joined_on: date
    phone: Phone | None = None
    email: EmailStr | None = None
    national_id: Annotated[str, Field(min_length=18, max_length=18)] | None = Field(
        default=None, description="18-character resident ID; stored only as a keyed hash."
    )


class ContactPatch(MergePatch):
    """The contact fields to change: a field sent with a value is set, one sent as null is
    removed, one not sent stays as it is. One way to reach the member must remain."""

    phone: Annotated[str, Field(min_length=1, max_length=50), PlainText] | None = None
    email: EmailStr | None = None
    address: Text | None = None


class MemberUpdate(Body):
    contact: ContactPatch = Field(
        description="Only the fields sent change; null removes one (JSON merge patch).",
        examples=[{"phone": "+86 139 0000 0001", "address": "北京市朝阳区十八里店乡"}],
    )


def _reachable(contact: Contact | None) -> Contact | None:
    if contact is not None and not any(contact.model_dump().values()):
        raise ValueError("must give at least one way to reach the member: phone, email or address")
    return contact


class OutflowRegistration(Body):
    member_id: UUID
    destination: Destination
    period: Period
    contact: Contact = Field(description="At least one of phone, email and address.")
    reason: OutflowReason = Field(
        description="Why the member leaves: work, study, business, or other with its text.",
        examples=[{"kind": "work", "text": "在北京务工"}, {"kind": "other", "text": "照顾父母"}],
    )
    certificate: SkipJsonSchema[None] = Field(
        default=None,
        exclude=True,
        description="Never sent: this node issues the certificate and its number.",
    )

    @field_validator("certificate", mode="before")
    @classmethod
    def _issued_here(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "is issued by this node (<node>-<year>-<sequence>); leave it out, the answer"
                " carries it in origin_group.certificate"
            )
        return None

    _contact = field_validator("contact")(_reachable)


class DetailsUpdate(Body):
    place: Name | None = None
    host_org_hint: OrganizationRef | None = None
    period: Period | None = None
    contact: ContactPatch | None = Field(
        default=None,
        description="Only the fields sent change; null removes one (JSON merge patch).",
    )


class Relocation(Body):
    destination: Destination
    departed_on: date
    contact: Contact | None = None

    _contact = field_validator("contact")(_reachable)


class Return(Body):
    returned_on: date


class TransferRequestBody(Body):
    note: Text | None = None


class CheckIn(Body):
    host_org_id: UUID | None = Field(
        default=None, description="Default: the organization the member was assigned to."
    )
    branch_id: UUID | None = None
    checked_in_at: UtcDateTime | None = Field(default=None, description="Default: now.")


class Rejection(Body):
    reason: Text


class Forwarding(Body):
    forwarded_to: DivisionCode
    reason: Text


class LostContact(Body):
    since: date


class Suspension(Body):
    reason: Text = Field(description="Why the member is suspended (停止党籍).")
    force: bool = Field(
        default=False,
        description="Decide before six months of lost contact have passed (the rule's "
        "deadline, the node's `DEADLINES__LOST_CONTACT_SUSPENSION_DAYS`).",
    )


class Reinstatement(Body):
    reason: Text = Field(description="Why the suspended member is reinstated (恢复党籍).")


class Removal(Body):
    reason: Text = Field(description="Why the suspended member is removed (除名).")
    force: bool = Field(
        default=False,
        description="Decide before the removal deadline (two more years after the suspension "
        "prompt, `DEADLINES__LOST_CONTACT_REMOVAL_DAYS`).",
    )


class Report(Body):
    reported_on: date = Field(description="The day the member reported to the origin.")


class ReportReceived(Body):
    reported_on: date = Field(
        description="The day the member gave the host the report due to the origin."
    )


class ParticipationBody(Body):
    participation_id: UUID = Field(description="Chosen by the caller: a retry records nothing new.")
    activity_id: UUID | None = None
    kind: ActivityKind
    title: Name
    attended_at: UtcDateTime


class DuesPaid(Body):
    """Either a payment (``period``, ``amount_fen``, an optional ``receipt``) or, as before,
    months confirmed paid without an amount (``months``)."""

    period: DuesPeriod | None = Field(
        default=None,
        description="The months paid for, both included (at most 24), from the month of"
        " departure to the current one; a month already recorded paid here: 422 conflict.",
        examples=[{"from_month": "2026-01", "to_month": "2026-03"}],
    )
    amount_fen: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DUES_FEN,
        description="The amount paid for the period, in fen (分): 4500 is 45.00 yuan.",
        examples=[4500],
    )
    receipt: Name | None = Field(default=None, description="The receipt's number, if any.")
    months: list[DuesMonth] | None = Field(
        default=None,
        min_length=1,
        max_length=24,
        description="Months confirmed paid without an amount (instead of a period).",
        examples=[["2026-03"]],
    )


class TransferReplyBody(Body):
    decision: TransferDecision
    reason: Text | None = None


class Enrolment(Body):
    org_id: UUID | None = Field(
        default=None,
        description="The organization of this node the member joins. Default: the one that"
        " checked the member in.",
    )


class NewActivity(Body):
    org_id: UUID
    kind: ActivityKind
    title: Name
    starts_at: UtcDateTime
    ends_at: UtcDateTime | None = None
    location: Name


class NewConcern(Body):
    """A member's concern, raised by a secretary on the member's behalf."""

    movement_id: UUID | None = Field(
        default=None,
        description="The member's movement: hosted here (addressed_to host) or registered here"
        " (addressed_to origin).",
    )
    member_id: UUID | None = Field(
        default=None, description="A member of this node (addressed_to origin), instead."
    )
    addressed_to: Addressee
    text: Text
    share_with_origin: bool = Field(
        default=False,
        description="The member allows the host to show the origin this concern's text (the"
        " origin always sees counts, states and times).",
    )


class ConcernAnswer(Body):
    text: Text


class NewVisitor(Body):
    """A person who turned up claiming membership of another node (ADR 21)."""

    name: Name
    national_id: Annotated[str, Field(min_length=18, max_length=18)] = Field(
        description="18-character resident ID as the person showed it; kept here only as a"
        " keyed hash and masked; only its last four characters are sent to the origin."
    )
    origin: DivisionCode | None = Field(
        default=None,
        description="The node the person claims membership of (a linked partner); default:"
        " the region of the ID number (its first six digits).",
    )
    contact: Contact = Field(description="How to reach the person: phone, email or address.")
    org_id: UUID | None = Field(
        default=None, description="The organization recording the claim; default: the root."
    )

    @field_validator("contact")
    @classmethod
    def _contact_reaches(cls, value: Contact) -> Contact:
        reached = _reachable(value)
        assert reached is not None
        return reached


class ClaimConfirmation(Body):
    """The origin confirms a claim: the outflow registered from the member's record."""

    member_id: UUID | None = Field(
        default=None,
        description="Which member, when several fit (default: the one member found).",
    )
    place: Name = Field(
        default="as the host recorded the visitor",
        description="Where the member is, as the host told it.",
    )
    period: Period | None = Field(default=None, description="Default: departed today.")
    contact: Contact | None = Field(
        default=None, description="Default: the member's contact on this node."
    )
