"""Political birthdays and yearly reports."""

from __future__ import annotations

from datetime import date

import pytest

from yixian.notify.domain.calendar import anniversary, birthday_today, reports_due


@pytest.mark.parametrize(
    ("joined", "today", "years"),
    [
        (date(2008, 7, 1), date(2026, 7, 1), 18),
        (date(2008, 7, 1), date(2026, 6, 30), None),
        (date(2026, 7, 1), date(2026, 7, 1), None),  # the day itself is not an anniversary
        (date(2004, 2, 29), date(2026, 2, 28), 22),  # no 29 February in 2026
        (date(2004, 2, 29), date(2026, 3, 1), None),
        (date(2004, 2, 29), date(2028, 2, 28), None),  # 2028 has the 29th
        (date(2004, 2, 29), date(2028, 2, 29), 24),
        (date(2005, 2, 28), date(2028, 2, 28), 23),  # a 28 February member is not moved
    ],
)
def test_political_birthday(joined: date, today: date, years: int | None) -> None:
    assert birthday_today(joined, today) == years


def test_anniversary_in_leap_and_common_years() -> None:
    assert anniversary(date(2004, 2, 29), 2027) == date(2027, 2, 28)
    assert anniversary(date(2004, 2, 29), 2028) == date(2028, 2, 29)


def test_reports_come_due_yearly() -> None:
    assert reports_due(date(2026, 2, 20), date(2027, 2, 19)) == 0
    assert reports_due(date(2026, 2, 20), date(2027, 2, 20)) == 1
    assert reports_due(date(2026, 2, 20), date(2029, 3, 1)) == 3
