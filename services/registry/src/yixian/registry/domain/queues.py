"""A secretary's work queues, as in the national system: to do, waiting on the other side,
overdue, upcoming. Each movement lands in at most one queue, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from yixian.contracts import (
    Deadlines,
    HostGroup,
    MovementState,
    OriginGroup,
    Prompt,
    Standing,
    check_in_overdue,
    dues_overdue_month,
    lost_contact_since,
    movement_state,
    prompts_due,
    report_due_on,
    report_overdue,
    transfer_reply_due_on,
    transfer_reply_overdue,
)

from .movement import Side


class Queue(StrEnum):
    TO_DO = "to_do"
    WAITING = "waiting"
    OVERDUE = "overdue"
    UPCOMING = "upcoming"


@dataclass(frozen=True, slots=True)
class QueueEntry:
    queue: Queue
    reason: str
    due_on: date | None = None


def classify(
    side: Side,
    origin: OriginGroup | None,
    host: HostGroup | None,
    today: date,
    deadlines: Deadlines,
) -> QueueEntry | None:
    """Where a movement belongs in this side's queues today (None: nothing to see)."""
    state = movement_state(origin, host)
    if side is Side.HOST and state is MovementState.CLOSED_TRANSFERRED:
        if host is not None and host.enrolment is None:
            return QueueEntry(Queue.TO_DO, "transfer completed: enrol the member")
        return None
    if origin is None or not state.is_open:
        return None
    if check_in_overdue(origin, host, today):
        return QueueEntry(Queue.OVERDUE, "check-in overdue", origin.check_in_due_on)
    if transfer_reply_overdue(origin, host, today):
        return QueueEntry(
            Queue.OVERDUE, "transfer reply overdue", transfer_reply_due_on(origin, host)
        )
    if side is Side.ORIGIN:
        return _origin_entry(state, origin, host, today, deadlines)
    return _host_entry(state, origin, host, today, deadlines)


def _origin_entry(
    state: MovementState,
    origin: OriginGroup,
    host: HostGroup | None,
    today: date,
    deadlines: Deadlines,
) -> QueueEntry | None:
    horizon = today + timedelta(days=deadlines.upcoming_days)
    if state is MovementState.TRANSFER_ACCEPTED:
        return QueueEntry(Queue.TO_DO, "host accepted the transfer: complete it")
    if state is MovementState.TRANSFER_REJECTED:
        return QueueEntry(Queue.TO_DO, "host rejected the transfer: withdraw or ask again")
    if state is MovementState.NOT_FOUND_BY_HOST:
        return QueueEntry(Queue.TO_DO, "host could not find the member: relocate or cancel")
    if state is MovementState.FORWARDED:
        where = host.forwarded_to if host else None
        return QueueEntry(
            Queue.TO_DO, f"host forwarded the member to {where}: follow to the new host"
        )
    prompts = dict(prompts_due(origin, host, today, deadlines))
    if Prompt.REMOVAL in prompts:
        removal = deadlines.removal_prompt_on(prompts[Prompt.REMOVAL])
        return QueueEntry(Queue.TO_DO, "lost contact over 2.5 years: decide removal", removal)
    if Prompt.SUSPENSION in prompts:
        suspension = deadlines.suspension_prompt_on(prompts[Prompt.SUSPENSION])
        return QueueEntry(Queue.TO_DO, "lost contact 6 months: decide suspension", suspension)
    decision = origin.decision
    suspended = decision is not None and decision.standing is Standing.SUSPENDED
    if state is MovementState.LOST_CONTACT and lost_contact_since(origin, host):
        if suspended:
            return QueueEntry(Queue.WAITING, "suspended in lost contact: reinstate when reached")
        return QueueEntry(Queue.WAITING, "lost contact: keep trying to reach the member")
    if suspended:
        return QueueEntry(Queue.TO_DO, "a suspended member is reached again: decide reinstatement")
    if report_overdue(origin, host, today, deadlines):
        return QueueEntry(
            Queue.OVERDUE,
            "the member's report is overdue",
            report_due_on(origin, host, deadlines),
        )
    if state is MovementState.AWAITING_CHECK_IN:
        if origin.check_in_due_on <= horizon:
            return QueueEntry(Queue.UPCOMING, "check-in due", origin.check_in_due_on)
        return QueueEntry(Queue.WAITING, "waiting for the host to confirm check-in")
    if state is MovementState.TRANSFER_PENDING:
        return QueueEntry(Queue.WAITING, "waiting for the host's transfer reply")
    expected_back = origin.period.expected_return_on
    if expected_back is not None and today <= expected_back <= horizon:
        return QueueEntry(Queue.UPCOMING, "expected back", expected_back)
    return None


def _host_entry(
    state: MovementState,
    origin: OriginGroup,
    host: HostGroup | None,
    today: date,
    deadlines: Deadlines,
) -> QueueEntry | None:
    if state is MovementState.AWAITING_CHECK_IN and (host is None or host.host_org is None):
        return QueueEntry(
            Queue.TO_DO,
            "member expected: assign an organization, or confirm check-in, reject or forward",
            origin.check_in_due_on,
        )
    if state is MovementState.AWAITING_CHECK_IN:
        return QueueEntry(
            Queue.TO_DO,
            "member expected: confirm check-in, reject or forward",
            origin.check_in_due_on,
        )
    if state is MovementState.TRANSFER_PENDING:
        due = transfer_reply_due_on(origin, host)
        return QueueEntry(Queue.TO_DO, "transfer requested: accept or reject", due)
    if state is MovementState.TRANSFER_ACCEPTED:
        return QueueEntry(Queue.WAITING, "waiting for the origin to complete the transfer")
    if state in (MovementState.NOT_FOUND_BY_HOST, MovementState.FORWARDED):
        return QueueEntry(Queue.WAITING, "waiting for the origin to relocate or cancel")
    if state is MovementState.LOST_CONTACT:
        return QueueEntry(Queue.TO_DO, "lost contact: keep trying to reach the member")
    if unpaid := dues_overdue_month(origin, host, today, deadlines):
        return QueueEntry(Queue.OVERDUE, f"dues unpaid since {unpaid}", deadlines.dues_due(unpaid))
    return None
