"""A movement's overall state: a pure function of its two groups.

Both replicas of a movement compute it the same way from the same two groups, so once
the groups have converged the state has too. Partners may use it as well.
"""

from __future__ import annotations

from datetime import date, timedelta, timezone
from enum import StrEnum

from .deadlines import Deadlines
from .movement import (
    OPEN_ORIGIN_STATUSES,
    HostGroup,
    HostStatus,
    OriginGroup,
    OriginStatus,
    Standing,
    TransferDecision,
    dues_months,
)

BEIJING = timezone(timedelta(hours=8))
"""The time zone every node counts its months in (China has no daylight saving time)."""


class MovementState(StrEnum):
    AWAITING_CHECK_IN = "awaiting_check_in"
    ACTIVE = "active"
    NOT_FOUND_BY_HOST = "not_found_by_host"
    FORWARDED = "forwarded"
    LOST_CONTACT = "lost_contact"
    TRANSFER_PENDING = "transfer_pending"
    TRANSFER_ACCEPTED = "transfer_accepted"
    TRANSFER_REJECTED = "transfer_rejected"
    CLOSED_RETURNED = "closed_returned"
    CLOSED_RELOCATED = "closed_relocated"
    CLOSED_TRANSFERRED = "closed_transferred"
    CLOSED_REMOVED = "closed_removed"
    """The origin removed the member (除名) after lost contact."""
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_open(self) -> bool:
        return self not in _CLOSED


_CLOSED = frozenset(
    {
        MovementState.CLOSED_RETURNED,
        MovementState.CLOSED_RELOCATED,
        MovementState.CLOSED_TRANSFERRED,
        MovementState.CLOSED_REMOVED,
        MovementState.CANCELLED,
    }
)

_ORIGIN_CLOSED = {
    OriginStatus.RETURNED: MovementState.CLOSED_RETURNED,
    OriginStatus.RELOCATED: MovementState.CLOSED_RELOCATED,
    OriginStatus.TRANSFERRED: MovementState.CLOSED_TRANSFERRED,
    OriginStatus.CANCELLED: MovementState.CANCELLED,
}

_HOST_WHILE_REGISTERED = {
    HostStatus.EXPECTED: MovementState.AWAITING_CHECK_IN,
    HostStatus.CHECKED_IN: MovementState.ACTIVE,
    HostStatus.NOT_FOUND: MovementState.NOT_FOUND_BY_HOST,
    HostStatus.FORWARDED: MovementState.FORWARDED,
    HostStatus.LOST_CONTACT: MovementState.LOST_CONTACT,
}


def transfer_reply_current(origin: OriginGroup, host: HostGroup | None) -> TransferDecision | None:
    """The host's answer to the origin's *current* transfer request, if it gave one."""
    if origin.transfer is None or host is None or host.transfer_reply is None:
        return None
    if host.transfer_reply.request_at != origin.transfer.requested_at:
        return None  # an answer to an earlier request
    return host.transfer_reply.decision


def movement_state(origin: OriginGroup | None, host: HostGroup | None) -> MovementState:
    """The overall state of a movement from its origin group and its host group."""
    if origin is None:
        return MovementState.UNKNOWN
    if origin.status in _ORIGIN_CLOSED:
        return _ORIGIN_CLOSED[origin.status]
    if origin.decision is not None and origin.decision.standing is Standing.REMOVED:
        return MovementState.CLOSED_REMOVED
    if origin.status is OriginStatus.TRANSFER_REQUESTED:
        decision = transfer_reply_current(origin, host)
        if decision is TransferDecision.ACCEPTED:
            return MovementState.TRANSFER_ACCEPTED
        if decision is TransferDecision.REJECTED:
            return MovementState.TRANSFER_REJECTED
        return MovementState.TRANSFER_PENDING
    if origin.lost_contact_since is not None:
        return MovementState.LOST_CONTACT  # the origin's own word, whatever the host's
    return _HOST_WHILE_REGISTERED[host.status if host else HostStatus.EXPECTED]


def check_in_overdue(origin: OriginGroup | None, host: HostGroup | None, today: date) -> bool:
    return (
        origin is not None
        and movement_state(origin, host) is MovementState.AWAITING_CHECK_IN
        and today > origin.check_in_due_on
    )


REMOVED_STATUS = "removed"
"""The origin status a node's tables keep for a movement whose member the origin removed
(除名): no v1 ``OriginStatus`` says it (a new value would break v1 readers, ADR 3), so the
group keeps its status and the decision; the column ``movements.origin_status`` says
``removed``, and nothing that counts open movements counts it (ADR 20)."""


