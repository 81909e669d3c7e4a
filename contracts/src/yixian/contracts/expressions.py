"""Rules about a movement written once, as expressions over its two groups.

A rule that a service evaluates for one movement in Python and a node's database
evaluates for two hundred thousand at once (work queues, statistics) is written here as
an expression tree, not twice. :func:`evaluator` turns an expression into a Python
function of the groups; a node's repository translates the same tree into SQL over the
groups as the node's tables keep them (``yixian.registry.adapters.rules``). The
functions of :mod:`yixian.contracts.state` are such expressions, evaluated.

The language is small on purpose: fields of either group, constants, parameters (today,
a period's bounds, which side the node is), the node's deadlines, comparisons, ``&``,
``|`` and ``~``, a first-match :func:`first`, and the few date operations the rules use.
Every operation has one meaning in both evaluations: a comparison with a value that is
absent is false (never unknown), ``greatest``/``least`` leave absent values out, adding
days past the last representable day gives that day (as :class:`Deadlines` does).

A :class:`Fact` names an expression that does not depend on the day or on a node's
settings (a movement's state, when a reply is due): a database may keep it beside the
groups so that the rules built on it read one column instead of the groups.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, get_args

from pydantic import BaseModel

from .deadlines import Deadlines
from .movement import HostGroup, OriginGroup

BEIJING = timezone(timedelta(hours=8))
"""The time zone of every node's days and months (China has no daylight saving time)."""


class Kind(StrEnum):
    """What an expression's value is (how a database stores and compares it)."""

    TEXT = "text"
    DATE = "date"
    INSTANT = "instant"
    """A point in time (an aware datetime, normalised to UTC)."""
    INT = "int"
    BOOL = "bool"
    UUID = "uuid"
    MONTH = "month"
    """A month as one number, ``year * 12 + month - 1``."""
    MONTHS = "months"
    """A list of months as the contracts write them (``YYYY-MM``)."""
    OBJECT = "object"
    """A part of a group (or a whole group): only whether it is there is read."""


class Expr:
    """An expression; compose with ``&``, ``|``, ``~``, ``<``, ``<=``, ``>``, ``>=``,
    :meth:`is_`, :meth:`is_not`, :meth:`same_as` and :attr:`present`."""

    __slots__ = ()

    @property
    def kind(self) -> Kind:
        raise NotImplementedError

    def __and__(self, other: Expr) -> Expr:
        return All((self, other))

    def __or__(self, other: Expr) -> Expr:
        return AnyOf((self, other))

    def __invert__(self) -> Expr:
        return Not(self)

    def __lt__(self, other: Expr) -> Expr:
        return Compare("<", self, other)

    def __le__(self, other: Expr) -> Expr:
        return Compare("<=", self, other)

    def __gt__(self, other: Expr) -> Expr:
        return Compare(">", self, other)

    def __ge__(self, other: Expr) -> Expr:
        return Compare(">=", self, other)

    def same_as(self, other: Expr) -> Expr:
        """Equal values (false when either is absent)."""
        return Compare("=", self, other)

    def is_(self, *values: str) -> Expr:
        """One of these values (false when absent)."""
        return OneOf(self, tuple(sorted(str(v) for v in values)))

    def is_not(self, *values: str) -> Expr:
        """None of these values (true when absent)."""
        return Not(self.is_(*values))

    @property
    def present(self) -> Expr:
        return Present(self)

    @property
    def missing(self) -> Expr:
        return Not(Present(self))


@dataclass(frozen=True, slots=True)
class Field(Expr):
    """A field of one group, by its path in the contract model (``()``: the group)."""

    group: str
    """``origin`` or ``host``."""
    path: tuple[str, ...]
    of_kind: Kind

    def __post_init__(self) -> None:
        models: dict[str, type[BaseModel]] = {"origin": OriginGroup, "host": HostGroup}
        model: type[BaseModel] | None = models[self.group]
        for name in self.path:
            found = model.model_fields.get(name) if model is not None else None
            if found is None:
                raise ValueError(f"{self.group} group has no field {'.'.join(self.path)}")
            model = next(
                (t for t in (found.annotation, *get_args(found.annotation))
                 if isinstance(t, type) and issubclass(t, BaseModel)),
                None,
            )  # fmt: skip

    @property
    def kind(self) -> Kind:
        return self.of_kind


