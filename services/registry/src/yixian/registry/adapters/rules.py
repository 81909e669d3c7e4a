"""The domain's rules in SQL: each expression of ``yixian.contracts.expressions`` (the
contracts' rules, the queues' table, what a report counts) translated into a condition or
a value over the ``movements`` table, so that the database evaluates for every movement
of a subtree what the domain evaluates for one. The translation keeps the expressions'
meaning: a comparison with an absent value is false, never unknown.

The facts the queues and statistics read (:data:`KEPT`) are kept per movement by
PostgreSQL itself as generated columns ``fact_<name>`` (migration 0015), whose
definitions are this translation of the facts (``generated_column``); a test holds the
migration to it, and another the SQL to the domain on generated movements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from yixian.contracts import Deadlines
from yixian.contracts import state as movement_rules
from yixian.contracts.expressions import (
    AddDays,
    All,
    AnyOf,
    Case,
    Coalesce,
    Compare,
    Const,
    DayOf,
    DayOfNextMonth,
    Expr,
    Fact,
    Field,
    FirstMissingMonth,
    Greatest,
    Kind,
    Least,
    MonthOf,
    Not,
    OneOf,
    Param,
    Present,
    Setting,
)
from yixian.registry.domain import answerable, queues, reporting

KEPT: tuple[Fact, ...] = (
    movement_rules.STATE,
    movement_rules.CHECK_IN_DUE,
    movement_rules.TRANSFER_REPLY_DUE,
    movement_rules.REPORT_FROM,
    movement_rules.DUES_UNPAID_FROM,
    movement_rules.LOST_CONTACT_SINCE,
    movement_rules.DECIDED,
    movement_rules.STANDING,
    queues.UNPLACED,
    queues.TO_ENROL,
    queues.EXPECTED_BACK,
    reporting.DEPARTED_ON,
    reporting.CLOSED_ON,
    answerable.HOST_ORG_HINT,
)
"""The facts kept as generated columns of ``movements`` (``fact_<name>``)."""

_TYPES = {
    Kind.TEXT: "text",
    Kind.DATE: "date",
    Kind.INSTANT: "timestamptz",
    Kind.INT: "integer",
    Kind.BOOL: "boolean",
    Kind.UUID: "uuid",
    Kind.MONTH: "integer",
    Kind.MONTHS: "jsonb",
    Kind.OBJECT: "text",
}
"""How each kind of value is typed in SQL."""

_LAST_DAY = "DATE '9999-12-31'"
_CASTS = {
    Kind.DATE: "yixian_date({})",
    Kind.INSTANT: "yixian_instant({})",
    Kind.INT: "({})::integer",
    Kind.UUID: "({})::uuid",
}
"""Text of a group's field as its kind (the functions are IMMUTABLE casts, migration 0015:
a generated column may use them)."""


def sql_type(kind: Kind) -> str:
    return _TYPES[kind]


def literal(value: str | int | date | None, kind: Kind) -> str:
    """A constant in SQL (the domain's constants: statuses, states, queue names)."""
    if value is None:
        return f"NULL::{_TYPES[kind]}"
    if isinstance(value, bool) or kind is Kind.BOOL:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


class Translation:
    """Translates expressions for one statement.

    ``table``: the alias of ``movements`` (None: its own columns, as a generated column
    reads them); ``params``: the SQL standing for each parameter (a placeholder, or an
    expression of the row such as the node's side); ``deadlines``: the node's settings,
    written as numbers; ``kept``: facts read from their columns instead of computed.
    """

    def __init__(
        self,
        *,
        table: str | None = "m",
        params: Mapping[str, str] | None = None,
        deadlines: Deadlines | None = None,
        kept: tuple[Fact, ...] = KEPT,
    ) -> None:
        self.prefix = f"{table}." if table else ""
        self.params = dict(params or {})
        self.deadlines = deadlines
        self.kept = {fact.name for fact in kept}

    def __call__(self, expr: Expr) -> str:
        """``expr`` in SQL; a condition as a ``WHERE`` or ``WHEN`` reads it."""
        return self._sql(expr, True)

    def value(self, expr: Expr) -> str:
        """``expr`` in SQL as a value: a condition is true or false, never NULL."""
        return self._sql(expr, False)

    def _sql(self, expr: Expr, test: bool = False) -> str:
        """``test``: the result is only tested (``WHERE``, ``WHEN``, ``AND``, ``OR``), where
        NULL reads as false, as an absent value's comparison is: no ``COALESCE`` needed."""
        t = self._sql

        def two_valued(condition: str) -> str:
            return condition if test else f"COALESCE({condition}, false)"

        match expr:
            case Field(group, path, kind):
                return self._field(group, path, kind)
            case Const(value, kind):
                return literal(value, kind)
            case Param(name, kind):
                if name not in self.params:
                    raise KeyError(f"no SQL given for the parameter {name}")
                return f"({self.params[name]})::{_TYPES[kind]}"
            case Setting(name):
                if self.deadlines is None:
                    raise KeyError(f"no deadlines given for the setting {name}")
                return str(int(getattr(self.deadlines, name)))
            case Compare(op, left, right):
                return two_valued(f"({t(left)} {op} {t(right)})")
            case OneOf(item, values):
                listed = ", ".join(literal(v, Kind.TEXT) for v in values)
                return two_valued(f"({t(item)} IN ({listed}))")
            case Not(Present(item)):
                return f"({t(item)} IS NULL)"
            case Present(item):
                return f"({t(item)} IS NOT NULL)"
            case All(items):
                return "(" + " AND ".join(t(i, test) for i in items) + ")"
            case AnyOf(items):
                return "(" + " OR ".join(t(i, test) for i in items) + ")"
            case Not(item):
                return f"(NOT {t(item)})"
            case Case(whens, otherwise):
                arms = " ".join(f"WHEN {t(c, True)} THEN {t(v)}" for c, v in whens)
                return f"CASE {arms} ELSE {t(otherwise)} END"
            case Coalesce(items):
                return "COALESCE(" + ", ".join(t(i) for i in items) + ")"
            case Greatest(items):
                return "GREATEST(" + ", ".join(t(i) for i in items) + ")"
            case Least(items):
                return "LEAST(" + ", ".join(t(i) for i in items) + ")"
            case AddDays(day, days):
                return f"LEAST({t(day)} + {t(days)}, {_LAST_DAY})"
            case DayOf(instant, zone):
                offset = "+00:00" if zone == "utc" else "+08:00"
                return f"LEAST(({t(instant)} AT TIME ZONE INTERVAL '{offset}')::date, {_LAST_DAY})"
            case MonthOf(instant):
                return f"yixian_beijing_month({t(instant)})"
            case FirstMissingMonth(start, months):
                return f"yixian_first_missing_month({t(start)}, {t(months)})"
            case DayOfNextMonth(month, day):
                return f"yixian_day_of_next_month({t(month)}, {t(day)})"
            case Fact(name, definition):
                if name in self.kept:
                    return f"{self.prefix}fact_{name}"
                return t(definition, test)
        raise TypeError(f"not an expression: {expr!r}")

    def _field(self, group: str, path: tuple[str, ...], kind: Kind) -> str:
        column = f"{self.prefix}{group}_group"
        if not path:
            return column
        if kind is Kind.MONTHS:
            return f"({column} #> '{{{','.join(path)}}}')"
        value = f"({column} #>> '{{{','.join(path)}}}')"
        return _CASTS[kind].format(value) if kind in _CASTS else value


def generated_column(fact: Fact) -> str:
    """The SQL of the generated column that keeps ``fact`` (as migration 0015 has it)."""
    definition = Translation(table=None, kept=()).value(fact.definition)
    return f"fact_{fact.name} {sql_type(fact.kind)} GENERATED ALWAYS AS ({definition}) STORED"


def queue_case(translate: Callable[[Expr], str]) -> str:
    """The queue of a movement (NULL: none) by the domain's table of queue rules."""
    arms = " ".join(
        f"WHEN {translate(rule.when)} THEN {literal(rule.queue, Kind.TEXT)}"
        for rule in queues.RULES
    )
    return f"(CASE {arms} END)"
