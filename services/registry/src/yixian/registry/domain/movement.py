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
    DuesPayment,
    DuesPeriod,
    Enrolment,
    FeedbackSummary,
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
    Standing,
    StandingDecision,
    TransferDecision,
    TransferReply,
    TransferRequest,
    lost_contact_since,
    movement_state,
    transfer_reply_current,
)

from . import dates
from .contact import CONTACT_FIELDS, merge_contact
from .errors import Conflict, Invalid, InvalidTransition, NotOwner

MAX_DUES_MONTHS = 24
"""The most months one payment of dues may cover."""


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

    def require_side(self, node: str, side: Side, step: str) -> None:
        """NotOwner unless ``node`` writes ``side``'s group (checked before a step's input is
        looked at, so that the other side hears it is not the owner whatever it sent)."""
        mine = self.side_of(node)
        if mine is not side:
            owner = self.origin if side is Side.ORIGIN else self.host
            raise NotOwner(
                f"{step} changes the {side.value} group of movement {self.movement_id}, "
                f"which only {side.value} node {owner} writes; node {node} is its {mine.value}"
            )

    def _require(self, node: str, side: Side, step: str) -> None:
        self.require_side(node, side, step)
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
        check_in_from: date | None = None,
        reason: OutflowReason | None = None,
    ) -> Movement:
        """The origin records a departure: a new movement, origin group version 1.

        The destination must be a linked partner (``partners``): a movement to any other
        jurisdiction has no topic to travel on. The contact gives a way to reach the member;
        ``reason`` says why the member leaves; ``certificate`` is the one this node issued
        (``domain.certificate``). The check-in is due a deadline after the departure, or
        after ``check_in_from`` if later (a forward followed: the member learns of the new
        host only then).
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
                "check_in_due_on": deadlines.check_in_due(
                    max(period.departed_on, check_in_from or period.departed_on)
                ),
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
            if period.departed_on != current.period.departed_on:
                # a new departure moves the check-in deadline; another change keeps it (a
                # followed forward's deadline counts from the day it was followed)
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

    def forwarded_to(self) -> str | None:
        """Where the host forwarded the member, while the movement waits for the origin to
        follow (state ``forwarded``); else None."""
        if self.state is not MovementState.FORWARDED or self.host_group is None:
            return None
        return self.host_group.forwarded_to

    def follow_forward(
        self,
        *,
        node: str,
        deadlines: Deadlines,
        partners: frozenset[str],
        now: datetime,
        actor: str,
    ) -> Movement:
        """The origin follows the host's forward (ADR 19): this movement closes as relocated
        and a linked one opens to the jurisdiction the host named, which then expects the
        member. The stay goes on from the same departure; the check-in is due a deadline
        from today. Only the origin writes a destination, so only the origin takes it."""
        self._require(node, Side.ORIGIN, "following a forward")
        current = self._origin()
        target = self.forwarded_to()
        if target is None or current.status is not OriginStatus.REGISTERED:
            raise self._refuse("follow the forward of", "a member the host forwarded")
        if target not in partners:
            linked = ", ".join(sorted(partners)) or "none yet"
            raise Invalid(
                f"the host forwarded the member to {target}, which is not a linked partner of"
                f" node {node} (partners: {linked}): link it, or relocate or cancel",
                field="host_group.forwarded_to",
            )
        successor = Movement.register_outflow(
            node=node,
            origin_org=current.origin_org,
            member=current.member,
            destination=Destination(jurisdiction=target, place=current.destination.place),
            period=current.period,
            contact=current.contact,
            certificate=current.certificate,
            reason=current.reason,
            deadlines=deadlines,
            partners=partners,
            now=now,
            actor=actor,
            previous_movement_id=self.movement_id,
            check_in_from=dates.local_date(now),
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
        host_days = self.host_group.transfer_reply_days if self.host_group else None
        request = TransferRequest(
            requested_at=now,
            reply_due_on=Deadlines(transfer_reply_days=host_days).transfer_reply_due(now.date())
            if host_days is not None
            else deadlines.transfer_reply_due(now.date()),
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

    # -- the origin's decisions on lost contact, and the member's report ------------------

    def mark_lost_contact_at_origin(
        self, *, node: str, since: date, now: datetime, actor: str
    ) -> None:
        """失联 at the origin: it cannot reach the member, checked in at the host or not
        (a member who never arrived too). The host records its own in its group."""
        self._require(node, Side.ORIGIN, "marking lost contact")
        current = self._origin()
        if current.lost_contact_since == since:
            return  # already recorded so: a repeated request changes nothing
        if current.lost_contact_since is not None:
            raise InvalidTransition(
                f"lost contact is already recorded since {current.lost_contact_since};"
                " restore contact first to record another day"
            )
        if current.status is not OriginStatus.REGISTERED:
            raise self._refuse("mark lost contact for", "a registered movement, no transfer")
        dates.require_during(since, current.period.departed_on, now, field="since")
        self._next_origin(MovementStep.LOST_CONTACT_AT_ORIGIN, now, actor, lost_contact_since=since)

    def restore_contact_at_origin(self, *, node: str, now: datetime, actor: str) -> None:
        """The origin reaches the member again; its lost contact ends (the host's is its own)."""
        self._require(node, Side.ORIGIN, "restoring contact")
        if self._origin().lost_contact_since is None:
            raise self._refuse("restore contact for", "a member the origin marked lost contact")
        self._next_origin(
            MovementStep.CONTACT_RESTORED_AT_ORIGIN, now, actor, lost_contact_since=None
        )

    def _decided(self, standing: Standing, reason: str) -> bool:
        """True when the latest decision is already this one, for this reason: a repeated
        request changes nothing."""
        decision = self._origin().decision
        return decision is not None and (decision.standing, decision.reason) == (standing, reason)

    def _decide(
        self,
        step: MovementStep,
        standing: Standing,
        reason: str,
        since: date | None,
        suspended_at: datetime | None,
        now: datetime,
        actor: str,
        **changes: Any,
    ) -> None:
        decision = StandingDecision(
            standing=standing,
            reason=reason,
            decided_at=now,
            lost_contact_since=since,
            suspended_at=suspended_at,
        )
        self._next_origin(step, now, actor, decision=decision, **changes)

    def suspend(
        self,
        *,
        node: str,
        reason: str,
        force: bool,
        deadlines: Deadlines,
        now: datetime,
        actor: str,
    ) -> None:
        """停止党籍: after six months of lost contact the origin suspends the member, with a
        reason. Earlier only when ``force`` says the origin means it."""
        self._require(node, Side.ORIGIN, "suspending")
        if self._decided(Standing.SUSPENDED, reason):
            return
        current = self._origin()
        if current.decision is not None and current.decision.standing is Standing.SUSPENDED:
            raise InvalidTransition(
                f"member of movement {self.movement_id} is already suspended"
                f" (since {current.decision.decided_at.date()}); reinstate or remove instead"
            )
        since = lost_contact_since(current, self.host_group)
        if self.state is not MovementState.LOST_CONTACT or since is None:
            raise self._refuse("suspend the member of", "a member in lost contact")
        due = deadlines.suspension_prompt_on(since)
        if not force and dates.local_date(now) < due:
            raise InvalidTransition(
                f"suspension is decided after {deadlines.lost_contact_suspension_days} days of"
                f" lost contact (since {since}): due on {due}; set force to decide now",
                field="force",
            )
        self._decide(MovementStep.SUSPENDED, Standing.SUSPENDED, reason, since, now, now, actor)

    def reinstate(self, *, node: str, reason: str, now: datetime, actor: str) -> None:
        """恢复党籍: the origin reinstates a suspended member; its lost contact ends."""
        self._require(node, Side.ORIGIN, "reinstating")
        if self._decided(Standing.REINSTATED, reason):
            return
        decision = self._origin().decision
        if decision is None or decision.standing is not Standing.SUSPENDED:
            raise InvalidTransition(
                f"cannot reinstate the member of movement {self.movement_id}: not suspended;"
                " reinstatement needs a suspension first",
                field="reason",
            )
        self._decide(
            MovementStep.REINSTATED,
            Standing.REINSTATED,
            reason,
            decision.lost_contact_since,
            decision.suspended_at,
            now,
            actor,
            lost_contact_since=None,
        )

    def remove(
        self,
        *,
        node: str,
        reason: str,
        force: bool,
        deadlines: Deadlines,
        now: datetime,
        actor: str,
    ) -> None:
        """除名: two years after the suspension prompt the origin removes a suspended member,
        with a reason; the movement closes. Earlier only when ``force`` says so."""
        if self.side_of(node) is Side.ORIGIN and self._decided(Standing.REMOVED, reason):
            return  # already removed for this reason (the movement is closed since)
        self._require(node, Side.ORIGIN, "removing")
        decision = self._origin().decision
        if decision is None or decision.standing is not Standing.SUSPENDED:
            raise InvalidTransition(
                f"cannot remove the member of movement {self.movement_id}: not suspended;"
                " removal needs a suspension first"
            )
        since = decision.lost_contact_since
        due = deadlines.removal_prompt_on(since) if since is not None else None
        if not force and (due is None or dates.local_date(now) < due):
            raise InvalidTransition(
                f"removal is decided {deadlines.lost_contact_removal_days} days after the"
                f" suspension prompt (due on {due}); set force to decide now",
                field="force",
            )
        self._decide(
            MovementStep.REMOVED,
            Standing.REMOVED,
            reason,
            since,
            decision.suspended_at,
            now,
            actor,
        )

    def record_report(self, *, node: str, reported_on: date, now: datetime, actor: str) -> None:
        """The member reported to the origin (the yearly report, 向党组织汇报): the next
        report is due the origin's interval later, and the reminder for this one closes."""
        self._require(node, Side.ORIGIN, "recording a report")
        current = self._origin()
        last = current.last_report_on
        if last == reported_on:
            return  # already recorded: a repeated request changes nothing
        dates.require_during(reported_on, current.period.departed_on, now, field="reported_on")
        if last is not None and reported_on < last:
            raise Invalid(f"is before the last report recorded ({last})", field="reported_on")
        self._next_origin(MovementStep.REPORT_RECORDED, now, actor, last_report_on=reported_on)

    # -- host side -----------------------------------------------------------------------

    def _next_host(
        self,
        step: MovementStep,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
        **changes: Any,
    ) -> None:
        """The host group's next version; ``deadlines``: the host's own, whose transfer-reply
        deadline the group carries to the origin (None: it keeps what it carries)."""
        if deadlines is not None:
            changes["transfer_reply_days"] = deadlines.transfer_reply_days
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

    def assign(
        self,
        *,
        node: str,
        org: OrganizationRef,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """A host secretary places the member with one of the host's organizations (分配):
        the arrival leaves the intake for that organization's queue; assigning again moves
        the member to another. Nothing changes when the member is already placed there.

        A checked-in member keeps the check-in; the branch inside the former organization
        no longer applies."""
        self._require(node, Side.HOST, "assigning")
        if self._origin().status not in OPEN_ORIGIN_STATUSES or self._host_status() is (
            HostStatus.FORWARDED
        ):
            raise self._refuse("assign", "a member the host expects or hosts")
        current = self.host_group
        if current is not None and current.host_org == org and current.branch is None:
            return  # placed there already: a repeated assignment changes nothing
        self._next_host(MovementStep.ASSIGNED, now, actor, deadlines, host_org=org, branch=None)

    def confirm_check_in(
        self,
        *,
        node: str,
        host_org: OrganizationRef,
        branch: OrganizationRef | None,
        checked_in_at: datetime,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
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
            deadlines,
            status=HostStatus.CHECKED_IN,
            host_org=host_org,
            branch=branch,
            checked_in_at=checked_in_at,
            reason=None,
        )

    def reject(
        self,
        *,
        node: str,
        reason: str,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """The host does not know the member and says why."""
        self._require(node, Side.HOST, "rejecting")
        if self._origin().status is not OriginStatus.REGISTERED or (
            self._host_status() is not HostStatus.EXPECTED
        ):
            raise self._refuse("reject", "a member the host expects")
        self._next_host(
            MovementStep.REJECTED, now, actor, deadlines, status=HostStatus.NOT_FOUND, reason=reason
        )

    def forward(
        self,
        *,
        node: str,
        forwarded_to: str,
        reason: str,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
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
            deadlines,
            status=HostStatus.FORWARDED,
            forwarded_to=forwarded_to,
            reason=reason,
        )

    def mark_lost_contact(
        self,
        *,
        node: str,
        since: date,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """失联 at the host: a checked-in member, or one expected who never arrived."""
        self._require(node, Side.HOST, "marking lost contact")
        if self._origin().status is not OriginStatus.REGISTERED or self._host_status() not in (
            HostStatus.EXPECTED,
            HostStatus.CHECKED_IN,
        ):
            raise self._refuse("mark lost contact for", "a member checked in or expected")
        dates.require_during(since, self._origin().period.departed_on, now, field="since")
        self._next_host(
            MovementStep.LOST_CONTACT,
            now,
            actor,
            deadlines,
            status=HostStatus.LOST_CONTACT,
            lost_contact_since=since,
        )

    def restore_contact(
        self, *, node: str, now: datetime, actor: str, deadlines: Deadlines | None = None
    ) -> None:
        """Contact restored: checked in again, or still expected if the member never was."""
        self._require(node, Side.HOST, "restoring contact")
        if self.host_group is None or self.host_group.status is not HostStatus.LOST_CONTACT:
            raise self._refuse("restore contact for", "a member marked lost contact")
        checked_in = self.host_group.checked_in_at is not None
        self._next_host(
            MovementStep.CONTACT_RESTORED,
            now,
            actor,
            deadlines,
            status=HostStatus.CHECKED_IN if checked_in else HostStatus.EXPECTED,
            lost_contact_since=None,
        )

    def record_feedback(
        self,
        *,
        node: str,
        step: MovementStep,
        summary: FeedbackSummary,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """The host's group counts the member's concerns raised with the host (steps
        feedback_raised, feedback_answered, feedback_closed): the origin sees counts, states
        and times, and a concern's text only where the member shared it. A closed movement's
        group stays as it closed."""
        self.require_side(node, Side.HOST, "recording feedback")
        if not self.state.is_open:
            return
        current = self.host_group.feedback if self.host_group is not None else None
        if current != summary:  # the host's first step may be a concern: version 1
            self._next_host(step, now, actor, deadlines, feedback=summary)

    def confirm_dues_paid(
        self,
        *,
        node: str,
        months: list[str],
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """The host confirms the member paid dues there for these months (缴纳党费): from
        the month of departure to the current month; months already paid change nothing."""
        self._require(node, Side.HOST, "confirming dues paid")
        if self.host_group is None or self.host_group.checked_in_at is None:
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
            self._next_host(MovementStep.DUES_PAID, now, actor, deadlines, dues_paid=paid)

    def record_dues_payment(
        self,
        *,
        node: str,
        period: DuesPeriod,
        amount_fen: int,
        receipt: str | None,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """The host records dues the member paid there for a run of months, with the amount
        and the receipt's number (缴纳党费). The same payment again changes nothing; one
        whose months another payment (or an earlier confirmation) already covers, or that
        reuses another payment's receipt, is refused: a month is paid once."""
        self._require(node, Side.HOST, "recording dues paid")
        host = self.host_group
        if host is None or host.checked_in_at is None:
            raise self._refuse("record dues paid for", "a member checked in at the host")
        for payment in host.dues:
            if (payment.period, payment.amount_fen, payment.receipt) == (
                period,
                amount_fen,
                receipt,
            ):
                return  # already recorded: a repeated request changes nothing
        months = period.months
        if len(months) > MAX_DUES_MONTHS:
            raise Invalid(
                f"covers {len(months)} months; one payment covers at most {MAX_DUES_MONTHS}",
                field="period",
            )
        departed = self._origin().period.departed_on.strftime("%Y-%m")
        current = dates.local_date(now).strftime("%Y-%m")
        if period.from_month < departed:
            raise Invalid(f"is before the member left ({departed})", field="period.from_month")
        if period.to_month > current:
            raise Invalid(f"is after the current month ({current})", field="period.to_month")
        paid = set(host.dues_paid)
        if overlap := sorted(paid.intersection(months)):
            raise Conflict(
                f"{', '.join(overlap)} already recorded paid here; a month is paid once",
                field="period",
            )
        if receipt is not None and any(p.receipt == receipt for p in host.dues):
            raise Conflict("is already the receipt of another payment", field="receipt")
        payment = DuesPayment(
            period=period,
            amount_fen=amount_fen,
            receipt=receipt,
            recorded_at=now,
        )
        self._next_host(
            MovementStep.DUES_PAID,
            now,
            actor,
            deadlines,
            dues=sorted([*host.dues, payment], key=lambda p: p.period.from_month),
            dues_paid=sorted(paid.union(months)),
        )

    def record_report_received(
        self,
        *,
        node: str,
        reported_on: date,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> None:
        """The member gave the host the report due to the origin (the member is away): the
        origin counts it as the report (``report_due_on``), on its own interval."""
        self._require(node, Side.HOST, "recording a report received")
        host = self.host_group
        if host is None or host.checked_in_at is None:
            raise self._refuse("record a report for", "a member checked in at the host")
        last = host.report_received_on
        if last == reported_on:
            return  # already recorded: a repeated request changes nothing
        dates.require_during(
            reported_on, self._origin().period.departed_on, now, field="reported_on"
        )
        if last is not None and reported_on < last:
            raise Invalid(f"is before the last report received ({last})", field="reported_on")
        self._next_host(
            MovementStep.REPORT_RECEIVED, now, actor, deadlines, report_received_on=reported_on
        )

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
        deadlines: Deadlines | None = None,
    ) -> Participation:
        """The host records an attendance; the summary in the host group follows."""
        self._require(node, Side.HOST, "recording participation")
        if (
            self.host_group is None
            or self.host_group.host_org is None
            or self.host_group.checked_in_at is None
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
            deadlines,
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
        deadlines: Deadlines | None = None,
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
            deadlines,
            transfer_reply=reply,
        )

    def may_enrol(self, node: str) -> bool:
        """Whether this node, the host, may enrol the member now: True after the origin
        completed the transfer; False once the enrolment is recorded (a repeat). NotOwner at
        the origin; InvalidTransition before the transfer completed."""
        mine = self.side_of(node)
        if mine is not Side.HOST:
            raise NotOwner(
                f"enrolling changes the host group of movement {self.movement_id}, which only"
                f" host node {self.host} writes; node {node} is its {mine.value}"
            )
        if self.host_group is not None and self.host_group.enrolment is not None:
            return False
        if self.state is not MovementState.CLOSED_TRANSFERRED:
            raise InvalidTransition(
                f"cannot enrol the member of movement {self.movement_id}: it is"
                f" {self.state.value}; enrolling needs a transfer the origin completed",
                field="movement_id",
            )
        return True

    def enrol(
        self,
        *,
        node: str,
        member_id: UUID,
        org: OrganizationRef,
        now: datetime,
        actor: str,
        deadlines: Deadlines | None = None,
    ) -> bool:
        """After the origin completed the transfer, the host enrols the member as its own
        (ADR 19): the host group records the enrolment, once. False: it was already
        recorded (nothing changes)."""
        if not self.may_enrol(node):
            return False
        enrolment = Enrolment(member_id=member_id, org=org, enrolled_at=now)
        self._next_host(MovementStep.ENROLLED, now, actor, deadlines, enrolment=enrolment)
        return True