def origin(*path: str, kind: Kind = Kind.OBJECT) -> Field:
    return Field("origin", path, kind)


def host(*path: str, kind: Kind = Kind.OBJECT) -> Field:
    return Field("host", path, kind)


@dataclass(frozen=True, slots=True)
class Const(Expr):
    value: str | int | date | None
    of_kind: Kind

    @property
    def kind(self) -> Kind:
        return self.of_kind


def text(value: str) -> Const:
    return Const(str(value), Kind.TEXT)


def nothing(kind: Kind) -> Const:
    """No value, of a kind."""
    return Const(None, kind)


@dataclass(frozen=True, slots=True)
class Param(Expr):
    """A value given with each evaluation (today, a period's bound, the node's side)."""

    name: str
    of_kind: Kind

    @property
    def kind(self) -> Kind:
        return self.of_kind


@dataclass(frozen=True, slots=True)
class Setting(Expr):
    """One of the node's deadlines (a number of days, or the dues' day of the month)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in Deadlines.__dataclass_fields__:
            raise ValueError(f"{self.name} is not a deadline")

    @property
    def kind(self) -> Kind:
        return Kind.INT


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in _COMPARISONS:
            raise ValueError(f"no comparison {self.op}")

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class OneOf(Expr):
    item: Expr
    values: tuple[str, ...]

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class Present(Expr):
    item: Expr

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class All(Expr):
    items: tuple[Expr, ...]

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class AnyOf(Expr):
    items: tuple[Expr, ...]

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class Not(Expr):
    item: Expr

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class Case(Expr):
    """The value of the first condition that holds, else ``otherwise``."""

    whens: tuple[tuple[Expr, Expr], ...]
    otherwise: Expr

    @property
    def kind(self) -> Kind:
        return self.otherwise.kind


def first(*whens: tuple[Expr, Expr | str], otherwise: Expr | str) -> Case:
    """A first-match table: ``(condition, value)`` rows; a ``str`` value is text."""

    def value(v: Expr | str) -> Expr:
        return text(v) if isinstance(v, str) else v

    return Case(tuple((cond, value(v)) for cond, v in whens), value(otherwise))


@dataclass(frozen=True, slots=True)
class Coalesce(Expr):
    items: tuple[Expr, ...]

    @property
    def kind(self) -> Kind:
        return self.items[0].kind


@dataclass(frozen=True, slots=True)
class Greatest(Expr):
    """The latest of the dates that are there (absent when none is)."""

    items: tuple[Expr, ...]

    @property
    def kind(self) -> Kind:
        return Kind.DATE


@dataclass(frozen=True, slots=True)
class Least(Expr):
    """The earliest of the dates that are there (absent when none is)."""

    items: tuple[Expr, ...]

    @property
    def kind(self) -> Kind:
        return Kind.DATE


@dataclass(frozen=True, slots=True)
class AddDays(Expr):
    """A date ``days`` later; the last representable day when that lies beyond it."""

    day: Expr
    days: Expr

    @property
    def kind(self) -> Kind:
        return Kind.DATE


@dataclass(frozen=True, slots=True)
class DayOf(Expr):
    """The day of an instant in UTC or in Beijing; the last day for an instant whose
    Beijing day lies beyond it."""

    instant: Expr
    zone: str
    """``utc`` or ``beijing``."""

    @property
    def kind(self) -> Kind:
        return Kind.DATE


@dataclass(frozen=True, slots=True)
class MonthOf(Expr):
    """The Beijing month of an instant (absent for one whose month lies beyond the last
    representable day)."""

    instant: Expr

    @property
    def kind(self) -> Kind:
        return Kind.MONTH


@dataclass(frozen=True, slots=True)
class FirstMissingMonth(Expr):
    """The first month from ``start`` on that is not among ``months``."""

    start: Expr
    months: Expr

    @property
    def kind(self) -> Kind:
        return Kind.MONTH


@dataclass(frozen=True, slots=True)
class DayOfNextMonth(Expr):
    """The ``day`` of the month after ``month`` (the last representable day after
    9999-12)."""

    month: Expr
    day: Expr

    @property
    def kind(self) -> Kind:
        return Kind.DATE


@dataclass(frozen=True, slots=True)
class Fact(Expr):
    """A named expression of the groups alone (no parameter, no setting): a database may
    keep its value per movement, as a column named after it."""

    name: str
    definition: Expr

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"a fact's name is a lower-case identifier: {self.name}")
        if uses(self.definition, Param) or uses(self.definition, Setting):
            raise ValueError(f"fact {self.name} depends on a parameter or a setting")

    @property
    def kind(self) -> Kind:
        return self.definition.kind


def children(expr: Expr) -> tuple[Expr, ...]:
    """The expressions directly inside ``expr``."""
    match expr:
        case Compare(_, left, right):
            return (left, right)
        case OneOf(item, _) | Present(item) | Not(item):
            return (item,)
        case All(items) | AnyOf(items) | Coalesce(items) | Greatest(items) | Least(items):
            return items
        case Case(whens, otherwise):
            return (*(e for pair in whens for e in pair), otherwise)
        case AddDays(day, days):
            return (day, days)
        case DayOf(instant, _) | MonthOf(instant):
            return (instant,)
        case FirstMissingMonth(start, months):
            return (start, months)
        case DayOfNextMonth(month, day):
            return (month, day)
        case Fact(_, definition):
            return (definition,)
    return ()


def uses(expr: Expr, node: type[Expr]) -> bool:
    """Whether a node of this type is anywhere in ``expr``."""
    return isinstance(expr, node) or any(uses(child, node) for child in children(expr))


# -- evaluation in Python ----------------------------------------------------------------


class Env:
    """What an expression is evaluated with: the movement's groups (contract models, or
    None), the parameters and the node's deadlines."""

    __slots__ = ("deadlines", "host", "origin", "params")

    def __init__(
        self,
        origin: Any,
        host: Any,
        params: Mapping[str, Any] | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.origin = origin
        self.host = host
        self.params: Mapping[str, Any] = params or {}
        self.deadlines = deadlines or _DEFAULT_DEADLINES


_DEFAULT_DEADLINES = Deadlines()


Evaluate = Callable[[Env], Any]


def month_number(month: str) -> int:
    """``YYYY-MM`` as a month number."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_text(number: int) -> str:
    """A month number as ``YYYY-MM``."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _later(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max


def evaluator(expr: Expr) -> Evaluate:
    """``expr`` as a Python function of an :class:`Env`."""
    match expr:
        case Field(group, path, _):
            return _field(group, path)
        case Const(value, _):
            return lambda env: value
        case Param(name, _):
            return lambda env: env.params[name]
        case Setting(name):
            return lambda env: getattr(env.deadlines, name)
        case Compare(op, left, right):
            return _compare(_COMPARISONS[op], evaluator(left), evaluator(right))
        case OneOf(item, values):
            get, allowed = evaluator(item), frozenset(values)
            return lambda env: (v := get(env)) is not None and v in allowed
        case Present(item):
            get = evaluator(item)
            return lambda env: get(env) is not None
        case Not(Present(item)):
            get = evaluator(item)
            return lambda env: get(env) is None
        case All((left, right)):
            a, b = evaluator(left), evaluator(right)
            return lambda env: a(env) and b(env)
        case All(items):
            parts = [evaluator(i) for i in items]
            return lambda env: all(p(env) for p in parts)
        case AnyOf((left, right)):
            a, b = evaluator(left), evaluator(right)
            return lambda env: a(env) or b(env)
        case AnyOf(items):
            parts = [evaluator(i) for i in items]
            return lambda env: any(p(env) for p in parts)
        case Not(item):
            get = evaluator(item)
            return lambda env: not get(env)
        case Case(whens, otherwise):
            return _case(whens, otherwise)
        case Coalesce(items):
            parts = [evaluator(i) for i in items]
            return lambda env: next((v for p in parts if (v := p(env)) is not None), None)
        case Greatest(items) | Least(items):
            return _extreme(max if isinstance(expr, Greatest) else min, items)
        case AddDays(day, days):
            return _add_days(evaluator(day), evaluator(days))
        case DayOf(instant, zone):
            return _day_of(evaluator(instant), UTC if zone == "utc" else BEIJING)
        case MonthOf(instant):
            return _month_of(evaluator(instant))
        case FirstMissingMonth(start, months):
            return _first_missing(evaluator(start), evaluator(months))
        case DayOfNextMonth(month, day):
            return _day_of_next_month(evaluator(month), evaluator(day))
        case Fact(_, definition):
            return evaluator(definition)
    raise TypeError(f"not an expression: {expr!r}")


def _field(group: str, path: tuple[str, ...]) -> Evaluate:
    if not path:
        return (lambda env: env.origin) if group == "origin" else (lambda env: env.host)
    if len(path) == 1:
        (name,) = path
        if group == "origin":
            return lambda env: getattr(env.origin, name, None)
        return lambda env: getattr(env.host, name, None)

    def get(env: Env) -> Any:
        value = env.origin if group == "origin" else env.host
        for name in path:  # an absent part: None has none of the names
            value = getattr(value, name, None)
        return value

    return get


def _compare(op: Callable[[Any, Any], bool], left: Evaluate, right: Evaluate) -> Evaluate:
    def compare(env: Env) -> bool:
        a, b = left(env), right(env)
        return a is not None and b is not None and op(a, b)

    return compare


def _case(whens: tuple[tuple[Expr, Expr], ...], otherwise: Expr) -> Evaluate:
    """Consecutive rows that test one expression for values become one lookup."""
    steps: list[tuple[Evaluate, dict[str, Evaluate] | None, Evaluate | None]] = []
    runs: list[tuple[Expr | None, list[tuple[Expr, Expr]]]] = []
    for condition, value in whens:
        item = condition.item if isinstance(condition, OneOf) else None
        if item is not None and runs and runs[-1][0] == item:
            runs[-1][1].append((condition, value))
        else:
            runs.append((item, [(condition, value)]))
    for item, rows in runs:
        if item is None or len(rows) == 1:
            steps += [(evaluator(c), None, evaluator(v)) for c, v in rows]
            continue
        table: dict[str, Evaluate] = {}
        for condition, value in rows:
            assert isinstance(condition, OneOf)
            for allowed in condition.values:
                table.setdefault(allowed, evaluator(value))
        steps.append((evaluator(item), table, None))
    fallback = evaluator(otherwise)

    def case(env: Env) -> Any:
        for test, table, value in steps:
            if table is None:
                if test(env):
                    assert value is not None
                    return value(env)
            elif (found := table.get(test(env))) is not None:
                return found(env)
        return fallback(env)

    return case


def _extreme(pick: Callable[[list[Any]], Any], items: tuple[Expr, ...]) -> Evaluate:
    parts = [evaluator(i) for i in items]

    def extreme(env: Env) -> Any:
        values = [v for p in parts if (v := p(env)) is not None]
        return pick(values) if values else None

    return extreme


def _add_days(day: Evaluate, days: Evaluate) -> Evaluate:
    def add(env: Env) -> date | None:
        d, n = day(env), days(env)
        return None if d is None or n is None else _later(d, n)

    return add


def _day_of(instant: Evaluate, zone: timezone) -> Evaluate:
    def day_of(env: Env) -> date | None:
        at: datetime | None = instant(env)
        if at is None:
            return None
        try:
            return at.astimezone(zone).date()
        except OverflowError:
            return date.max

    return day_of


def _month_of(instant: Evaluate) -> Evaluate:
    def month_of(env: Env) -> int | None:
        at: datetime | None = instant(env)
        if at is None:
            return None
        try:
            local = at.astimezone(BEIJING)
        except OverflowError:  # a partner's time at the end of time: no month
            return None
        return local.year * 12 + local.month - 1

    return month_of


def _first_missing(start: Evaluate, months: Evaluate) -> Evaluate:
    def first_missing(env: Env) -> int | None:
        month: int | None = start(env)
        if month is None:
            return None
        listed = {month_number(m) for m in months(env) or ()}
        while month in listed:
            month += 1
        return month

    return first_missing


def _day_of_next_month(month: Evaluate, day: Evaluate) -> Evaluate:
    def due(env: Env) -> date | None:
        number, d = month(env), day(env)
        if number is None or d is None:
            return None
        following = number + 1
        if following // 12 > date.max.year:
            return date.max
        return date(following // 12, following % 12 + 1, d)

    return due
