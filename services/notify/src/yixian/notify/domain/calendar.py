"""Dates that come round: political birthdays (the report's due date is the contracts'
``report_due_on``)."""

from __future__ import annotations

import calendar
from datetime import date


def anniversary(joined_on: date, year: int) -> date:
    """The day a member's joining is marked in ``year``; 29 February falls on the 28th
    in years without it."""
    if joined_on.month == 2 and joined_on.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return joined_on.replace(year=year)


def birthday_today(joined_on: date, today: date) -> int | None:
    """Years since joining if today is the political birthday (never on the joining day)."""
    if today.year <= joined_on.year or anniversary(joined_on, today.year) != today:
        return None
    return today.year - joined_on.year
