"""A movement's overall state: a pure function of its two groups.

Both replicas of a movement compute it the same way from the same two groups, so once
the groups have converged the state has too. Partners may use it as well.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from .movement import HostGroup, HostStatus, OriginGroup, OriginStatus, TransferDecision


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
    if origin.status is OriginStatus.TRANSFER_REQUESTED:
        decision = transfer_reply_current(origin, host)
        if decision is TransferDecision.ACCEPTED:
            return MovementState.TRANSFER_ACCEPTED
        if decision is TransferDecision.REJECTED:
            return MovementState.TRANSFER_REJECTED
        return MovementState.TRANSFER_PENDING
    return _HOST_WHILE_REGISTERED[host.status if host else HostStatus.EXPECTED]


def check_in_overdue(origin: OriginGroup | None, host: HostGroup | None, today: date) -> bool:
    return (
        origin is not None
        and movement_state(origin, host) is MovementState.AWAITING_CHECK_IN
        and today > origin.check_in_due_on
    )


def transfer_reply_overdue(origin: OriginGroup | None, host: HostGroup | None, today: date) -> bool:
    return (
        origin is not None
        and origin.transfer is not None
        and movement_state(origin, host) is MovementState.TRANSFER_PENDING
        and today > origin.transfer.reply_due_on
    )
