"""A movement's overall state: a pure function of its two groups.

Both replicas of a movement compute it the same way from the same two groups, so once
the groups have converged the state has too. Partners may use it as well.

Each rule here is written once, as an expression over the groups
(:mod:`yixian.contracts.expressions`): the functions evaluate it for one movement, and a
node's database evaluates the same expression for all of its movements at once (the
registry's work queues and statistics). The upper-case names are the expressions; the
:class:`~yixian.contracts.expressions.Fact` among them depend on the groups alone.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from .deadlines import Deadlines
from .expressions import (
    AddDays,
    Coalesce,
    DayOf,
    DayOfNextMonth,
    Env,
    Fact,
    FirstMissingMonth,
    Greatest,
    Kind,
    Least,
    MonthOf,
    Param,
    Setting,
    evaluator,
    first,
    host,
    month_text,
    nothing,
    origin,
)
from .movement import (
    OPEN_ORIGIN_STATUSES,
    HostGroup,
    HostStatus,
    OriginGroup,
    OriginStatus,
    Standing,
    TransferDecision,
)


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
        return self not in CLOSED_STATES


CLOSED_STATES = frozenset(
    {
        MovementState.CLOSED_RETURNED,
        MovementState.CLOSED_RELOCATED,
        MovementState.CLOSED_TRANSFERRED,
        MovementState.CLOSED_REMOVED,
        MovementState.CANCELLED,
    }
)
"""The states of a closed movement (``MovementState.is_open`` is false)."""

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

TODAY = Param("today", Kind.DATE)
"""The day a rule is evaluated on (a Beijing day)."""

# -- the fields the rules read -----------------------------------------------------------

_ORIGIN_STATUS = origin("status", kind=Kind.TEXT)
_STANDING = origin("decision", "standing", kind=Kind.TEXT)
_TRANSFER = origin("transfer")
_REQUESTED_AT = origin("transfer", "requested_at", kind=Kind.INSTANT)
_HOST_STATUS = host("status", kind=Kind.TEXT)
_REPLY = host("transfer_reply")
_REPLY_AT = host("transfer_reply", "request_at", kind=Kind.INSTANT)

# -- the state ---------------------------------------------------------------------------

CURRENT_REPLY = first(
    (_TRANSFER.present & _REPLY.present & _REPLY_AT.same_as(_REQUESTED_AT),
     host("transfer_reply", "decision", kind=Kind.TEXT)),
    otherwise=nothing(Kind.TEXT),
)  # fmt: skip
"""The host's answer to the origin's *current* transfer request, if it gave one (not an
answer to an earlier request: the origin may ask again)."""

STATE = Fact(
    "state",
    first(
        (origin().missing, MovementState.UNKNOWN),
        *((_ORIGIN_STATUS.is_(status), state) for status, state in _ORIGIN_CLOSED.items()),
        (_STANDING.is_(Standing.REMOVED), MovementState.CLOSED_REMOVED),
        (_ORIGIN_STATUS.is_(OriginStatus.TRANSFER_REQUESTED)
         & CURRENT_REPLY.is_(TransferDecision.ACCEPTED), MovementState.TRANSFER_ACCEPTED),
        (_ORIGIN_STATUS.is_(OriginStatus.TRANSFER_REQUESTED)
         & CURRENT_REPLY.is_(TransferDecision.REJECTED), MovementState.TRANSFER_REJECTED),
        (_ORIGIN_STATUS.is_(OriginStatus.TRANSFER_REQUESTED), MovementState.TRANSFER_PENDING),
        # the origin's own word on lost contact, whatever the host's
        (origin("lost_contact_since", kind=Kind.DATE).present, MovementState.LOST_CONTACT),
        *((_HOST_STATUS.is_(status), state) for status, state in _HOST_WHILE_REGISTERED.items()),
        otherwise=MovementState.AWAITING_CHECK_IN,  # no host group yet: expected
    ),
)  # fmt: skip
"""The overall state of a movement from its origin group and its host group."""

OPEN = STATE.is_not(*CLOSED_STATES)
"""The movement is open (``MovementState.is_open``)."""

# -- deadlines ---------------------------------------------------------------------------

CHECK_IN_DUE = Fact("check_in_due_on", origin("check_in_due_on", kind=Kind.DATE))
CHECK_IN_OVERDUE = STATE.is_(MovementState.AWAITING_CHECK_IN) & (TODAY > CHECK_IN_DUE)

TRANSFER_REPLY_DUE = Fact(
    "transfer_reply_due_on",
    first(
        (_TRANSFER.missing, nothing(Kind.DATE)),
        (host("transfer_reply_days", kind=Kind.INT).present,
         AddDays(DayOf(_REQUESTED_AT, "utc"), host("transfer_reply_days", kind=Kind.INT))),
        otherwise=origin("transfer", "reply_due_on", kind=Kind.DATE),
    ),
)  # fmt: skip
"""When the host's reply to the current transfer request is due: the request's day plus
the host's own deadline, which its group carries (``transfer_reply_days``); the date the
origin stamped into the request only while the host has told none (a host from before)."""

TRANSFER_REPLY_OVERDUE = STATE.is_(MovementState.TRANSFER_PENDING) & (TODAY > TRANSFER_REPLY_DUE)

REPORT_FROM = Fact(
    "report_from",
    Coalesce(
        (
            Greatest(
                (
                    origin("last_report_on", kind=Kind.DATE),
                    host("report_received_on", kind=Kind.DATE),
                )
            ),
            origin("period", "departed_on", kind=Kind.DATE),
        )
    ),
)
"""The day the interval to the member's next report counts from: the last report,
whichever side recorded it, else the departure."""

REPORT_DUE = AddDays(REPORT_FROM, Setting("report_interval_days"))
REPORT_OVERDUE = OPEN & (TODAY > REPORT_DUE)

DUES_UNPAID_FROM = Fact(
    "dues_unpaid_from",
    FirstMissingMonth(
        MonthOf(host("checked_in_at", kind=Kind.INSTANT)), host("dues_paid", kind=Kind.MONTHS)
    ),
)
"""The first month from the (Beijing) month of check-in whose dues are not recorded paid."""

DUES_UNPAID_DUE = DayOfNextMonth(DUES_UNPAID_FROM, Setting("dues_due_day"))
DUES_OVERDUE = STATE.is_(MovementState.ACTIVE) & (TODAY > DUES_UNPAID_DUE)

# -- lost contact ------------------------------------------------------------------------

LOST_CONTACT_SINCE = Fact(
    "lost_contact_since",
    Least(
        (
            origin("lost_contact_since", kind=Kind.DATE),
            first(
                (_HOST_STATUS.is_(HostStatus.LOST_CONTACT),
                 host("lost_contact_since", kind=Kind.DATE)),
                otherwise=nothing(Kind.DATE),
            ),
        )
    ),
)  # fmt: skip
"""The first day of lost contact, as either side recorded it (the earlier of the two)."""

DECIDED = Fact(
    "lost_contact_decided",
    first(
        (origin("decision", "lost_contact_since", kind=Kind.DATE).same_as(LOST_CONTACT_SINCE),
         _STANDING),
        otherwise=nothing(Kind.TEXT),
    ),
)  # fmt: skip
"""The origin's decision on the member's standing about the current lost contact."""

STANDING = Fact("standing", _STANDING)
"""The origin's latest decision on the member's standing, whatever it was about."""

SUSPENSION_PROMPT_ON = AddDays(LOST_CONTACT_SINCE, Setting("lost_contact_suspension_days"))
REMOVAL_PROMPT_ON = AddDays(SUSPENSION_PROMPT_ON, Setting("lost_contact_removal_days"))
_PROMPTING = STATE.is_(MovementState.LOST_CONTACT) & LOST_CONTACT_SINCE.present
SUSPENSION_DUE = _PROMPTING & DECIDED.missing & (TODAY >= SUSPENSION_PROMPT_ON)
REMOVAL_DUE = (
    _PROMPTING & (DECIDED.missing | DECIDED.is_(Standing.SUSPENDED)) & (TODAY >= REMOVAL_PROMPT_ON)
)
"""A decision on that lost contact closes the prompts: any decision the suspension prompt,
a reinstatement or a removal the removal prompt too."""


# -- the functions -----------------------------------------------------------------------

_state = evaluator(STATE)
_current_reply = evaluator(CURRENT_REPLY)
_check_in_overdue = evaluator(CHECK_IN_OVERDUE)
_transfer_reply_due = evaluator(TRANSFER_REPLY_DUE)
_transfer_reply_overdue = evaluator(TRANSFER_REPLY_OVERDUE)
_report_due = evaluator(REPORT_DUE)
_report_overdue = evaluator(REPORT_OVERDUE)
_dues_unpaid_from = evaluator(DUES_UNPAID_FROM)
_dues_overdue = evaluator(DUES_OVERDUE)
_lost_contact_since = evaluator(LOST_CONTACT_SINCE)
_suspension_due = evaluator(SUSPENSION_DUE)
_removal_due = evaluator(REMOVAL_DUE)


def _on(today: date) -> dict[str, Any]:
    return {"today": today}


def transfer_reply_current(origin: OriginGroup, host: HostGroup | None) -> TransferDecision | None:
    """The host's answer to the origin's *current* transfer request, if it gave one."""
    decision = _current_reply(Env(origin, host))
    return TransferDecision(decision) if decision is not None else None


def movement_state(origin: OriginGroup | None, host: HostGroup | None) -> MovementState:
    """The overall state of a movement from its origin group and its host group."""
    return MovementState(_state(Env(origin, host)))


def check_in_overdue(origin: OriginGroup | None, host: HostGroup | None, today: date) -> bool:
    return bool(_check_in_overdue(Env(origin, host, _on(today))))


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
    """When the host's reply to the current transfer request is due (``TRANSFER_REPLY_DUE``)."""
    due: date | None = _transfer_reply_due(Env(origin, host))
    return due


