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
    check_in_overdue,
    movement_state,
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
        due = origin.transfer.reply_due_on if origin.transfer else None
        return QueueEntry(Queue.OVERDUE, "transfer reply overdue", due)
    if side is Side.ORIGIN:
        return _origin_entry(state, origin, host, today, deadlines)
    return _host_entry(state, origin, host)


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
    if state is MovementState.LOST_CONTACT and host and host.lost_contact_since:
        removal = deadlines.removal_prompt_on(host.lost_contact_since)
        suspension = deadlines.suspension_prompt_on(host.lost_contact_since)
        if today >= removal:
            return QueueEntry(Queue.TO_DO, "lost contact over 2.5 years: decide removal", removal)
        if today >= suspension:
            return QueueEntry(Queue.TO_DO, "lost contact 6 months: decide suspension", suspension)
        return QueueEntry(Queue.WAITING, "host lost contact: keep trying to reach the member")
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
    state: MovementState, origin: OriginGroup, host: HostGroup | None
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
        due = origin.transfer.reply_due_on if origin.transfer else None
        return QueueEntry(Queue.TO_DO, "transfer requested: accept or reject", due)
    if state is MovementState.TRANSFER_ACCEPTED:
        return QueueEntry(Queue.WAITING, "waiting for the origin to complete the transfer")
    if state in (MovementState.NOT_FOUND_BY_HOST, MovementState.FORWARDED):
        return QueueEntry(Queue.WAITING, "waiting for the origin to relocate or cancel")
    if state is MovementState.LOST_CONTACT:
        return QueueEntry(Queue.TO_DO, "lost contact: keep trying to reach the member")
    return None
