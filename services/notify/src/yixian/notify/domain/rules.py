"""Which change tells whom what: the rules as data.

A rule matches the step that made a group's new version (the event says which:
``OriginGroupChanged.step``, ``HostGroupChanged.step``) and names the recipients, the
template and the channels. Each notice is sent by exactly one node: a secretary by the
secretary's own node, the member by the node whose group changed, so a member travelling
between two nodes hears each thing once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from yixian.contracts import (
    HostGroup,
    HostStatus,
    MovementStep,
    OriginGroup,
    OriginStatus,
    TransferDecision,
)


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
    step: MovementStep | None
    """The step the rule answers (None: an activity or the clock, not a step)."""
    recipients: tuple[Recipient, ...]
    template: str
    variables: frozenset[str]
    """What the template may use; checked when the templates are loaded."""
    urgent: bool = False
    """Sent at night too."""
    mandatory: bool = False
    """Sent even to a member who opted out of the channel."""


MOVEMENT = frozenset({"member_name", "origin", "host", "movement_id", "state"})
S = MovementStep

CHANNELS: dict[Recipient, tuple[Channel, ...]] = {
    Recipient.MEMBER: (Channel.SMS, Channel.EMAIL, Channel.APP),
    Recipient.ORIGIN_SECRETARY: (Channel.EMAIL, Channel.WEBHOOK, Channel.SMS),
    Recipient.HOST_SECRETARY: (Channel.EMAIL, Channel.WEBHOOK, Channel.SMS),
}
"""Each recipient's channels in order of preference: the first it has an address for."""