def transfer_reply_overdue(origin: OriginGroup | None, host: HostGroup | None, today: date) -> bool:
    return bool(_transfer_reply_overdue(Env(origin, host, _on(today))))


def report_due_on(origin: OriginGroup, host: HostGroup | None, deadlines: Deadlines) -> date:
    """When the member's next report to the origin is due: the origin's interval after the
    last report, whichever side recorded it (the origin's ``last_report_on``, or the host's
    ``report_received_on`` for a member away), or after departure while there is none (the
    origin's setting counts)."""
    due: date = _report_due(Env(origin, host, deadlines=deadlines))
    return due


def report_overdue(
    origin: OriginGroup | None, host: HostGroup | None, today: date, deadlines: Deadlines
) -> bool:
    return bool(_report_overdue(Env(origin, host, _on(today), deadlines)))


def dues_overdue_month(
    origin: OriginGroup | None, host: HostGroup | None, today: date, deadlines: Deadlines
) -> str | None:
    """The earliest month (``YYYY-MM``) whose dues a visiting member has not paid at the host
    although they were due (``Deadlines.dues_due``: the host's day of the next month, by
    default the 10th) before ``today``; None when nothing is overdue. Counted from the
    month of check-in (Beijing time), while the member is checked in there and the movement
    open (``active``); a month recorded paid (``dues_paid``) is paid, with or without an
    amount."""
    env = Env(origin, host, _on(today), deadlines)
    if not _dues_overdue(env):
        return None
    return month_text(_dues_unpaid_from(env))


def lost_contact_since(origin: OriginGroup | None, host: HostGroup | None) -> date | None:
    """The first day of lost contact, as either side recorded it (the earlier of the two)."""
    since: date | None = _lost_contact_since(Env(origin, host))
    return since


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
    env = Env(origin, host, _on(today), deadlines)
    since = _lost_contact_since(env)
    due: list[tuple[Prompt, date]] = []
    if _suspension_due(env):
        due.append((Prompt.SUSPENSION, since))
    if _removal_due(env):
        due.append((Prompt.REMOVAL, since))
    return due
