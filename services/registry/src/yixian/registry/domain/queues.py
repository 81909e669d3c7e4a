"""A secretary's work queues, as in the national system: to do, waiting on the other side,
overdue, upcoming. Each movement lands in at most one queue, with the reason.

The rules are a table (:data:`RULES`), read from the top: the first whose condition holds
places the movement. :func:`classify` evaluates it for one movement; the node's database
evaluates the same table for every movement of a subtree at once (the repository
translates it to SQL), so the queues are counted and paged where the movements are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from yixian.contracts import Deadlines, HostGroup, MovementState, OriginGroup, Standing
from yixian.contracts import state as rules
from yixian.contracts.expressions import (
    AddDays,
    Env,
    Expr,
    Fact,
    Kind,
    Param,
    Setting,
    evaluator,
    host,
    month_text,
    origin,
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


SIDE = Param("side", Kind.TEXT)
"""Which side of the movement the node is (``Side``)."""
AT_ORIGIN = SIDE.is_(Side.ORIGIN)
AT_HOST = SIDE.is_(Side.HOST)
TODAY = rules.TODAY
STATE = rules.STATE
HORIZON = AddDays(TODAY, Setting("upcoming_days"))
"""How far ahead the "upcoming" queue looks."""

UNPLACED = Fact("unplaced", host("host_org").missing)
"""No host organization answers for the arrival yet: the host's intake places it."""
TO_ENROL = Fact("to_enrol", host().present & host("enrolment").missing)
"""The host has not enrolled the member of a completed transfer yet (ADR 19)."""
EXPECTED_BACK = Fact("expected_return_on", origin("period", "expected_return_on", kind=Kind.DATE))
SUSPENDED = rules.STANDING.is_(Standing.SUSPENDED)


@dataclass(frozen=True, slots=True)
class Rule:
    """Where a movement goes when ``when`` holds (``queue`` None: in no queue)."""

    when: Expr
    queue: Queue | None
    reason: str = ""
    """``{}`` stands for each of ``naming``, in order."""
    due_on: Expr | None = None
    naming: tuple[Expr, ...] = ()


def _state(*states: MovementState) -> Expr:
    return STATE.is_(*states)


