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
  report interval and the lost-contact prompts count at the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


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
    visitor_claim_days: int = 7
    """A visitor's claim the origin has not confirmed by then goes to the host's to-do
    (host; ADR 21)."""
    upcoming_days: int = 7
    """How far ahead the "upcoming" queue looks."""

    def check_in_due(self, departed_on: date) -> date:
        return departed_on + timedelta(days=self.check_in_days)

    def visitor_claim_due(self, asked_on: date) -> date:
        return asked_on + timedelta(days=self.visitor_claim_days)

    def transfer_reply_due(self, requested_on: date) -> date:
        return requested_on + timedelta(days=self.transfer_reply_days)

    def report_due(self, last_reported_on: date) -> date:
        return last_reported_on + timedelta(days=self.report_interval_days)

    def suspension_prompt_on(self, lost_since: date) -> date:
        return lost_since + timedelta(days=self.lost_contact_suspension_days)

    def removal_prompt_on(self, lost_since: date) -> date:
        return self.suspension_prompt_on(lost_since) + timedelta(
            days=self.lost_contact_removal_days
        )
