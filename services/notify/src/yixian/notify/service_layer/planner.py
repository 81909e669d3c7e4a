"""From the node's local topic to notices: which change, which rule, whom, what text.

Runs inside the consumer's unit of work: the notice rows and the offset's batch commit
together, and each notice's key (recipient, reason, occurrence) makes a redelivered or
duplicated event plan nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
from yixian.notify.domain.notice import Address, Contacts, Notice, Seen, notice_key
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
        return await self.plan_batch(uow, [raw])

    async def plan_batch(self, uow: UnitOfWork, raws: Sequence[bytes]) -> int:
        """Plan the notices a batch of local events calls for, as if one by one in order;
        return how many are new. What was seen of the batch's groups and the movements
        they belong to are read once for the batch, the notices and what was seen written
        once (``Batch``)."""
        events: list[Envelope[Any]] = []
        for raw in raws:
            try:
                events.append(decode(raw))
            except (MalformedEvent, UnknownEventType) as exc:
                log.warning("local event skipped", reason=str(exc))
        batch = Batch()
        changes = [e.data.group for e in events if isinstance(e.data, _GROUP_EVENTS)]
        if changes:
            batch.seen = await uow.seen.last_all({(g.movement_id, _name(g)) for g in changes})
        plans: dict[int, tuple[Rule, ...]] = {}
        for i, event in enumerate(events):
            if isinstance(event.data, _GROUP_EVENTS):
                rules = batch.see(event.data.group, event.data.step)
                if rules:
                    plans[i] = rules
        if plans:
            batch.movements = await uow.record.groups_of(
                {events[i].data.group.movement_id for i in plans}
            )
        for i, event in enumerate(events):
            data = event.data
            inviting = isinstance(data, ActivityScheduled) and event.source_node == self.node
            if i not in plans and not inviting:
                continue
            with span(f"notify plan {event.type}", event.traceparent, SpanKind.CONSUMER,
                      **{"yixian.node": self.node}):  # fmt: skip
                if isinstance(data, ActivityScheduled):
                    await self._invitations(uow, batch, event, data)
                else:
                    await self._group(uow.record, batch, event, data.group, plans[i])
        if batch.changed:
            await uow.seen.record_all(batch.changed)
        return await uow.notices.add_all(batch.notices) if batch.notices else 0

    async def _invitations(
        self, uow: UnitOfWork, batch: Batch, event: Envelope[Any], activity: ActivityScheduled
    ) -> None:
        """Everyone present in the organizer's area, local or visiting, is invited once."""
        rule = BY_REASON["activity_invitation"]
        for person in await uow.record.present_in_area(activity.organizer.org_id):
            context = {
                "member_name": person.name,
                "title": activity.title,
                "starts_at": activity.starts_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M"),
                "location": activity.location,
                "organizer": activity.organizer.name,
            }
            address = member_address(person.member_id, person.phone, person.email)
            batch.notices.append(
                self.notice(
                    rule,
                    Recipient.MEMBER,
                    address,
                    context,
                    occurrence=f"activity:{activity.activity_id}",
                    trace_id=event.trace_id,
                )
            )

    async def _group(
        self,
        record: NodeRecord,
        batch: Batch,
        event: Envelope[Any],
        snapshot: OriginGroup | HostGroup,
        rules: tuple[Rule, ...],
    ) -> None:
        group = _name(snapshot)
        origin, host = batch.movements.get(snapshot.movement_id, (None, None))
        if isinstance(snapshot, OriginGroup):
            origin = snapshot
        else:
            host = snapshot
        if origin is None:
            return
        for rule in rules:
            for recipient in rule.recipients:
                if (
                    sender_node(recipient, group, origin.origin, origin.destination.jurisdiction)
                    != self.node
                ):
                    continue
                address = await self.address(record, recipient, origin, host, batch.contacts)
                batch.notices.append(
                    self.notice(
                        rule,
                        recipient,
                        address,
                        _context(origin, host),
                        occurrence=f"{origin.movement_id}:{rule.group.value}:v{snapshot.version}",
                        movement_id=origin.movement_id,
                        trace_id=event.trace_id,
                    )
                )

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
        notice = self.notice(
            rule,
            recipient,
            address,
            context,
            occurrence=occurrence,
            movement_id=movement_id,
            trace_id=trace_id,
        )
        return 1 if await notices.add(notice) else 0

    def notice(
        self,
        rule: Rule,
        recipient: Recipient,
        address: Address,
        context: dict[str, Any],
        *,
        occurrence: str,
        movement_id: UUID | None = None,
        trace_id: str | None = None,
    ) -> Notice:
        """One notice rendered, keyed by (recipient, reason, occurrence)."""
        rendered = self.templates.render(rule.template, context, self.language)
        return Notice(
            key=self.key(rule, recipient, address, occurrence),
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

    def key(self, rule: Rule, recipient: Recipient, address: Address, occurrence: str) -> str:
        """The key of the notice ``notice`` makes of these: once per recipient (who, where
        reached), reason and occurrence."""
        who = f"{recipient.value}:{address.member_id or address.address or '-'}"
        return notice_key(who, rule.reason, occurrence)

    async def address(
        self,
        record: NodeRecord,
        recipient: Recipient,
        origin: OriginGroup,
        host: HostGroup | None,
        known: dict[UUID | None, Contacts | None] | None = None,
    ) -> Address:
        """Where ``recipient`` is reached; ``known``: organizations' contacts read before
        (and those read now are kept there)."""
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
        if known is not None and org_id in known:
            contacts = known[org_id]
        else:
            contacts = await record.contacts(org_id)
            if known is not None:
                known[org_id] = contacts
        for channel in channels:
            if channel is Channel.EMAIL and contacts and contacts.contact_email:
                return Address(channel, contacts.contact_email)
            if channel is Channel.WEBHOOK and contacts and contacts.webhook_url:
                return Address(channel, contacts.webhook_url)
            if channel is Channel.SMS and contacts and contacts.contact_sms:
                return Address(channel, contacts.contact_sms)
        return Address(channels[0], None)


_GROUP_EVENTS = (OriginGroupChanged, HostGroupChanged)


def _name(snapshot: OriginGroup | HostGroup) -> Group:
    return Group.ORIGIN if isinstance(snapshot, OriginGroup) else Group.HOST


@dataclass
class Batch:
    """What planning a batch of events knows and has planned so far."""

    seen: dict[tuple[UUID, Group], Seen] = field(default_factory=dict)
    """The last version of each of the batch's groups planned from (before the batch, then
    as its events are seen)."""
    changed: dict[tuple[UUID, Group], Seen] = field(default_factory=dict)
    movements: dict[UUID, tuple[OriginGroup | None, HostGroup | None]] = field(default_factory=dict)
    """Both groups of the movements the batch plans notices for, as the node holds them."""
    contacts: dict[UUID | None, Contacts | None] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)

    def see(self, snapshot: OriginGroup | HostGroup, step: str | None) -> tuple[Rule, ...]:
        """Note a version of a group; the rules its step calls for (none for a version seen
        already, a duplicate or an older one)."""
        key = (snapshot.movement_id, _name(snapshot))
        previous = self.seen.get(key)
        if previous is not None and previous.version >= snapshot.version:
            return ()
        self.seen[key] = self.changed[key] = Seen(snapshot.version, snapshot.status.value)
        return tuple(rules_for(step_of(step, previous.status if previous else None, snapshot)))


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
