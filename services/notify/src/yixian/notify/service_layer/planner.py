"""From the node's local topic to notices: which change, which rule, whom, what text.

Runs inside the consumer's unit of work: the notice rows and the offset's batch commit
together, and each notice's key (recipient, reason, occurrence) makes a redelivered or
duplicated event plan nothing new.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from opentelemetry.trace import SpanKind

from yixian.contracts import (
    ActivityScheduled,
    Envelope,
    HostGroup,
    HostGroupChanged,
    MalformedEvent,
    OriginGroup,
    OriginGroupChanged,
    UnknownEventType,
    decode,
    lost_contact_since,
    movement_state,
    transfer_reply_due_on,
)
from yixian.notify.domain.notice import Address, Notice, Seen, notice_key
from yixian.notify.domain.rules import (
    BY_REASON,
    CHANNELS,
    Channel,
    Group,
    Recipient,
    Rule,
    rules_for,
    sender_node,
    step_of,
)
from yixian.notify.domain.templates import Templates
from yixian.runtime import get_logger
from yixian.runtime.divisions import division_name
from yixian.runtime.tracing import span

from .repositories import NodeRecord, NoticeLog
from .unit_of_work import UnitOfWork

__all__ = ["Address", "Planner", "context_of", "member_address", "notice_key"]

log = get_logger(__name__)


class Planner:
    def __init__(
        self,
        node: str,
        templates: Templates,
        language: str = "zh-CN",
        zone: ZoneInfo | None = None,
    ) -> None:
        self.node = node
        self.templates = templates
        self.language = language
        self.zone = zone or ZoneInfo("Asia/Shanghai")

    async def plan(self, uow: UnitOfWork, raw: bytes) -> int:
        """Plan the notices one local event calls for; return how many are new."""
        try:
            event = decode(raw)
        except (MalformedEvent, UnknownEventType) as exc:
            log.warning("local event skipped", reason=str(exc))
            return 0
        with span(f"notify plan {event.type}", event.traceparent, SpanKind.CONSUMER,
                  **{"yixian.node": self.node}):  # fmt: skip
            data = event.data
            if isinstance(data, OriginGroupChanged):
                return await self._group(uow, event, Group.ORIGIN, data.group, data.step)
            if isinstance(data, HostGroupChanged):
                return await self._group(uow, event, Group.HOST, data.group, data.step)
            if isinstance(data, ActivityScheduled) and event.source_node == self.node:
                return await self._invitations(uow, event, data)
            return 0

    async def _invitations(
        self, uow: UnitOfWork, event: Envelope[Any], activity: ActivityScheduled
    ) -> int:
        """Everyone present in the organizer's area, local or visiting, is invited once."""
        rule = BY_REASON["activity_invitation"]
        planned = 0
        for person in await uow.record.present_in_area(activity.organizer.org_id):
            context = {
                "member_name": person.name,
                "title": activity.title,
                "starts_at": activity.starts_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M"),
                "location": activity.location,
                "organizer": activity.organizer.name,
            }
            address = member_address(person.member_id, person.phone, person.email)
            planned += await self.add(
                uow.notices,
                rule,
                Recipient.MEMBER,
                address,
                context,
                occurrence=f"activity:{activity.activity_id}",
                trace_id=event.trace_id,
            )
        return planned

    async def _group(
        self,
        uow: UnitOfWork,
        event: Envelope[Any],
        group: Group,
        snapshot: OriginGroup | HostGroup,
        step: str | None,
    ) -> int:
        previous = await uow.seen.last(snapshot.movement_id, group)
        if previous is not None and previous.version >= snapshot.version:
            return 0  # seen already: a duplicate or an older version
        await uow.seen.record(
            snapshot.movement_id, group, Seen(snapshot.version, snapshot.status.value)
        )
        rules = rules_for(step_of(step, previous.status if previous else None, snapshot))
        if not rules:
            return 0
        origin, host = await uow.record.groups(snapshot.movement_id)
        if isinstance(snapshot, OriginGroup):
            origin = snapshot
        else:
            host = snapshot
        if origin is None:
            return 0
        planned = 0
        for rule in rules:
            for recipient in rule.recipients:
                if (
                    sender_node(recipient, group, origin.origin, origin.destination.jurisdiction)
                    != self.node
                ):
                    continue
                address = await self.address(uow.record, recipient, origin, host)
                planned += await self.add(
                    uow.notices,
                    rule,
                    recipient,
                    address,
                    _context(origin, host),
                    occurrence=f"{origin.movement_id}:{rule.group.value}:v{snapshot.version}",
                    movement_id=origin.movement_id,
                    trace_id=event.trace_id,
                )
        return planned

    async def add(
        self,
        notices: NoticeLog,
        rule: Rule,
        recipient: Recipient,
        address: Address,
        context: dict[str, Any],
        *,
        occurrence: str,
        movement_id: UUID | None = None,
        trace_id: str | None = None,
    ) -> int:
        """Plan one notice; 0 if this (recipient, reason, occurrence) was planned before."""
        rendered = self.templates.render(rule.template, context, self.language)
        who = f"{recipient.value}:{address.member_id or address.address or '-'}"
        notice = Notice(
            key=notice_key(who, rule.reason, occurrence),
            reason=rule.reason,
            recipient=recipient.value,
            channel=address.channel.value,
            address=address.address,
            member_id=address.member_id,
            movement_id=movement_id,
            language=rendered.language,
            subject=rendered.subject,
            body=rendered.body,
            urgent=rule.urgent,
            mandatory=rule.mandatory,
            trace_id=trace_id,
            status="pending" if address.address else "suppressed",
            last_error=None
            if address.address
            else f"no {address.channel.value} address for the {recipient.value}",
        )
        return 1 if await notices.add(notice) else 0

    async def address(
        self,
        record: NodeRecord,
        recipient: Recipient,
        origin: OriginGroup,
        host: HostGroup | None,
    ) -> Address:
        channels = CHANNELS[recipient]
        if recipient is Recipient.MEMBER:
            contact = origin.contact
            return member_address(
                origin.member.member_id,
                contact.phone,
                str(contact.email) if contact.email else None,
            )
        org_id = (
            origin.origin_org.org_id
            if recipient is Recipient.ORIGIN_SECRETARY
            else _host_org(origin, host)
        )
        contacts = await record.contacts(org_id)
        for channel in channels:
            if channel is Channel.EMAIL and contacts and contacts.contact_email:
                return Address(channel, contacts.contact_email)
            if channel is Channel.WEBHOOK and contacts and contacts.webhook_url:
                return Address(channel, contacts.webhook_url)
            if channel is Channel.SMS and contacts and contacts.contact_sms:
                return Address(channel, contacts.contact_sms)
        return Address(channels[0], None)


