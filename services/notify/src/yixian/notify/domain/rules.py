"""Which change tells whom what: the rules as data.

A rule matches a change of one group of a movement (the event, and the status it moved
from and to) and names the recipients, the template and the channels. Each notice is
sent by exactly one node: a secretary by the secretary's own node, the member by the
node whose group changed, so a member travelling between two nodes hears each thing once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Recipient(StrEnum):
    MEMBER = "member"
    ORIGIN_SECRETARY = "origin_secretary"
    HOST_SECRETARY = "host_secretary"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    APP = "app"


class Group(StrEnum):
    ORIGIN = "origin"
    HOST = "host"
    ACTIVITY = "activity"
    SCHEDULE = "schedule"
    """Planned by the clock (reminders, prompts, greetings), not by a change."""


@dataclass(frozen=True, slots=True)
class Rule:
    reason: str
    group: Group
    to_status: str | None
    """The status the group moved to (None: any change of the group)."""
    recipients: tuple[Recipient, ...]
    template: str
    variables: frozenset[str]
    """What the template may use; checked when the templates are loaded."""
    urgent: bool = False
    """Sent at night too."""
    mandatory: bool = False
    """Sent even to a member who opted out of the channel."""
    after: frozenset[str | None] | None = None
    """The statuses the group may come from (None in it: first seen); None: any."""


MOVEMENT = frozenset({"member_name", "origin", "host", "movement_id", "state"})
FIRST: frozenset[str | None] = frozenset({None})

CHANNELS: dict[Recipient, tuple[Channel, ...]] = {
    Recipient.MEMBER: (Channel.SMS, Channel.EMAIL, Channel.APP),
    Recipient.ORIGIN_SECRETARY: (Channel.EMAIL, Channel.WEBHOOK),
    Recipient.HOST_SECRETARY: (Channel.EMAIL, Channel.WEBHOOK),
}
"""Each recipient's channels in order of preference: the first it has an address for."""

RULES: tuple[Rule, ...] = (
    Rule("outflow_registered", Group.ORIGIN, "registered", (Recipient.MEMBER,),
         "check_in_instructions", MOVEMENT | {"place", "check_in_due_on", "host_org_hint"},
         mandatory=True, after=FIRST),
    Rule("member_expected", Group.ORIGIN, "registered", (Recipient.HOST_SECRETARY,),
         "member_expected", MOVEMENT | {"place", "check_in_due_on", "phone"}, after=FIRST),
    Rule("checked_in", Group.HOST, "checked_in", (Recipient.ORIGIN_SECRETARY, Recipient.MEMBER),
         "checked_in", MOVEMENT | {"host_org"}, after=frozenset({None, "expected", "not_found"})),
    Rule("contact_restored", Group.HOST, "checked_in", (Recipient.ORIGIN_SECRETARY,),
         "contact_restored", MOVEMENT, after=frozenset({"lost_contact"})),
    Rule("not_found", Group.HOST, "not_found", (Recipient.ORIGIN_SECRETARY,),
         "not_found", MOVEMENT | {"reason"}),
    Rule("forwarded", Group.HOST, "forwarded", (Recipient.ORIGIN_SECRETARY,),
         "forwarded", MOVEMENT | {"reason", "forwarded_to"}),
    Rule("lost_contact", Group.HOST, "lost_contact", (Recipient.ORIGIN_SECRETARY,),
         "lost_contact", MOVEMENT | {"since"}, urgent=True),
    Rule("transfer_requested", Group.ORIGIN, "transfer_requested", (Recipient.HOST_SECRETARY,),
         "transfer_requested", MOVEMENT | {"reply_due_on"}),
    Rule("returned", Group.ORIGIN, "returned",
         (Recipient.ORIGIN_SECRETARY, Recipient.HOST_SECRETARY), "returned", MOVEMENT),
    Rule("transferred", Group.ORIGIN, "transferred", (Recipient.MEMBER, Recipient.HOST_SECRETARY),
         "transferred", MOVEMENT),
    Rule("transfer_accepted", Group.HOST, "transfer:accepted", (Recipient.ORIGIN_SECRETARY,),
         "transfer_accepted", MOVEMENT),
    Rule("transfer_rejected", Group.HOST, "transfer:rejected", (Recipient.ORIGIN_SECRETARY,),
         "transfer_rejected", MOVEMENT | {"reason"}),
    Rule("activity_invitation", Group.ACTIVITY, None, (Recipient.MEMBER,), "activity_invitation",
         frozenset({"member_name", "title", "starts_at", "location", "organizer"})),
    Rule("check_in_due", Group.SCHEDULE, None, (Recipient.MEMBER,), "check_in_due",
         MOVEMENT | {"check_in_due_on", "place"}),
    Rule("not_arrived", Group.SCHEDULE, None,
         (Recipient.ORIGIN_SECRETARY, Recipient.HOST_SECRETARY), "not_arrived",
         MOVEMENT | {"check_in_due_on"}),
    Rule("transfer_reply_due", Group.SCHEDULE, None, (Recipient.HOST_SECRETARY,),
         "transfer_reply_due", MOVEMENT | {"reply_due_on"}),
    Rule("transfer_reply_overdue", Group.SCHEDULE, None,
         (Recipient.HOST_SECRETARY, Recipient.ORIGIN_SECRETARY), "transfer_reply_overdue",
         MOVEMENT | {"reply_due_on"}),
    Rule("yearly_report_due", Group.SCHEDULE, None, (Recipient.MEMBER,), "yearly_report_due",
         MOVEMENT | {"year"}),
    Rule("suspension_prompt", Group.SCHEDULE, None, (Recipient.ORIGIN_SECRETARY,),
         "suspension_prompt", MOVEMENT | {"since"}, urgent=True),
    Rule("removal_prompt", Group.SCHEDULE, None, (Recipient.ORIGIN_SECRETARY,),
         "removal_prompt", MOVEMENT | {"since"}, urgent=True),
    Rule("political_birthday", Group.SCHEDULE, None, (Recipient.MEMBER,), "political_birthday",
         frozenset({"member_name", "years", "joined_on"})),
)  # fmt: skip

BY_REASON = {rule.reason: rule for rule in RULES}


def rules_for(group: Group, previous: str | None, current: str) -> list[Rule]:
    """The rules a change from ``previous`` to ``current`` triggers (none if unchanged).

    ``current`` is the group's status, or ``transfer:<decision>`` when the host answered
    a transfer request (its status does not change then).
    """
    if previous == current or group in (Group.ACTIVITY, Group.SCHEDULE):
        return []
    return [
        r
        for r in RULES
        if r.group is group and r.to_status == current and (r.after is None or previous in r.after)
    ]


def sender_node(recipient: Recipient, group: Group, origin: str, host: str) -> str:
    """The one node that sends this recipient's notice."""
    if recipient is Recipient.ORIGIN_SECRETARY:
        return origin
    if recipient is Recipient.HOST_SECRETARY:
        return host
    return host if group is Group.HOST else origin
