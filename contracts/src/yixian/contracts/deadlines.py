"""The deadlines of the rules in force, one definition for every service of a node.

A node may set its own (``YIXIAN_DEADLINES__*``, read once by ``yixian.runtime``'s
``NodeSettings.deadlines``); the defaults are the rules in force. Each deadline belongs to
the side the rule gives it to, and only that side's setting counts:

- the origin stamps the check-in due date into its group when it registers an outflow
  (``check_in_due_on``); both sides then read the date from the record, never their own
  setting, so both queues and both schedulers agree;
- the host answers a transfer request: its reply deadline travels in the host group
  (``transfer_reply_days``, stamped at each host step), and both sides count the reply's
  due date from the request with it (``transfer_reply_due_on``); the origin's own setting
  only stands in while the host has told none;
- the member reports to the origin, and the origin decides suspension and removal: the
  report interval and the lost-contact prompts count at the origin; a report the host
  received for the origin counts as one (``report_due_on``);
- the member pays dues at the host: a month's dues are due by the host's day of the next
  month (``dues_due_day``), and only the host's queue counts them (``dues_overdue_month``);
- a member's concern (feedback) is answered by the organization it is addressed to: the
  answer deadline counts at the node that holds the concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Deadlines:
    check_in_days: int = 30
    """Check-in after departure (origin); then a reminder and "not arrived" on both sides."""
    transfer_reply_days: int = 30
    """Host's reply to a transfer request (the host's, carried in its group); then overdue
    in both queues."""
    report_interval_days: int = 365
    """The member's yearly report to the origin (origin)."""
    lost_contact_suspension_days: int = 183
    """Six months of lost contact: the origin is prompted to decide suspension (origin)."""
    lost_contact_removal_days: int = 730
    """Two more years after that: the removal prompt (origin)."""
    dues_due_day: int = 10
    """A month's dues are due by this day of the next month (host); then "dues overdue" in
    the host's queue."""
    visitor_claim_days: int = 7
    """A visitor's claim the origin has not confirmed by then goes to the host's to-do
    (host; ADR 21)."""
    upcoming_days: int = 7
    """How far ahead the "upcoming" queue looks."""
    feedback_answer_hours: int = 24
    """A member's concern is answered within this many hours of being raised (the node that
    holds the concern); then it is overdue in the secretaries' feedback queue."""

    def check_in_due(self, departed_on: date) -> date:
        return _later(departed_on, self.check_in_days)

    def visitor_claim_due(self, asked_on: date) -> date:
        return asked_on + timedelta(days=self.visitor_claim_days)

    def transfer_reply_due(self, requested_on: date) -> date:
        return _later(requested_on, self.transfer_reply_days)

    def report_due(self, last_reported_on: date) -> date:
        return _later(last_reported_on, self.report_interval_days)

    def dues_due(self, month: str) -> date:
        """The day a month's dues (``YYYY-MM``) are due: ``dues_due_day`` of the next month."""
        year, number = int(month[:4]), int(month[5:])
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
        if year > date.max.year:
            return date.max
        return date(year, number, self.dues_due_day)

    def suspension_prompt_on(self, lost_since: date) -> date:
        return _later(lost_since, self.lost_contact_suspension_days)

    def removal_prompt_on(self, lost_since: date) -> date:
        return _later(self.suspension_prompt_on(lost_since), self.lost_contact_removal_days)

    def feedback_answer_due(self, raised_at: datetime) -> datetime:
        try:
            return raised_at + timedelta(hours=self.feedback_answer_hours)
        except OverflowError:
            return datetime.max.replace(tzinfo=raised_at.tzinfo)


def _later(day: date, days: int) -> date:
    """``days`` after ``day``; the last representable day when that lies beyond it (a
    partner's group may carry any date: a deadline computed from it must not fail)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max
