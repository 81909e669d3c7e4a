"""What the two owners of a movement publish: the origin group, the host group,
participation and activities.

Each group is always sent whole, with its version; a replica keeps the group with
the larger version, so applying is idempotent and independent of delivery order.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import EmailStr, Field, field_validator, model_validator

from ._base import (
    ContractModel,
    JurisdictionCode,
    LongText,
    ShortText,
    UtcDateTime,
    Version,
)

PhoneNumber = ShortText


class OriginStatus(StrEnum):
    """Where the origin stands on the movement (written only by the origin node)."""

    REGISTERED = "registered"
    RELOCATED = "relocated"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    TRANSFER_REQUESTED = "transfer_requested"
    TRANSFERRED = "transferred"


OPEN_ORIGIN_STATUSES = frozenset({OriginStatus.REGISTERED, OriginStatus.TRANSFER_REQUESTED})
"""The origin's statuses of a movement that is still open: the member is away."""


class HostStatus(StrEnum):
    """Where the host stands on the movement (written only by the host node)."""

    EXPECTED = "expected"
    CHECKED_IN = "checked_in"
    NOT_FOUND = "not_found"
    FORWARDED = "forwarded"
    LOST_CONTACT = "lost_contact"


class MovementStep(StrEnum):
    """The step that made a new version of a group: what happened, said by the side that
    did it (``OriginGroupChanged.step``, ``HostGroupChanged.step``). Consumers key on it and
    never rebuild it by comparing snapshots."""

    # the origin's steps
    REGISTERED = "registered"
    """An outflow registered (also the movement that continues a relocation)."""
    DETAILS_UPDATED = "details_updated"
    RELOCATED = "relocated"
    CANCELLED = "cancelled"
    RETURNED = "returned"
    TRANSFER_REQUESTED = "transfer_requested"
    TRANSFER_WITHDRAWN = "transfer_withdrawn"
    TRANSFER_COMPLETED = "transfer_completed"
    LOST_CONTACT_AT_ORIGIN = "lost_contact_at_origin"
    """The origin cannot reach the member (also one who never checked in)."""
    CONTACT_RESTORED_AT_ORIGIN = "contact_restored_at_origin"
    SUSPENDED = "suspended"
    """The origin suspended the member after lost contact (停止党籍), with a reason."""
    REINSTATED = "reinstated"
    """The origin reinstated a suspended member (恢复党籍), with a reason."""
    REMOVED = "removed"
    """The origin removed the member (除名), with a reason; the movement closes."""
    REPORT_RECORDED = "report_recorded"
    """The member's report to the origin (yearly, or at the origin's interval) was received."""
    # the host's steps
    ASSIGNED = "assigned"
    """A host secretary placed an expected or visiting member with one of the host's
    organizations (``HostGroup.host_org``), or moved the member to another; the host's
    status does not change."""
    CHECKED_IN = "checked_in"
    REJECTED = "rejected"
    """The host does not know the member (status ``not_found``)."""
    FORWARDED = "forwarded"
    LOST_CONTACT = "lost_contact"
    CONTACT_RESTORED = "contact_restored"
    PARTICIPATION_RECORDED = "participation_recorded"
    TRANSFER_ACCEPTED = "transfer_accepted"
    TRANSFER_REJECTED = "transfer_rejected"
    DUES_PAID = "dues_paid"
    """The host confirms the member paid dues there for some months (with the amount and a
    receipt: ``HostGroup.dues``)."""
    REPORT_RECEIVED = "report_received"
    """The host received the member's report to the origin while the member is away
    (``HostGroup.report_received_on``): the origin counts it as the report."""
    ENROLLED = "enrolled"
    """After the origin completed a transfer, the host enrolled the member as its own
    (``HostGroup.enrolment``); the movement stays closed (ADR 19)."""
    FEEDBACK_RAISED = "feedback_raised"
    """The member raised a concern with the host (``HostGroup.feedback`` counts it)."""
    FEEDBACK_ANSWERED = "feedback_answered"
    """The host answered one of the member's concerns (each answer: a new version)."""
    FEEDBACK_CLOSED = "feedback_closed"

    @classmethod
    def of(cls, name: str | None) -> MovementStep | None:
        """The step an event names; None when it names none or one this reader does not
        know (a newer producer's step: no rule of this reader is keyed on it)."""
        try:
            return cls(name) if name is not None else None
        except ValueError:
            return None


StepName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description=(
            "The step that made this version of the group (MovementStep). Absent in a repair"
            " copy and from producers before steps were named. A string, not an enum, so"
            " that a new step is compatible within v1: a reader ignores a step it does not"
            " know."
        ),
        examples=[step.value for step in MovementStep],
    ),
]