def member_address(member_id: UUID, phone: str | None, email: str | None) -> Address:
    """A member's first channel with an address: SMS, then email."""
    channels = CHANNELS[Recipient.MEMBER]
    for channel in channels:
        if channel is Channel.SMS and phone:
            return Address(channel, phone, member_id)
        if channel is Channel.EMAIL and email:
            return Address(channel, email, member_id)
    return Address(channels[0], None, member_id)


def _host_org(origin: OriginGroup, host: HostGroup | None) -> UUID | None:
    if host is not None and host.host_org is not None:
        return host.host_org.org_id
    hint = origin.destination.host_org_hint
    return hint.org_id if hint else None


def _reason(host: HostGroup | None) -> str:
    if host is None:
        return ""
    if host.reason:
        return host.reason
    return host.transfer_reply.reason or "" if host.transfer_reply else ""


def context_of(origin: OriginGroup, host: HostGroup | None) -> dict[str, Any]:
    return _context(origin, host)


def place_name(code: str) -> str:
    """A division's full name (北京市朝阳区), never its code; a code this node's list does not
    know (a partner's newer division) is shown as it is rather than not at all."""
    return division_name(code) or code


def _context(origin: OriginGroup, host: HostGroup | None) -> dict[str, Any]:
    return {
        "member_name": origin.member.name,
        "origin": origin.origin_org.name,
        "host": place_name(origin.destination.jurisdiction),
        "movement_id": str(origin.movement_id),
        "state": movement_state(origin, host).value,
        "place": origin.destination.place,
        "check_in_due_on": origin.check_in_due_on.isoformat(),
        "host_org_hint": origin.destination.host_org_hint.name
        if origin.destination.host_org_hint
        else "",
        "phone": origin.contact.phone or "",
        "host_org": host.host_org.name if host and host.host_org else "",
        "reason": _reason(host),
        "forwarded_to": place_name(host.forwarded_to) if host and host.forwarded_to else "",
        "since": since.isoformat() if (since := lost_contact_since(origin, host)) else "",
        "reply_due_on": due.isoformat() if (due := transfer_reply_due_on(origin, host)) else "",
        "decision_reason": origin.decision.reason if origin.decision else "",
        "enrolled_in": host.enrolment.org.name if host and host.enrolment else "",
    }
