"""What a report counts: when a member was away, and how movements are grouped."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from yixian.contracts import (
    REMOVED_STATUS,
    OriginGroup,
    OriginStatus,
    origin_open,
    recorded_status,
)

from .dates import local_date


class GroupBy(StrEnum):
    """How statistics are broken down."""

    BRANCH = "branch"
    """The organization of this node answerable for the movement (at the origin the
    member's; at the host the one that checked the member in, else the one the origin
    suggested, else the root)."""
    PARTNER = "partner"
    """The other node of the movement."""
    STATE = "state"
    """The movement's state (``MovementState``)."""
    MONTH = "month"
    """The month of departure (``YYYY-MM``)."""


def closed_on(origin: OriginGroup) -> date | None:
    """The Beijing day the movement closed at its origin (None: still open). A return
    closes on the day of return; any other closing step on the day it was recorded."""
    if origin_open(origin):
        return None
    if origin.decision is not None and recorded_status(origin) == REMOVED_STATUS:
        return local_date(origin.decision.decided_at)
    if origin.status is OriginStatus.RETURNED and origin.period.expected_return_on is not None:
        return origin.period.expected_return_on
    return local_date(origin.changed_at)


def away_during(origin: OriginGroup | None, since: date | None, until: date | None) -> bool:
    """Whether a movement counts in the period ``since``..``until`` (days included; None: no
    bound): the member departed on or before its last day, and the movement had not closed
    before its first day."""
    if origin is None:
        return False
    if until is not None and origin.period.departed_on > until:
        return False
    ended = closed_on(origin)
    return since is None or ended is None or ended >= since
