"""What a report counts: when a member was away, and how movements are grouped.

As the queues' rules, these are expressions (:data:`AWAY_DURING`) that the node's database
evaluates for every movement of a report at once; the functions evaluate them for one.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from yixian.contracts import OPEN_ORIGIN_STATUSES, OriginGroup, OriginStatus, Standing
from yixian.contracts.expressions import (
    DayOf,
    Env,
    Fact,
    Kind,
    Param,
    evaluator,
    first,
    nothing,
    origin,
)


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


_STATUS = origin("status", kind=Kind.TEXT)
_REMOVED = origin("decision", "standing", kind=Kind.TEXT).is_(Standing.REMOVED)
_BACK = origin("period", "expected_return_on", kind=Kind.DATE)

DEPARTED_ON = Fact("departed_on", origin("period", "departed_on", kind=Kind.DATE))
CLOSED_ON = Fact(
    "closed_on",
    first(
        (origin().missing, nothing(Kind.DATE)),
        (_STATUS.is_(*OPEN_ORIGIN_STATUSES) & ~_REMOVED, nothing(Kind.DATE)),
        (_REMOVED, DayOf(origin("decision", "decided_at", kind=Kind.INSTANT), "beijing")),
        (_STATUS.is_(OriginStatus.RETURNED) & _BACK.present, _BACK),
        otherwise=DayOf(origin("changed_at", kind=Kind.INSTANT), "beijing"),
    ),
)
"""The Beijing day the movement closed at its origin (absent: still open). A return
closes on the day of return; a removal on the day it was decided; any other closing step
on the day it was recorded."""

SINCE = Param("since", Kind.DATE)
UNTIL = Param("until", Kind.DATE)
AWAY_DURING = (
    DEPARTED_ON.present
    & (UNTIL.missing | (DEPARTED_ON <= UNTIL))
    & (SINCE.missing | CLOSED_ON.missing | (CLOSED_ON >= SINCE))
)
"""A movement counts in the period ``since``..``until`` (days included; absent: no
bound): the member departed on or before its last day, and the movement had not closed
before its first day."""

_closed_on = evaluator(CLOSED_ON)
_away_during = evaluator(AWAY_DURING)


def closed_on(origin: OriginGroup) -> date | None:
    """The Beijing day the movement closed at its origin (None: still open)."""
    day: date | None = _closed_on(Env(origin, None))
    return day


def away_during(origin: OriginGroup | None, since: date | None, until: date | None) -> bool:
    """Whether a movement counts in the period ``since``..``until`` (``AWAY_DURING``)."""
    return bool(_away_during(Env(origin, None, {"since": since, "until": until})))
