"""The contracts' rules for dues at the host and for the report a host receives for the
origin: one definition the registry's queues and notify's scheduler share."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from yixian.contracts import (
    MAX_DUES_FEN,
    Deadlines,
    DuesPayment,
    DuesPeriod,
    HostStatus,
    dues_months,
    dues_overdue_month,
    prompts_due,
    report_due_on,
    report_overdue,
)
from yixian.contracts.examples import host_group, origin_group

DEADLINES = Deadlines()  # dues due by the 10th of the next month


def test_a_period_is_its_months_in_order_across_a_year() -> None:
    assert dues_months("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert DuesPeriod(from_month="2026-03", to_month="2026-03").months == ["2026-03"]
    with pytest.raises(ValidationError, match="to_month must not be before from_month"):
        DuesPeriod(from_month="2026-03", to_month="2026-02")


@pytest.mark.parametrize("amount", [0, -1, MAX_DUES_FEN + 1])
def test_an_amount_of_nothing_or_absurdly_much_is_refused(amount: int) -> None:
    with pytest.raises(ValidationError, match="amount_fen"):
        DuesPayment(
            period=DuesPeriod(from_month="2026-03", to_month="2026-03"),
            amount_fen=amount,
            recorded_at=datetime(2026, 4, 1, tzinfo=UTC),
        )


def test_a_months_dues_are_due_by_the_hosts_day_of_the_next_month() -> None:
    assert DEADLINES.dues_due("2026-03") == date(2026, 4, 10)
    assert DEADLINES.dues_due("2026-12") == date(2027, 1, 10)
    assert Deadlines(dues_due_day=25).dues_due("2026-03") == date(2026, 4, 25)


def test_dues_are_overdue_from_the_month_of_check_in_once_the_due_day_passed() -> None:
    origin, host = origin_group(), host_group()  # checked in on 2026-03-01 (Beijing)
    assert dues_overdue_month(origin, host, date(2026, 4, 10), DEADLINES) is None  # due today
    assert dues_overdue_month(origin, host, date(2026, 4, 11), DEADLINES) == "2026-03"
    paid = host.model_copy(update={"dues_paid": ["2026-03"]})
    assert dues_overdue_month(origin, paid, date(2026, 4, 11), DEADLINES) is None
    assert dues_overdue_month(origin, paid, date(2026, 5, 11), DEADLINES) == "2026-04"
    gap = host.model_copy(update={"dues_paid": ["2026-04"]})  # March still unpaid
    assert dues_overdue_month(origin, gap, date(2026, 5, 11), DEADLINES) == "2026-03"
    later = Deadlines(dues_due_day=20)
    assert dues_overdue_month(origin, host, date(2026, 4, 15), later) is None


def test_check_in_late_at_night_counts_in_beijing_month() -> None:
    host = host_group().model_copy(
        update={"checked_in_at": datetime(2026, 2, 28, 17, 0, tzinfo=UTC)}  # 3-01 01:00 in Beijing
    )
    assert dues_overdue_month(origin_group(), host, date(2026, 4, 1), DEADLINES) is None


def test_only_a_checked_in_member_of_an_open_movement_owes_dues_here() -> None:
    origin, today = origin_group(), date(2026, 6, 1)
    lost = host_group().model_copy(
        update={"status": HostStatus.LOST_CONTACT, "lost_contact_since": date(2026, 4, 1)}
    )
    assert dues_overdue_month(origin, lost, today, DEADLINES) is None
    expected = host_group().model_copy(
        update={"status": HostStatus.EXPECTED, "checked_in_at": None, "host_org": None}
    )
    assert dues_overdue_month(origin, expected, today, DEADLINES) is None
    assert dues_overdue_month(origin, None, today, DEADLINES) is None


def test_a_report_the_host_received_counts_as_the_report_on_the_origins_interval() -> None:
    origin, host = origin_group(), host_group()  # departed 2026-02-20
    interval = Deadlines(report_interval_days=60)
    assert report_due_on(origin, host, interval) == date(2026, 4, 21)
    received = host.model_copy(update={"report_received_on": date(2026, 4, 15)})
    assert report_due_on(origin, received, interval) == date(2026, 6, 14)
    assert report_overdue(origin, host, date(2026, 4, 22), interval)
    assert not report_overdue(origin, received, date(2026, 4, 22), interval)
    # the later of the two reports counts, whichever side recorded it
    reported = origin.model_copy(update={"last_report_on": date(2026, 5, 1)})
    assert report_due_on(reported, received, interval) == date(2026, 6, 30)
    assert report_due_on(reported, host, interval) == date(2026, 6, 30)
    earlier = origin.model_copy(update={"last_report_on": date(2026, 3, 1)})
    assert report_due_on(earlier, received, interval) == date(2026, 6, 14)


@pytest.mark.parametrize(
    "update",
    [
        {"lost_contact_since": date(9999, 12, 31)},
        {"report_received_on": date(9999, 12, 31)},
        {"checked_in_at": datetime(9999, 12, 31, 20, tzinfo=UTC)},
    ],
    ids=["lost contact", "report received", "checked in"],
)
def test_a_partners_dates_at_the_end_of_time_break_no_rule(update: dict[str, object]) -> None:
    """Contract dates have no bounds (a partner may send any): the deadlines saturate."""
    origin = origin_group(1)
    host = host_group(1).model_copy(update=update)
    today = date(2026, 6, 1)
    deadlines = Deadlines()
    report_due_on(origin, host, deadlines)
    dues_overdue_month(origin, host, today, deadlines)
    prompts_due(origin, host, today, deadlines)
    assert deadlines.removal_prompt_on(date(9999, 12, 1)) == date.max
