"""The shared movement record as this node sees it, and every step either side may take.

A movement has two field groups (the contract's :class:`OriginGroup` and
:class:`HostGroup`). This node writes only the group of the side it is on; each step
produces the group's next version, whole, and records a domain event. The other side's
group arrives through the sync service and is never written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from yixian.contracts import (
    OPEN_ORIGIN_STATUSES,
    ActivityKind,
    Certificate,
    Contact,
    Deadlines,
    Destination,
    HostGroup,
    HostStatus,
    MemberCard,
    MovementState,
    MovementStep,
    OrganizationRef,
    OriginGroup,
    OriginStatus,
    OutflowReason,
    ParticipationSummary,
    Period,
    TransferDecision,
    TransferReply,
    TransferRequest,
    movement_state,
    transfer_reply_current,
)

from . import dates
from .contact import CONTACT_FIELDS, merge_contact
from .errors import Invalid, InvalidTransition, NotOwner


class Side(StrEnum):
    ORIGIN = "origin"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class OriginGroupChanged:
    group: OriginGroup
    step: MovementStep
    """The step that made this version: what the event says happened."""


@dataclass(frozen=True, slots=True)
class HostGroupChanged:
    group: HostGroup
    step: MovementStep
    """The step that made this version: what the event says happened."""


@dataclass(frozen=True, slots=True)
class Participation:
    participation_id: UUID
    movement_id: UUID
    host: str
    host_org: OrganizationRef
    activity_id: UUID | None
    kind: ActivityKind
    title: str
    attended_at: datetime
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True, slots=True)
class ParticipationAdded:
    participation: Participation


DomainEvent = OriginGroupChanged | HostGroupChanged | ParticipationAdded


def _rebuild(model: type[Any], base: dict[str, Any], changes: dict[str, Any]) -> Any:
    """A validated new snapshot; a rule the contract enforces becomes a domain refusal."""
    try:
        return model.model_validate({**base, **changes})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise Invalid(first["msg"].removeprefix("Value error, "), field=where) from exc


def require_reachable(contact: Contact, *, field: str = "contact") -> None:
    """A contact gives at least one way to reach the member."""
    if not any(getattr(contact, name) for name in CONTACT_FIELDS):
        raise Invalid(
            "must give at least one way to reach the member: a phone, email or address",
            field=field,
        )


def _require_period(period: Period, now: datetime, *, field: str) -> None:
    dates.require_departure(period.departed_on, now, field=f"{field}.departed_on")
    dates.require_expected_return(
        period.expected_return_on, now, field=f"{field}.expected_return_on"
    )


@dataclass
class Movement:
    """One movement: both groups as this node holds them, plus the events of this change."""

    movement_id: UUID
    origin: str
    host: str
    origin_group: OriginGroup | None
    host_group: HostGroup | None
    events: list[DomainEvent] = field(default_factory=list)

    # -- reading -------------------------------------------------------------------------

    @property
    def state(self) -> MovementState:
        return movement_state(self.origin_group, self.host_group)

    def side_of(self, node: str) -> Side:
        if node == self.origin:
            return Side.ORIGIN
        if node == self.host:
            return Side.HOST
        raise NotOwner(f"node {node} is neither origin nor host of movement {self.movement_id}")

    def _require(self, node: str, side: Side, step: str) -> None:
        mine = self.side_of(node)
        if mine is not side:
            owner = self.origin if side is Side.ORIGIN else self.host
            raise NotOwner(
                f"{step} changes the {side.value} group of movement {self.movement_id}, "
                f"which only {side.value} node {owner} writes; node {node} is its {mine.value}"
            )
        if not self.state.is_open:
            raise InvalidTransition(
                f"{step}: movement {self.movement_id} is closed ({self.state.value})"
            )

    def _origin(self) -> OriginGroup:
        if self.origin_group is None:
            raise InvalidTransition(
                f"movement {self.movement_id} has no origin group yet (not received from origin)"
            )
        return self.origin_group

    def _refuse(self, step: str, allowed: str) -> InvalidTransition:
        return InvalidTransition(
            f"cannot {step} movement {self.movement_id}: it is {self.state.value}; "
            f"{step} needs {allowed}"
        )

    # -- origin side ---------------------------------------------------------------------

    @classmethod
    def register_outflow(
        cls,
        *,
        node: str,
        origin_org: OrganizationRef,
        member: MemberCard,
        destination: Destination,
        period: Period,
        contact: Contact,
        certificate: Certificate | None,
        deadlines: Deadlines,
        partners: frozenset[str],
        now: datetime,
        actor: str,
        movement_id: UUID | None = None,
        previous_movement_id: UUID | None = None,
        reason: OutflowReason | None = None,
    ) -> Movement:
        """The origin records a departure: a new movement, origin group version 1.

        The destination must be a linked partner (``partners``): a movement to any other
        jurisdiction has no topic to travel on. The contact gives a way to reach the member;
        ``reason`` says why the member leaves; ``certificate`` is the one this node issued
        (``domain.certificate``).
        """
        movement_id = movement_id or uuid4()
        if destination.jurisdiction == node:
            raise Invalid(
                "destination must be another jurisdiction than this node's",
                field="destination.jurisdiction",
            )
        if destination.jurisdiction not in partners:
            linked = ", ".join(sorted(partners)) or "none yet"
            raise Invalid(
                f"{destination.jurisdiction} is not a linked partner of node {node}"
                f" (partners: {linked})",
                field="destination.jurisdiction",
            )
        require_reachable(contact)
        _require_period(period, now, field="period")
        if certificate is not None:
            dates.require_issued(
                certificate.issued_on, period.departed_on, now, field="certificate.issued_on"
            )
        group = _rebuild(
            OriginGroup,
            {},
            {
                "movement_id": movement_id,
                "version": 1,
                "status": OriginStatus.REGISTERED,
                "origin": node,
                "origin_org": origin_org,
                "member": member,
                "destination": destination,
                "period": period,
                "contact": contact,
                "certificate": certificate,
                "reason": reason,
                "check_in_due_on": deadlines.check_in_due(period.departed_on),
                "previous_movement_id": previous_movement_id,
                "changed_at": now,
                "changed_by": actor,
            },
        )
        movement = cls(movement_id, node, destination.jurisdiction, group, None)
        movement.events.append(OriginGroupChanged(group, MovementStep.REGISTERED))
        return movement

    def _next_origin(self, step: MovementStep, now: datetime, actor: str, **changes: Any) -> None:
        current = self._origin()
        group: OriginGroup = _rebuild(
            OriginGroup,
            current.model_dump(),
            {**changes, "version": current.version + 1, "changed_at": now, "changed_by": actor},
        )
        self.origin_group = group
        self.events.append(OriginGroupChanged(group, step))

    def update_details(
        self,
        *,
        node: str,
        now: datetime,
        actor: str,
        place: str | None = None,
        host_org_hint: OrganizationRef | None = None,
        period: Period | None = None,
        contact: Contact | None = None,
        contact_changes: Mapping[str, str | None] | None = None,
        deadlines: Deadlines,
    ) -> None:
        """The origin corrects the destination's details, the period or the contact.

        ``contact`` replaces the contact; ``contact_changes`` changes only the fields it
        names (a JSON merge patch: None removes a field), and at least one way to reach the
        member must remain.
        """
        self._require(node, Side.ORIGIN, "updating details")
        current = self._origin()
        if contact_changes is not None:
            base = (contact or current.contact).model_dump()
            contact = _rebuild(Contact, {}, merge_contact(base, contact_changes))
        changes: dict[str, Any] = {}
        if place is not None or host_org_hint is not None:
            destination = current.destination.model_dump()
            if place is not None:
                destination["place"] = place
            if host_org_hint is not None:
                destination["host_org_hint"] = host_org_hint
            changes["destination"] = destination
        if period is not None:
            _require_period(period, now, field="period")
            changes["period"] = period
            changes["check_in_due_on"] = deadlines.check_in_due(period.departed_on)
        if contact is not None:
            changes["contact"] = contact
        if not changes:
            raise Invalid("nothing to update: give place, host_org_hint, period or contact")
        unchanged = current.model_dump()
        if _rebuild(OriginGroup, unchanged, changes).model_dump() == unchanged:
            return  # the details are already so: a repeated correction changes nothing
        self._next_origin(MovementStep.DETAILS_UPDATED, now, actor, **changes)

    def relocate(
        self,
        *,
        node: str,
        destination: Destination,
        departed_on: date,
        deadlines: Deadlines,
        partners: frozenset[str],
        now: datetime,
        actor: str,
        contact: Contact | None = None,
    ) -> Movement:
        """The member moves on to another host: this movement closes, a linked one opens.

        The move happens during this movement; an expected return that the move has
        overtaken is not carried over.
        """
        self._require(node, Side.ORIGIN, "relocating")
        current = self._origin()
        if current.status is not OriginStatus.REGISTERED:
            raise self._refuse("relocate", "a registered movement with no transfer under way")
        if destination.jurisdiction == self.host:
            raise Invalid(
                "the member is already hosted there; update the destination's details instead",
                field="destination.jurisdiction",
            )
        dates.require_during(departed_on, current.period.departed_on, now, field="departed_on")
        expected = current.period.expected_return_on
        successor = Movement.register_outflow(
            node=node,
            origin_org=current.origin_org,
            member=current.member,
            destination=destination,
            period=Period(
                departed_on=departed_on,
                expected_return_on=expected if expected and expected >= departed_on else None,
            ),
            contact=contact or current.contact,
            certificate=current.certificate,
            reason=current.reason,
            deadlines=deadlines,
            partners=partners,
            now=now,
            actor=actor,
            previous_movement_id=self.movement_id,
        )
        self._next_origin(
            MovementStep.RELOCATED,
            now,
            actor,
            status=OriginStatus.RELOCATED,
            next_movement_id=successor.movement_id,
        )
        return successor

    def cancel(self, *, node: str, now: datetime, actor: str) -> None:
        """The origin withdraws a registration made in error (before the member checked in)."""
        self._require(node, Side.ORIGIN, "cancelling")
        if self._origin().status is not OriginStatus.REGISTERED or self.state in (
            MovementState.ACTIVE,
            MovementState.LOST_CONTACT,
        ):
            raise self._refuse("cancel", "a registration the host has not checked in")
        self._next_origin(MovementStep.CANCELLED, now, actor, status=OriginStatus.CANCELLED)

    def return_home(self, *, node: str, returned_on: date, now: datetime, actor: str) -> None:
        """The member came back: the movement closes."""
        self._require(node, Side.ORIGIN, "recording the return")
        current = self._origin()
        if current.status not in OPEN_ORIGIN_STATUSES:
            raise self._refuse("record the return of", "an open movement")
        dates.require_during(returned_on, current.period.departed_on, now, field="returned_on")
        period = current.period.model_dump() | {"expected_return_on": returned_on}
        self._next_origin(
            MovementStep.RETURNED,
            now,
            actor,
            status=OriginStatus.RETURNED,
            period=period,
            transfer=current.transfer,
        )

    def request_transfer(
        self, *, node: str, note: str | None, deadlines: Deadlines, now: datetime, actor: str
    ) -> None:
        """The origin asks the host to take over the formal membership."""
        self._require(node, Side.ORIGIN, "requesting a transfer")
        if self.state not in (MovementState.ACTIVE, MovementState.TRANSFER_REJECTED):
            raise self._refuse("request a transfer for", "a member checked in at the host")
        request = TransferRequest(
            requested_at=now,
            reply_due_on=deadlines.transfer_reply_due(now.date()),
            note=note,
        )
        self._next_origin(
            MovementStep.TRANSFER_REQUESTED,
            now,
            actor,
            status=OriginStatus.TRANSFER_REQUESTED,
            transfer=request,
        )

    def withdraw_transfer(self, *, node: str, now: datetime, actor: str) -> None:
        """The origin drops its transfer request (e.g. after a rejection); membership stays."""
        self._require(node, Side.ORIGIN, "withdrawing a transfer")
        if self._origin().status is not OriginStatus.TRANSFER_REQUESTED:
            raise self._refuse("withdraw a transfer of", "a transfer request")
        self._next_origin(
            MovementStep.TRANSFER_WITHDRAWN,
            now,
            actor,
            status=OriginStatus.REGISTERED,
            transfer=None,
        )

    def complete_transfer(self, *, node: str, now: datetime, actor: str) -> None:
        """The host accepted: the origin completes the transfer and the movement closes."""
        self._require(node, Side.ORIGIN, "completing a transfer")
        current = self._origin()
        if self.state is not MovementState.TRANSFER_ACCEPTED or current.transfer is None:
            raise self._refuse("complete the transfer of", "a transfer the host accepted")
        transfer = current.transfer.model_dump() | {"completed_at": now}
        self._next_origin(
            MovementStep.TRANSFER_COMPLETED,
            now,
            actor,
            status=OriginStatus.TRANSFERRED,
            transfer=transfer,
        )

    # -- host side -----------------------------------------------------------------------

    def _next_host(self, step: MovementStep, now: datetime, actor: str, **changes: Any) -> None:
        current = self.host_group
        base: dict[str, Any] = (
            current.model_dump()
            if current
            else {
                "movement_id": self.movement_id,
                "host": self.host,
                "status": HostStatus.EXPECTED,
                "participation": ParticipationSummary(attended=0).model_dump(),
            }
        )
        version = current.version + 1 if current else 1
        group: HostGroup = _rebuild(
            HostGroup, base, {**changes, "version": version, "changed_at": now, "changed_by": actor}
        )
        self.host_group = group
        self.events.append(HostGroupChanged(group, step))

    def _host_status(self) -> HostStatus:
        return self.host_group.status if self.host_group else HostStatus.EXPECTED

    def confirm_check_in(
        self,
        *,
        node: str,
        host_org: OrganizationRef,
        branch: OrganizationRef | None,
        checked_in_at: datetime,
        now: datetime,
        actor: str,
    ) -> None:
        """The host confirms the member reported and enrols them in an organization."""
        self._require(node, Side.HOST, "confirming check-in")
        if self._origin().status is not OriginStatus.REGISTERED or self._host_status() not in (
            HostStatus.EXPECTED,
            HostStatus.NOT_FOUND,
        ):
            raise self._refuse("confirm check-in for", "a member the host expects")
        departed_on = self._origin().period.departed_on
        dates.require_during(checked_in_at, departed_on, now, field="checked_in_at")
        self._next_host(
            MovementStep.CHECKED_IN,
            now,
            actor,
            status=HostStatus.CHECKED_IN,
            host_org=host_org,
            branch=branch,
            checked_in_at=checked_in_at,
            reason=None,
        )

    def reject(self, *, node: str, reason: str, now: datetime, actor: str) -> None:
        """The host does not know the member and says why."""
        self._require(node, Side.HOST, "rejecting")
        if self._origin().status is not OriginStatus.REGISTERED or (
            self._host_status() is not HostStatus.EXPECTED
        ):
            raise self._refuse("reject", "a member the host expects")
        self._next_host(
            MovementStep.REJECTED, now, actor, status=HostStatus.NOT_FOUND, reason=reason
        )

    def forward(
        self, *, node: str, forwarded_to: str, reason: str, now: datetime, actor: str
    ) -> None:
        """The host points the origin to the right host."""
        self._require(node, Side.HOST, "forwarding")
        if forwarded_to in (self.host, self.origin):
            raise Invalid("must be a third jurisdiction", field="forwarded_to")
        if self._origin().status is not OriginStatus.REGISTERED or (
            self._host_status() is not HostStatus.EXPECTED
        ):
            raise self._refuse("forward", "a member the host expects")
        self._next_host(
            MovementStep.FORWARDED,
            now,
            actor,
            status=HostStatus.FORWARDED,
            forwarded_to=forwarded_to,
            reason=reason,
        )

    def mark_lost_contact(self, *, node: str, since: date, now: datetime, actor: str) -> None:
        self._require(node, Side.HOST, "marking lost contact")
        if self.state is not MovementState.ACTIVE:
            raise self._refuse("mark lost contact for", "a checked-in member")
        dates.require_during(since, self._origin().period.departed_on, now, field="since")
        self._next_host(
            MovementStep.LOST_CONTACT,
            now,
            actor,
            status=HostStatus.LOST_CONTACT,
            lost_contact_since=since,
        )

    def restore_contact(self, *, node: str, now: datetime, actor: str) -> None:
        self._require(node, Side.HOST, "restoring contact")
        if self._host_status() is not HostStatus.LOST_CONTACT:
            raise self._refuse("restore contact for", "a member marked lost contact")
        self._next_host(
            MovementStep.CONTACT_RESTORED,
            now,
            actor,
            status=HostStatus.CHECKED_IN,
            lost_contact_since=None,
        )

    def confirm_dues_paid(self, *, node: str, months: list[str], now: datetime, actor: str) -> None:
        """The host confirms the member paid dues there for these months (缴纳党费): from
        the month of departure to the current month; months already paid change nothing."""
        self._require(node, Side.HOST, "confirming dues paid")
        if self.host_group is None or self.host_group.host_org is None:
            raise self._refuse("confirm dues paid for", "a member checked in at the host")
        departed = self._origin().period.departed_on.strftime("%Y-%m")
        current = dates.local_date(now).strftime("%Y-%m")
        for month in months:
            if not departed <= month <= current:
                raise Invalid(
                    f"{month} is outside the stay here ({departed} to {current})", field="months"
                )
        paid = sorted(set(self.host_group.dues_paid) | set(months))
        if paid != self.host_group.dues_paid:
            self._next_host(MovementStep.DUES_PAID, now, actor, dues_paid=paid)

    def record_participation(
        self,
        *,
        node: str,
        participation_id: UUID,
        activity_id: UUID | None,
        kind: ActivityKind,
        title: str,
        attended_at: datetime,
        now: datetime,
        actor: str,
    ) -> Participation:
        """The host records an attendance; the summary in the host group follows."""
        self._require(node, Side.HOST, "recording participation")
        if (
            self.host_group is None
            or self.host_group.host_org is None
            or self.state
            not in (
                MovementState.ACTIVE,
                MovementState.TRANSFER_PENDING,
                MovementState.TRANSFER_ACCEPTED,
                MovementState.TRANSFER_REJECTED,
            )
        ):
            raise self._refuse("record participation for", "a checked-in member")
        departed_on = self._origin().period.departed_on
        dates.require_during(attended_at, departed_on, now, field="attended_at")
        participation = Participation(
            participation_id=participation_id,
            movement_id=self.movement_id,
            host=self.host,
            host_org=self.host_group.branch or self.host_group.host_org,
            activity_id=activity_id,
            kind=kind,
            title=title,
            attended_at=attended_at,
            recorded_at=now,
            recorded_by=actor,
        )
        summary = self.host_group.participation
        last = summary.last_attended_at
        self._next_host(
            MovementStep.PARTICIPATION_RECORDED,
            now,
            actor,
            participation={
                "attended": summary.attended + 1,
                "last_attended_at": attended_at if last is None else max(last, attended_at),
            },
        )
        self.events.append(ParticipationAdded(participation))
        return participation

    def reply_transfer(
        self,
        *,
        node: str,
        decision: TransferDecision,
        reason: str | None,
        now: datetime,
        actor: str,
    ) -> None:
        """The host accepts or rejects the origin's transfer request."""
        self._require(node, Side.HOST, "replying to a transfer")
        origin = self._origin()
        if origin.status is not OriginStatus.TRANSFER_REQUESTED or (
            transfer_reply_current(origin, self.host_group) is not None
        ):
            raise self._refuse("reply to a transfer of", "an unanswered transfer request")
        if self._host_status() not in (HostStatus.CHECKED_IN, HostStatus.LOST_CONTACT):
            raise self._refuse("reply to a transfer of", "a checked-in member")
        if decision is TransferDecision.REJECTED and not reason:
            raise Invalid("is required when the transfer is rejected", field="reason")
        assert origin.transfer is not None  # guaranteed by status TRANSFER_REQUESTED
        reply = TransferReply(
            decision=decision,
            request_at=origin.transfer.requested_at,
            replied_at=now,
            reason=reason,
        )
        self._next_host(
            MovementStep.TRANSFER_ACCEPTED
            if decision is TransferDecision.ACCEPTED
            else MovementStep.TRANSFER_REJECTED,
            now,
            actor,
            transfer_reply=reply,
        )
