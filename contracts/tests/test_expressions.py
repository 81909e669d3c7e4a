"""The language the rules are written in: what each operation means in Python (the
registry's test_rules_in_sql holds the SQL translation to the same meaning)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from yixian.contracts import Deadlines
from yixian.contracts.examples import host_group, origin_group
from yixian.contracts.expressions import (
    AddDays,
    Const,
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
    month_number,
    month_text,
    nothing,
    origin,
)

TODAY = Param("today", Kind.DATE)
DAY = date(2026, 3, 1)


def value(expr: object, **params: object) -> object:
    env = Env(origin_group(), host_group(), params, Deadlines(upcoming_days=9))
    return evaluator(expr)(env)  # type: ignore[arg-type]


def test_a_field_is_read_by_its_path_and_an_absent_part_is_absent() -> None:
    assert value(origin("period", "departed_on", kind=Kind.DATE)) == date(2026, 2, 20)
    assert value(origin("transfer", "requested_at", kind=Kind.INSTANT)) is None
    assert evaluator(host("status", kind=Kind.TEXT))(Env(origin_group(), None)) is None
    with pytest.raises(ValueError, match=r"no field period\.departed"):
        origin("period", "departed", kind=Kind.DATE)
    with pytest.raises(ValueError, match=r"no field status\.value"):
        host("status", "value", kind=Kind.TEXT)


def test_a_comparison_with_an_absent_value_is_false_and_its_negation_true() -> None:
    absent = origin("lost_contact_since", kind=Kind.DATE)
    assert value(absent < TODAY, today=DAY) is False
    assert value(absent >= TODAY, today=DAY) is False
    assert value(~(absent < TODAY), today=DAY) is True
    assert value(absent.is_("x")) is False
    assert value(absent.is_not("x")) is True
    assert value(absent.missing & TODAY.present, today=DAY) is True


def test_dates_add_up_to_the_last_day_and_extremes_leave_absent_values_out() -> None:
    assert value(AddDays(TODAY, Setting("upcoming_days")), today=DAY) == date(2026, 3, 10)
    assert value(AddDays(Const(date(9999, 12, 30), Kind.DATE), Const(5, Kind.INT))) == date.max
    assert value(AddDays(nothing(Kind.DATE), Const(5, Kind.INT))) is None
    dates = (nothing(Kind.DATE), Const(DAY, Kind.DATE), Const(date(2026, 1, 1), Kind.DATE))
    assert (value(Greatest(dates)), value(Least(dates))) == (DAY, date(2026, 1, 1))
    assert value(Greatest((nothing(Kind.DATE),))) is None


def test_days_and_months_of_an_instant_are_beijing_ones() -> None:
    late = Param("at", Kind.INSTANT)
    at = datetime(2026, 2, 28, 16, 30, tzinfo=UTC)  # 1 March 00:30 in Beijing
    assert value(DayOf(late, "utc"), at=at) == date(2026, 2, 28)
    assert value(DayOf(late, "beijing"), at=at) == date(2026, 3, 1)
    assert month_text(value(MonthOf(late), at=at)) == "2026-03"  # type: ignore[arg-type]
    assert value(MonthOf(late), at=datetime(9999, 12, 31, 16, tzinfo=UTC)) is None
    assert value(DayOf(late, "beijing"), at=datetime(9999, 12, 31, 16, tzinfo=UTC)) == date.max


def test_the_first_month_missing_and_the_day_of_the_next_month() -> None:
    start = Const(month_number("2026-01"), Kind.MONTH)
    paid = Param("paid", Kind.MONTHS)
    missing = FirstMissingMonth(start, paid)
    assert month_text(value(missing, paid=["2026-01", "2026-02", "2026-04"])) == "2026-03"  # type: ignore[arg-type]
    assert month_text(value(missing, paid=[])) == "2026-01"  # type: ignore[arg-type]
    assert month_text(value(missing, paid=None)) == "2026-01"  # type: ignore[arg-type]
    due = DayOfNextMonth(Const(month_number("2026-12"), Kind.MONTH), Const(10, Kind.INT))
    assert value(due) == date(2027, 1, 10)
    assert (
        value(DayOfNextMonth(Const(month_number("9999-12"), Kind.MONTH), Const(10, Kind.INT)))
        == date.max
    )


def test_a_table_reads_from_the_top_and_a_fact_takes_no_parameter() -> None:
    status = host("status", kind=Kind.TEXT)
    table = first((status.is_("expected"), "a"), (status.is_("checked_in"), "b"),
                  (status.present, "c"), otherwise="d")  # fmt: skip
    assert value(table) == "b"
    assert evaluator(table)(Env(origin_group(), None)) == "d"
    with pytest.raises(ValueError, match="depends on a parameter or a setting"):
        Fact("late", origin("check_in_due_on", kind=Kind.DATE) < TODAY)
    with pytest.raises(ValueError, match="lower-case identifier"):
        Fact("Late Fact", origin("check_in_due_on", kind=Kind.DATE))