RULES: tuple[Rule, ...] = (
    Rule(AT_HOST & _state(MovementState.CLOSED_TRANSFERRED) & TO_ENROL,
         Queue.TO_DO, "transfer completed: enrol the member"),
    Rule(_state(MovementState.UNKNOWN, *rules.CLOSED_STATES), None),
    Rule(rules.CHECK_IN_OVERDUE, Queue.OVERDUE, "check-in overdue", rules.CHECK_IN_DUE),
    Rule(rules.TRANSFER_REPLY_OVERDUE, Queue.OVERDUE, "transfer reply overdue",
         rules.TRANSFER_REPLY_DUE),
    # -- the origin's queues --
    Rule(AT_ORIGIN & _state(MovementState.TRANSFER_ACCEPTED),
         Queue.TO_DO, "host accepted the transfer: complete it"),
    Rule(AT_ORIGIN & _state(MovementState.TRANSFER_REJECTED),
         Queue.TO_DO, "host rejected the transfer: withdraw or ask again"),
    Rule(AT_ORIGIN & _state(MovementState.NOT_FOUND_BY_HOST),
         Queue.TO_DO, "host could not find the member: relocate or cancel"),
    Rule(AT_ORIGIN & _state(MovementState.FORWARDED),
         Queue.TO_DO, "host forwarded the member to {}: follow to the new host",
         naming=(host("forwarded_to", kind=Kind.TEXT),)),
    Rule(AT_ORIGIN & rules.REMOVAL_DUE, Queue.TO_DO,
         "lost contact over 2.5 years: decide removal", rules.REMOVAL_PROMPT_ON),
    Rule(AT_ORIGIN & rules.SUSPENSION_DUE, Queue.TO_DO,
         "lost contact 6 months: decide suspension", rules.SUSPENSION_PROMPT_ON),
    Rule(AT_ORIGIN & _state(MovementState.LOST_CONTACT) & rules.LOST_CONTACT_SINCE.present
         & SUSPENDED, Queue.WAITING, "suspended in lost contact: reinstate when reached"),
    Rule(AT_ORIGIN & _state(MovementState.LOST_CONTACT) & rules.LOST_CONTACT_SINCE.present,
         Queue.WAITING, "lost contact: keep trying to reach the member"),
    Rule(AT_ORIGIN & SUSPENDED,
         Queue.TO_DO, "a suspended member is reached again: decide reinstatement"),
    Rule(AT_ORIGIN & rules.REPORT_OVERDUE,
         Queue.OVERDUE, "the member's report is overdue", rules.REPORT_DUE),
    Rule(AT_ORIGIN & _state(MovementState.AWAITING_CHECK_IN) & (rules.CHECK_IN_DUE <= HORIZON),
         Queue.UPCOMING, "check-in due", rules.CHECK_IN_DUE),
    Rule(AT_ORIGIN & _state(MovementState.AWAITING_CHECK_IN),
         Queue.WAITING, "waiting for the host to confirm check-in"),
    Rule(AT_ORIGIN & _state(MovementState.TRANSFER_PENDING),
         Queue.WAITING, "waiting for the host's transfer reply"),
    Rule(AT_ORIGIN & (TODAY <= EXPECTED_BACK) & (EXPECTED_BACK <= HORIZON),
         Queue.UPCOMING, "expected back", EXPECTED_BACK),
    # -- the host's queues --
    Rule(AT_HOST & _state(MovementState.AWAITING_CHECK_IN) & UNPLACED, Queue.TO_DO,
         "member expected: assign an organization, or confirm check-in, reject or forward",
         rules.CHECK_IN_DUE),
    Rule(AT_HOST & _state(MovementState.AWAITING_CHECK_IN), Queue.TO_DO,
         "member expected: confirm check-in, reject or forward", rules.CHECK_IN_DUE),
    Rule(AT_HOST & _state(MovementState.TRANSFER_PENDING),
         Queue.TO_DO, "transfer requested: accept or reject", rules.TRANSFER_REPLY_DUE),
    Rule(AT_HOST & _state(MovementState.TRANSFER_ACCEPTED),
         Queue.WAITING, "waiting for the origin to complete the transfer"),
    Rule(AT_HOST & _state(MovementState.NOT_FOUND_BY_HOST, MovementState.FORWARDED),
         Queue.WAITING, "waiting for the origin to relocate or cancel"),
    Rule(AT_HOST & _state(MovementState.LOST_CONTACT),
         Queue.TO_DO, "lost contact: keep trying to reach the member"),
    Rule(AT_HOST & rules.DUES_OVERDUE, Queue.OVERDUE, "dues unpaid since {}",
         rules.DUES_UNPAID_DUE, naming=(rules.DUES_UNPAID_FROM,)),
)  # fmt: skip
"""Where a movement belongs in this side's queues today, first match wins."""


_COMPILED = [
    (
        rule,
        evaluator(rule.when),
        evaluator(rule.due_on) if rule.due_on is not None else None,
        [(e.kind, evaluator(e)) for e in rule.naming],
    )
    for rule in RULES
]


def classify(
    side: Side,
    origin: OriginGroup | None,
    host: HostGroup | None,
    today: date,
    deadlines: Deadlines,
) -> QueueEntry | None:
    """Where a movement belongs in this side's queues today (None: nothing to see)."""
    env = Env(origin, host, {"side": side.value, "today": today}, deadlines)
    for rule, when, due_on, naming in _COMPILED:
        if not when(env):
            continue
        if rule.queue is None:
            return None
        said = [_said(kind, value(env)) for kind, value in naming]
        return QueueEntry(
            rule.queue, rule.reason.format(*said), due_on(env) if due_on is not None else None
        )
    return None


def _said(kind: Kind, value: object) -> object:
    return month_text(value) if kind is Kind.MONTH and isinstance(value, int) else value