class TransferDecision(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Standing(StrEnum):
    """The origin's decision on a member's standing after lost contact."""

    SUSPENDED = "suspended"
    REINSTATED = "reinstated"
    REMOVED = "removed"


class ActivityKind(StrEnum):
    THEME_DAY = "theme_day"
    BRANCH_MEETING = "branch_meeting"
    PARTY_LECTURE = "party_lecture"
    STUDY_SESSION = "study_session"
    VOLUNTEER_SERVICE = "volunteer_service"
    OTHER = "other"


class OrganizationRef(ContractModel):
    """An organization as the other node needs to see it: its id and its name."""

    org_id: UUID
    name: ShortText


class MemberCard(ContractModel):
    """The part of a member record a host needs to receive and recognise the member.

    Nothing derived from the national ID number leaves the origin node, not even a hash:
    whether a person is a node's member is asked of that node, which alone can tell
    (ADR 14).
    """

    member_id: UUID
    name: ShortText
    joined_on: date = Field(description="Date of joining the Party (for the political birthday).")
    national_id_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        deprecated="never sent; a reader discards any value it receives (ADR 14)",
        description=(
            "Never sent. Nodes before ADR 14 sent a hash of the national ID number here; a"
            " reader accepts the property for compatibility and discards its value."
        ),
    )

    @field_validator("national_id_hash", mode="after")
    @classmethod
    def _discard_national_id_hash(cls, _: str | None) -> None:
        """Whatever an older producer put here is dropped on receipt, never stored or passed
        on: a hash of a number guessable among a few million candidates gives it away."""
        return None


class Contact(ContractModel):
    """How to reach the member while away."""

    phone: PhoneNumber | None = None
    email: EmailStr | None = None
    address: LongText | None = None


class Destination(ContractModel):
    """Where the member goes, as the origin recorded it at outflow registration."""

    jurisdiction: JurisdictionCode
    place: ShortText = Field(description="City, district or workplace as the member gave it.")
    host_org_hint: OrganizationRef | None = Field(
        default=None, description="A host organization the origin suggests, if it knows one."
    )


class Period(ContractModel):
    departed_on: date
    expected_return_on: date | None = None

    @model_validator(mode="after")
    def _return_after_departure(self) -> Period:
        if self.expected_return_on is not None and self.expected_return_on < self.departed_on:
            raise ValueError("expected_return_on must not be before departed_on")
        return self


class Certificate(ContractModel):
    """The mobile member certificate (流动党员活动证) issued at outflow registration."""

    number: ShortText = Field(
        description="Issued by the origin node, unique there: <node>-<year>-<sequence> from"
        " registry 0011 on (e.g. 411525-2026-000123); older numbers keep their own form.",
        examples=["411525-2026-000123"],
    )
    issued_on: date


class OutflowReasonKind(StrEnum):
    """Why a member leaves (外出原因), as the outflow registration form asks."""

    WORK = "work"
    """务工: work or employment."""
    STUDY = "study"
    """学习: study or training."""
    BUSINESS = "business"
    """经商: running a business."""
    OTHER = "other"
    """Anything else, said in ``text``."""


class OutflowReason(ContractModel):
    """Why the member left, as the origin recorded it at outflow registration."""

    kind: OutflowReasonKind
    text: LongText | None = Field(
        default=None, description="In the member's words; required when kind is other."
    )

    @model_validator(mode="after")
    def _other_says_what(self) -> OutflowReason:
        if self.kind is OutflowReasonKind.OTHER and not self.text:
            raise ValueError("text is required when kind is other")
        return self


class TransferRequest(ContractModel):
    """The origin's side of the formal transfer handshake."""

    requested_at: UtcDateTime
    reply_due_on: date
    completed_at: UtcDateTime | None = None
    note: LongText | None = None


class TransferReply(ContractModel):
    """The host's side of the formal transfer handshake."""

    decision: TransferDecision
    request_at: UtcDateTime = Field(
        description="requested_at of the transfer request this answers (it may be asked again)."
    )
    replied_at: UtcDateTime
    reason: LongText | None = None

    @model_validator(mode="after")
    def _rejection_has_reason(self) -> TransferReply:
        if self.decision is TransferDecision.REJECTED and self.reason is None:
            raise ValueError("reason is required when the transfer is rejected")
        return self


DuesMonth = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-03"])]
"""A month of dues, ``YYYY-MM``."""

MAX_DUES_FEN = 10_000_000
"""The most one payment of dues may be, in fen (100,000 yuan): more is a typing error."""


def dues_months(from_month: str, to_month: str) -> list[str]:
    """The months ``from_month`` to ``to_month`` (``YYYY-MM``), both included, in order."""
    year, month = int(from_month[:4]), int(from_month[5:])
    months: list[str] = []
    while (current := f"{year:04d}-{month:02d}") <= to_month:
        months.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class DuesPeriod(ContractModel):
    """A run of months of dues, both included."""

    from_month: DuesMonth
    to_month: DuesMonth = Field(description="The last month (the same as from_month: one).")

    @model_validator(mode="after")
    def _in_order(self) -> DuesPeriod:
        if self.to_month < self.from_month:
            raise ValueError("to_month must not be before from_month")
        return self

    @property
    def months(self) -> list[str]:
        return dues_months(self.from_month, self.to_month)