def recorded_status(origin: OriginGroup) -> str:
    """The origin status as a node's tables keep it (``movements.origin_status``): the
    group's own, or ``removed`` once the origin removed the member."""
    if origin.decision is not None and origin.decision.standing is Standing.REMOVED:
        return REMOVED_STATUS
    return origin.status.value


def origin_open(origin: OriginGroup) -> bool:
    """The movement is open at its origin: an open status, and the member not removed."""
    return origin.status in OPEN_ORIGIN_STATUSES and recorded_status(origin) != REMOVED_STATUS


def transfer_reply_due_on(origin: OriginGroup, host: HostGroup | None) -> date | None:
    """When the host's reply to the current transfer request is due: the request's day plus
    the host's own deadline, which its group carries (``transfer_reply_days``); the date the
    origin stamped into the request only while the host has told none (a host from before)."""
    if origin.transfer is None:
        return None
    if host is not None and host.transfer_reply_days is not None:
        requested_on = origin.transfer.requested_at.date()
        return Deadlines(transfer_reply_days=host.transfer_reply_days).transfer_reply_due(
            requested_on
        )
    return origin.transfer.reply_due_on


def transfer_reply_overdue(origin: OriginGroup | None, host: HostGroup | None, today: date) -> bool:
    if origin is None or movement_state(origin, host) is not MovementState.TRANSFER_PENDING:
        return False
    due = transfer_reply_due_on(origin, host)
    return due is not None and today > due


def report_due_on(origin: OriginGroup, host: HostGroup | None, deadlines: Deadlines) -> date:
    """When the member's next report to the origin is due: the origin's interval after the
    last report, whichever side recorded it (the origin's ``last_report_on``, or the host's
    ``report_received_on`` for a member away), or after departure while there is none (the
    origin's setting counts)."""
    received = host.report_received_on if host is not None else None
    reports = [day for day in (origin.last_report_on, received) if day is not None]
    return deadlines.report_due(max(reports) if reports else origin.period.departed_on)


def report_overdue(
    origin: OriginGroup | None, host: HostGroup | None, today: date, deadlines: Deadlines
) -> bool:
    return (
        origin is not None
        and movement_state(origin, host).is_open
        and today > report_due_on(origin, host, deadlines)
    )


def dues_overdue_month(
    origin: OriginGroup | None, host: HostGroup | None, today: date, deadlines: Deadlines
) -> str | None:
    """The earliest month (``YYYY-MM``) whose dues a visiting member has not paid at the host
    although they were due (``Deadlines.dues_due``: the host's day of the next month, by
    default the 10th) before ``today``; None when nothing is overdue. Counted from the
    month of check-in (Beijing time), while the member is checked in there and the movement
    open (``active``); a month recorded paid (``dues_paid``) is paid, with or without an
    amount."""
    if (
        origin is None
        or host is None
        or host.checked_in_at is None
        or movement_state(origin, host) is not MovementState.ACTIVE
    ):
        return None
    try:
        first = host.checked_in_at.astimezone(BEIJING).strftime("%Y-%m")
    except OverflowError:  # a partner's check-in at the end of time: nothing due yet
        return None
    last_due = f"{today.year:04d}-{today.month:02d}"
    paid = set(host.dues_paid)
    for month in dues_months(first, last_due):
        if today <= deadlines.dues_due(month):
            return None
        if month not in paid:
            return month
    return None


def lost_contact_since(origin: OriginGroup | None, host: HostGroup | None) -> date | None:
    """The first day of lost contact, as either side recorded it (the earlier of the two)."""
    days = [
        day
        for day in (
            origin.lost_contact_since if origin else None,
            host.lost_contact_since
            if host is not None and host.status is HostStatus.LOST_CONTACT
            else None,
        )
        if day is not None
    ]
    return min(days) if days else None


class Prompt(StrEnum):
    """What the origin is prompted to decide after lost contact."""

    SUSPENSION = "suspension"
    REMOVAL = "removal"


def prompts_due(
    origin: OriginGroup | None, host: HostGroup | None, today: date, deadlines: Deadlines
) -> list[tuple[Prompt, date]]:
    """The lost-contact prompts due today, each with the first day of the lost contact it
    is about. A decision on that lost contact closes them: any decision the suspension
    prompt, a reinstatement or a removal the removal prompt too."""
    since = lost_contact_since(origin, host)
    if origin is None or since is None:
        return []
    if movement_state(origin, host) is not MovementState.LOST_CONTACT:
        return []
    decision = origin.decision
    decided = decision.standing if decision and decision.lost_contact_since == since else None
    due: list[tuple[Prompt, date]] = []
    if decided is None and today >= deadlines.suspension_prompt_on(since):
        due.append((Prompt.SUSPENSION, since))
    if decided in (None, Standing.SUSPENDED) and today >= deadlines.removal_prompt_on(since):
        due.append((Prompt.REMOVAL, since))
    return due
