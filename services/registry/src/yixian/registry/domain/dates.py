"""When a date or a time given to this node is plausible: one window for each kind.

Each window is measured from the request's time (``now``, passed in) and, for what happens
during a movement, from the member's departure: nothing of a movement happens before it
began, and nothing is recorded as having happened yet when it has not. A date a secretary
writes is a date in Beijing time (UTC+8, no daylight saving), the time of every
jurisdiction in GB/T 2260, so "today" and "the day of departure" are Beijing days.
Every refusal is an :class:`Invalid` naming the field at fault.
"""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta, timezone

from .errors import Invalid

BEIJING = timezone(timedelta(hours=8), "CST")

DEPARTURE_YEARS_BACK = 2
"""An outflow may be registered for a departure up to two years ago (late paperwork)..."""
DEPARTURE_YEARS_AHEAD = 1
"""...or planned up to a year ahead."""
RETURN_YEARS_AHEAD = 5
"""An expected return lies at most five years ahead."""
ACTIVITY_AHEAD = timedelta(days=366)
"""An activity is scheduled at most a year ahead..."""
ACTIVITY_LONGEST = timedelta(days=31)
"""...and lasts at most a month."""
PARTY_FOUNDED = date(1921, 7, 1)
"""Nobody joined the Party before it was founded."""


def local_date(at: datetime) -> date:
    """The Beijing date of an instant."""
    return at.astimezone(BEIJING).date()


def _years_from(day: date, years: int) -> date:
    year = day.year + years
    if not MINYEAR <= year <= MAXYEAR:
        return date.min if years < 0 else date.max
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=year, day=28)


def _between(value: date, earliest: date, latest: date, field: str, why: str) -> None:
    if not earliest <= value <= latest:
        raise Invalid(f"must be between {earliest} and {latest} ({why})", field=field)


def require_departure(departed_on: date, now: datetime, *, field: str) -> None:
    """A departure lies between two years back and one year ahead."""
    today = local_date(now)
    _between(
        departed_on,
        _years_from(today, -DEPARTURE_YEARS_BACK),
        _years_from(today, DEPARTURE_YEARS_AHEAD),
        field,
        f"{DEPARTURE_YEARS_BACK} years back to {DEPARTURE_YEARS_AHEAD} year ahead",
    )


def require_expected_return(expected_return_on: date | None, now: datetime, *, field: str) -> None:
    """An expected return lies at most five years ahead (its order after the departure is
    the contract's rule)."""
    latest = _years_from(local_date(now), RETURN_YEARS_AHEAD)
    if expected_return_on is not None and expected_return_on > latest:
        raise Invalid(f"must be on or before {latest} (at most 5 years ahead)", field=field)


def require_issued(issued_on: date, departed_on: date, now: datetime, *, field: str) -> None:
    """A certificate is issued for the departure: at most a year before it, and not later
    than today."""
    earliest = _years_from(departed_on, -1)
    _between(issued_on, earliest, local_date(now), field, "a year before departure to today")


def require_during(at: date | datetime, departed_on: date, now: datetime, *, field: str) -> None:
    """Something that happened during a movement: on or after the day of departure, and not
    in the future."""
    if isinstance(at, datetime):
        if at > now:
            raise Invalid("must not be in the future", field=field)
        day = local_date(at)
    else:
        day = at
        if day > local_date(now):
            raise Invalid("must not be in the future", field=field)
    if day < departed_on:
        raise Invalid(
            f"must not be before the departure on {departed_on} (Beijing date)", field=field
        )


def require_joined(joined_on: date, now: datetime, *, field: str = "joined_on") -> None:
    """A member joined the Party after its founding and not after today."""
    _between(joined_on, PARTY_FOUNDED, local_date(now), field, "the Party's founding to today")


def require_activity_times(starts_at: datetime, ends_at: datetime | None, now: datetime) -> None:
    """An activity starts from now to a year ahead, and ends after it starts, within a month."""
    latest = now + ACTIVITY_AHEAD
    if starts_at < now:
        raise Invalid("must not be in the past", field="starts_at")
    if starts_at > latest:
        raise Invalid(f"must be before {latest.isoformat()} (a year ahead)", field="starts_at")
    if ends_at is not None and not starts_at < ends_at <= starts_at + ACTIVITY_LONGEST:
        raise Invalid("must be after starts_at, and at most 31 days after it", field="ends_at")


REPORT_YEARS_AHEAD = RETURN_YEARS_AHEAD
"""A report's period may reach as far ahead as an expected return..."""
AUDIT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""...and the audit log is read from 2000 on (no node kept one before)."""


def require_report_period(
    since: date | None, until: date | None, now: datetime, *, fields: tuple[str, str]
) -> None:
    """A period of a report (``from``, ``to``, both days included): each between the
    Party's founding and five years ahead, and ``to`` not before ``from``."""
    latest = _years_from(local_date(now), REPORT_YEARS_AHEAD)
    for day, field in ((since, fields[0]), (until, fields[1])):
        if day is not None:
            _between(day, PARTY_FOUNDED, latest, field, "a plausible day of a movement")
    if since is not None and until is not None and until < since:
        raise Invalid(f"must not be before {fields[0]} ({since})", field=fields[1])


def require_time_window(
    since: datetime | None, until: datetime | None, now: datetime, *, fields: tuple[str, str]
) -> None:
    """A window of the audit log (``since`` included, ``until`` excluded): each from 2000
    to a year ahead of now, and ``until`` after ``since``."""
    latest = now + timedelta(days=366)
    for at, field in ((since, fields[0]), (until, fields[1])):
        if at is not None and not AUDIT_EARLIEST <= at <= latest:
            raise Invalid(
                f"must be between {AUDIT_EARLIEST.isoformat()} and {latest.isoformat()}",
                field=field,
            )
    if since is not None and until is not None and until <= since:
        raise Invalid(f"must be after {fields[0]} ({since.isoformat()})", field=fields[1])