class DuesPayment(ContractModel):
    """Dues a visiting member paid at the host for a run of months (缴纳党费)."""

    period: DuesPeriod
    amount_fen: int = Field(
        ge=1, le=MAX_DUES_FEN, description="The amount paid for the whole period, in fen (分)."
    )
    receipt: ShortText | None = Field(default=None, description="The receipt's number, if any.")
    recorded_at: UtcDateTime


class Enrolment(ContractModel):
    """The host took the member into its own membership after a completed transfer."""

    member_id: UUID = Field(description="The member's id at the host (a new member record).")
    org: OrganizationRef = Field(description="The host organization the member now belongs to.")
    enrolled_at: UtcDateTime


class StandingDecision(ContractModel):
    """The origin's latest decision on the member's standing, with the lost contact it
    answers (a decision closes that episode's prompts)."""

    standing: Standing
    reason: LongText
    decided_at: UtcDateTime
    lost_contact_since: date | None = Field(
        default=None, description="The lost contact (its first day) the decision answers."
    )
    suspended_at: UtcDateTime | None = Field(
        default=None,
        description="When the member was suspended (kept by a reinstatement or a removal).",
    )


class ParticipationSummary(ContractModel):
    attended: int = Field(ge=0)
    last_attended_at: UtcDateTime | None = None


class FeedbackState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class SharedConcern(ContractModel):
    """A concern the member allowed the host to show the origin (``share_with_origin``)."""

    feedback_id: UUID
    text: LongText
    state: FeedbackState
    raised_at: UtcDateTime
    first_answered_at: UtcDateTime | None = None


class FeedbackSummary(ContractModel):
    """What the origin sees of the concerns a visiting member raised with the host: counts,
    states and times; a concern's text only where the member allowed it."""

    raised: int = Field(ge=0)
    answered: int = Field(ge=0, description="Concerns with at least one answer.")
    open: int = Field(ge=0, description="Concerns raised and not answered yet.")
    closed: int = Field(ge=0)
    answers: int = Field(default=0, ge=0, description="Answers the host gave, in all.")
    last_raised_at: UtcDateTime | None = None
    last_first_answer_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Time to first answer of the concern answered first most recently.",
    )
    shared: list[SharedConcern] = Field(
        default=[],
        max_length=20,
        description="The latest concerns the member allowed the origin to read (text too).",
    )


class OriginGroup(ContractModel):
    """The origin node's field group of a movement, always sent whole."""

    movement_id: UUID
    version: Version
    status: OriginStatus
    origin: JurisdictionCode
    origin_org: OrganizationRef
    member: MemberCard
    destination: Destination
    period: Period
    contact: Contact
    certificate: Certificate | None = None
    reason: OutflowReason | None = Field(
        default=None,
        description="Why the member left (absent from producers before it was recorded).",
    )
    check_in_due_on: date
    previous_movement_id: UUID | None = Field(
        default=None, description="The movement this one continues after a relocation."
    )
    next_movement_id: UUID | None = Field(
        default=None, description="The movement that continues this one after a relocation."
    )
    transfer: TransferRequest | None = None
    lost_contact_since: date | None = Field(
        default=None,
        description="The origin cannot reach the member since this day (also a member who"
        " never checked in); the host records its own in the host group.",
    )
    decision: StandingDecision | None = Field(
        default=None, description="The origin's latest decision on the member's standing."
    )
    last_report_on: date | None = Field(
        default=None,
        description="The day the member last reported to the origin; the next report is due"
        " the origin's report interval later (from departure while there is none).",
    )
    changed_at: UtcDateTime
    changed_by: ShortText

    @model_validator(mode="after")
    def _status_matches_details(self) -> OriginGroup:
        if self.origin == self.destination.jurisdiction:
            raise ValueError("destination.jurisdiction must differ from origin")
        if self.status is OriginStatus.RELOCATED and self.next_movement_id is None:
            raise ValueError("next_movement_id is required when status is relocated")
        if (
            self.status in (OriginStatus.TRANSFER_REQUESTED, OriginStatus.TRANSFERRED)
            and self.transfer is None
        ):
            raise ValueError(f"transfer is required when status is {self.status.value}")
        if self.status is OriginStatus.TRANSFERRED and (
            self.transfer is None or self.transfer.completed_at is None
        ):
            raise ValueError("transfer.completed_at is required when status is transferred")
        return self