RULES: tuple[Rule, ...] = (
    Rule("outflow_registered", Group.ORIGIN, S.REGISTERED, (Recipient.MEMBER,),
         "check_in_instructions", MOVEMENT | {"place", "check_in_due_on", "host_org_hint"},
         mandatory=True),
    Rule("member_expected", Group.ORIGIN, S.REGISTERED, (Recipient.HOST_SECRETARY,),
         "member_expected", MOVEMENT | {"place", "check_in_due_on", "phone"}),
    Rule("member_assigned", Group.HOST, S.ASSIGNED, (Recipient.HOST_SECRETARY,),
         "member_assigned", MOVEMENT | {"place", "check_in_due_on", "phone", "host_org"}),
    Rule("checked_in", Group.HOST, S.CHECKED_IN, (Recipient.ORIGIN_SECRETARY, Recipient.MEMBER),
         "checked_in", MOVEMENT | {"host_org"}),
    Rule("contact_restored", Group.HOST, S.CONTACT_RESTORED, (Recipient.ORIGIN_SECRETARY,),
         "contact_restored", MOVEMENT),
    Rule("not_found", Group.HOST, S.REJECTED, (Recipient.ORIGIN_SECRETARY,),
         "not_found", MOVEMENT | {"reason"}),
    Rule("forwarded", Group.HOST, S.FORWARDED, (Recipient.ORIGIN_SECRETARY,),
         "forwarded", MOVEMENT | {"reason", "forwarded_to"}),
    Rule("lost_contact", Group.HOST, S.LOST_CONTACT, (Recipient.ORIGIN_SECRETARY,),
         "lost_contact", MOVEMENT | {"since"}, urgent=True),
    Rule("registration_cancelled", Group.ORIGIN, S.CANCELLED, (Recipient.HOST_SECRETARY,),
         "registration_cancelled", MOVEMENT | {"place", "check_in_due_on"}),
    Rule("transfer_requested", Group.ORIGIN, S.TRANSFER_REQUESTED, (Recipient.HOST_SECRETARY,),
         "transfer_requested", MOVEMENT | {"reply_due_on"}),
    Rule("returned", Group.ORIGIN, S.RETURNED,
         (Recipient.ORIGIN_SECRETARY, Recipient.HOST_SECRETARY), "returned", MOVEMENT),
    Rule("transferred", Group.ORIGIN, S.TRANSFER_COMPLETED,
         (Recipient.MEMBER, Recipient.HOST_SECRETARY), "transferred", MOVEMENT),
    Rule("enrolled", Group.HOST, S.ENROLLED, (Recipient.ORIGIN_SECRETARY, Recipient.MEMBER),
         "enrolled", MOVEMENT | {"enrolled_in"}),
    Rule("feedback_answered", Group.HOST, S.FEEDBACK_ANSWERED, (Recipient.MEMBER,),
         "feedback_answered", MOVEMENT | {"host_org"}),
    Rule("transfer_accepted", Group.HOST, S.TRANSFER_ACCEPTED, (Recipient.ORIGIN_SECRETARY,),
         "transfer_accepted", MOVEMENT),
    Rule("transfer_rejected", Group.HOST, S.TRANSFER_REJECTED, (Recipient.ORIGIN_SECRETARY,),
         "transfer_rejected", MOVEMENT | {"reason"}),
    Rule("lost_contact_at_origin", Group.ORIGIN, S.LOST_CONTACT_AT_ORIGIN,
         (Recipient.HOST_SECRETARY,), "lost_contact_at_origin", MOVEMENT | {"since"}),
    Rule("contact_restored_at_origin", Group.ORIGIN, S.CONTACT_RESTORED_AT_ORIGIN,
         (Recipient.HOST_SECRETARY,), "contact_restored_at_origin", MOVEMENT),
    Rule("suspended", Group.ORIGIN, S.SUSPENDED,
         (Recipient.ORIGIN_SECRETARY, Recipient.HOST_SECRETARY), "suspended",
         MOVEMENT | {"since", "decision_reason"}),
    Rule("reinstated", Group.ORIGIN, S.REINSTATED,
         (Recipient.ORIGIN_SECRETARY, Recipient.HOST_SECRETARY), "reinstated",
         MOVEMENT | {"decision_reason"}),
    Rule("removed", Group.ORIGIN, S.REMOVED,
         (Recipient.ORIGIN_SECRETARY, Recipient.HOST_SECRETARY), "removed",
         MOVEMENT | {"since", "decision_reason"}),
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


def rules_for(step: MovementStep | None) -> list[Rule]:
    """The rules the step that made a group's new version triggers (none for no step)."""
    return [] if step is None else [r for r in RULES if r.step is step]


def step_of(
    named: str | None, previous_status: str | None, snapshot: OriginGroup | HostGroup
) -> MovementStep | None:
    """The step that made ``snapshot``: the one its event names, if it names one.

    An event that names none (a repair copy, or a producer from before events named their
    step) is the one place the step is inferred, from the status the group had when last
    seen (None: never seen) and the snapshot itself. A transfer reply changes no status:
    it is inferred only when it made this very version (``replied_at == changed_at``). A
    step this reader does not know (a newer producer's) triggers nothing.
    """
    if named is not None:
        return MovementStep.of(named)
    status = snapshot.status.value
    if isinstance(snapshot, OriginGroup):
        if previous_status == status:
            return None
        if status == OriginStatus.REGISTERED:
            return S.TRANSFER_WITHDRAWN if previous_status else S.REGISTERED
        return _ORIGIN_STEPS.get(snapshot.status)
    reply = snapshot.transfer_reply
    if previous_status == status:
        if reply is not None and reply.replied_at == snapshot.changed_at:
            accepted = reply.decision is TransferDecision.ACCEPTED
            return S.TRANSFER_ACCEPTED if accepted else S.TRANSFER_REJECTED
        return None
    if status == HostStatus.CHECKED_IN and previous_status == HostStatus.LOST_CONTACT:
        return S.CONTACT_RESTORED
    return _HOST_STEPS.get(snapshot.status)


_ORIGIN_STEPS: dict[OriginStatus, MovementStep] = {
    OriginStatus.RELOCATED: S.RELOCATED,
    OriginStatus.RETURNED: S.RETURNED,
    OriginStatus.CANCELLED: S.CANCELLED,
    OriginStatus.TRANSFER_REQUESTED: S.TRANSFER_REQUESTED,
    OriginStatus.TRANSFERRED: S.TRANSFER_COMPLETED,
}
_HOST_STEPS: dict[HostStatus, MovementStep] = {
    HostStatus.CHECKED_IN: S.CHECKED_IN,
    HostStatus.NOT_FOUND: S.REJECTED,
    HostStatus.FORWARDED: S.FORWARDED,
    HostStatus.LOST_CONTACT: S.LOST_CONTACT,
}


def sender_node(recipient: Recipient, group: Group, origin: str, host: str) -> str:
    """The one node that sends this recipient's notice."""
    if recipient is Recipient.ORIGIN_SECRETARY:
        return origin
    if recipient is Recipient.HOST_SECRETARY:
        return host
    return host if group is Group.HOST else origin
