"""Political birthdays and yearly reports."""

from __future__ import annotations

from datetime import date

import pytest

from yixian.contracts import Deadlines, report_due_on
from yixian.contracts.examples import origin_group
from yixian.notify.domain.calendar import anniversary, birthday_today


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


def test_a_report_comes_due_the_origins_interval_after_the_last() -> None:
    group = origin_group()
    departed = group.period.departed_on
    assert report_due_on(group, None, Deadlines()) == departed.replace(year=departed.year + 1)
    assert report_due_on(group, None, Deadlines(report_interval_days=60)) == date.fromordinal(
        departed.toordinal() + 60
    )
    reported = group.model_copy(update={"last_report_on": date(2026, 5, 1)})
    assert report_due_on(reported, None, Deadlines(report_interval_days=60)) == date(2026, 6, 30)