class HostGroup(ContractModel):
    """The host node's field group of a movement, always sent whole."""

    movement_id: UUID
    version: Version
    status: HostStatus
    host: JurisdictionCode
    host_org: OrganizationRef | None = Field(
        default=None,
        description="The host organization answerable for the member: the one a host"
        " secretary assigned the arrival to (step assigned), then the one that checked the"
        " member in. Absent: the host's intake still has to place the member.",
    )
    branch: OrganizationRef | None = Field(
        default=None, description="The branch inside host_org the member checked in at."
    )
    checked_in_at: UtcDateTime | None = None
    reason: LongText | None = Field(
        default=None, description="Why the host could not find the member or forwarded them."
    )
    forwarded_to: JurisdictionCode | None = None
    lost_contact_since: date | None = None
    participation: ParticipationSummary = ParticipationSummary(attended=0)
    transfer_reply: TransferReply | None = None
    dues_paid: list[DuesMonth] = Field(
        default=[],
        max_length=600,
        description="The months whose dues the member paid at the host, in order (the member "
        "pays dues where they live; the origin sees which months are paid where); the months "
        "of every payment in dues are among them.",
    )
    dues: list[DuesPayment] = Field(
        default=[],
        max_length=600,
        description="The payments of dues recorded at the host, by first month; their months"
        " never overlap (absent from producers before amounts were recorded).",
    )
    report_received_on: date | None = Field(
        default=None,
        description="The day the member last gave the host the report due to the origin; the"
        " origin counts the later of this and its own last_report_on (report_due_on).",
    )
    enrolment: Enrolment | None = Field(
        default=None,
        description="Set once the host enrolled the member after the origin completed the "
        "transfer (step enrolled); the member then belongs to the host (ADR 19).",
    )
    transfer_reply_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="The host's deadline for replying to a transfer request, in days from the"
        " request (the host's setting, stamped at each of its steps): the reply is due then,"
        " at both sides, whatever the origin's own setting.",
    )
    feedback: FeedbackSummary | None = Field(
        default=None,
        description="The concerns the member raised with the host, as counts and times (steps"
        " feedback_raised, feedback_answered, feedback_closed); absent: none raised.",
    )
    changed_at: UtcDateTime
    changed_by: ShortText

    @model_validator(mode="after")
    def _status_matches_details(self) -> HostGroup:
        if self.status is HostStatus.CHECKED_IN and (
            self.host_org is None or self.checked_in_at is None
        ):
            raise ValueError("host_org and checked_in_at are required when status is checked_in")
        if self.status is HostStatus.FORWARDED and self.forwarded_to is None:
            raise ValueError("forwarded_to is required when status is forwarded")
        if self.status is HostStatus.NOT_FOUND and self.reason is None:
            raise ValueError("reason is required when status is not_found")
        if self.status is HostStatus.LOST_CONTACT and self.lost_contact_since is None:
            raise ValueError("lost_contact_since is required when status is lost_contact")
        return self


class OriginGroupChanged(ContractModel):
    """The origin published a new version of its group of a movement."""

    EVENT_TYPE: ClassVar[str] = "yixian.movement.origin_group.v1"
    group: OriginGroup
    step: StepName | None = None
    repair: bool | None = Field(
        default=None,
        description="True: the origin's current copy, sent to repair a replica; it replaces"
        " the replica's copy when the two differ, whatever their versions (ADR 7).",
    )


class HostGroupChanged(ContractModel):
    """The host published a new version of its group of a movement."""

    EVENT_TYPE: ClassVar[str] = "yixian.movement.host_group.v1"
    group: HostGroup
    step: StepName | None = None
    repair: bool | None = Field(
        default=None,
        description="True: the host's current copy, sent to repair a replica; it replaces"
        " the replica's copy when the two differ, whatever their versions (ADR 7).",
    )


class ParticipationRecorded(ContractModel):
    """The host recorded that a visiting member attended an activity (append-only, keyed)."""

    EVENT_TYPE: ClassVar[str] = "yixian.movement.participation_recorded.v1"
    participation_id: UUID
    movement_id: UUID
    host: JurisdictionCode
    host_org: OrganizationRef
    activity_id: UUID | None = None
    kind: ActivityKind
    title: ShortText
    attended_at: UtcDateTime
    recorded_at: UtcDateTime
    recorded_by: ShortText


class ActivityScheduled(ContractModel):
    """An organization scheduled an activity for every member present in its area."""

    EVENT_TYPE: ClassVar[str] = "yixian.activity.scheduled.v1"
    activity_id: UUID
    jurisdiction: JurisdictionCode
    organizer: OrganizationRef
    kind: ActivityKind
    title: ShortText
    starts_at: UtcDateTime
    ends_at: UtcDateTime | None = None
    location: ShortText
    scheduled_by: ShortText

    @model_validator(mode="after")
    def _ends_after_start(self) -> ActivityScheduled:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self
