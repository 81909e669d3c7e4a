"""The registry's use cases: one function per command or query, plain and explicit.

Each command loads what it needs under a lock, checks the principal's role and subtree,
asks the domain to take the step, saves this node's group and queues its events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from yixian.contracts import (
    ActivityKind,
    ActivityScheduled,
    Certificate,
    Contact,
    Destination,
    OrganizationRef,
    OutflowReason,
    Period,
    TransferDecision,
    check_in_overdue,
    transfer_reply_overdue,
)
from yixian.registry.adapters.auth import Principal, Role
from yixian.registry.domain import (
    Conflict,
    Invalid,
    Member,
    Movement,
    NotFound,
    Organization,
    OrgKind,
    Side,
    WouldLockOut,
    certificate_number,
    classify,
    contact_changes,
    dates,
    field_changes,
    merge_contact,
)
from yixian.registry.domain.member import child_path, mask_national_id, national_id_hash

from .unit_of_work import Denied, Result, UnitOfWork

WRITERS = frozenset({Role.OPERATOR, Role.SECRETARY})


# -- authorization ----------------------------------------------------------------------


def require_read(principal: Principal, org: Organization) -> None:
    if not principal.covers(org.path):
        raise Denied("this is outside your subtree: the key may not see it")


def require_write(principal: Principal, org: Organization) -> None:
    if principal.role not in WRITERS:
        raise Denied(f"{principal.actor} is an {principal.role.value} and may only read")
    if not principal.covers(org.path):
        raise Denied("this is outside your subtree: the key may not act for it")


def require_operator(principal: Principal, org: Organization) -> None:
    if principal.role is not Role.OPERATOR:
        raise Denied(f"{principal.actor} is a {principal.role.value}; this needs an operator")
    require_write(principal, org)


def org_ref(org: Organization) -> OrganizationRef:
    return OrganizationRef(org_id=org.org_id, name=org.name)


async def responsible_org(uow: UnitOfWork, movement: Movement, org_id: UUID | None) -> Organization:
    """The organization of this node answerable for a movement."""
    if movement.side_of(uow.config.node) is Side.HOST:
        hint = movement.origin_group.destination.host_org_hint if movement.origin_group else None
        for candidate in (org_id, hint.org_id if hint else None):
            if candidate is not None and (found := await uow.organizations.find(candidate)):
                return found
        root = await uow.organizations.root()
        if root is None:
            raise NotFound("this node has no organizations yet")
        return root
    assert org_id is not None
    return await uow.organizations.get(org_id)


async def answerable_org(uow: UnitOfWork, movement: Movement) -> Organization:
    """The organization of this node answerable for a movement it holds."""
    origin_org_id, host_org_id = await uow.movements.org_ids(movement.movement_id)
    mine = movement.side_of(uow.config.node)
    return await responsible_org(
        uow, movement, origin_org_id if mine is Side.ORIGIN else host_org_id
    )


def movement_view(movement: Movement, node: str, today: date, uow: UnitOfWork) -> dict[str, Any]:
    side = movement.side_of(node)
    entry = classify(side, movement.origin_group, movement.host_group, today, uow.config.deadlines)
    return {
        "movement_id": str(movement.movement_id),
        "origin": movement.origin,
        "host": movement.host,
        "side": side.value,
        "state": movement.state.value,
        "check_in_overdue": check_in_overdue(movement.origin_group, movement.host_group, today),
        "transfer_reply_overdue": transfer_reply_overdue(
            movement.origin_group, movement.host_group, today
        ),
        "queue": (
            {"queue": entry.queue.value, "reason": entry.reason, "due_on": entry.due_on}
            if entry
            else None
        ),
        "origin_group": movement.origin_group.model_dump(mode="json")
        if movement.origin_group
        else None,
        "host_group": movement.host_group.model_dump(mode="json") if movement.host_group else None,
    }


def _result(status: int, movement: Movement, uow: UnitOfWork, **extra: Any) -> Result:
    body = movement_view(movement, uow.config.node, uow.request.now.date(), uow)
    return Result(status, {**body, **extra, "target_id": str(movement.movement_id)})


# -- administration ---------------------------------------------------------------------


async def create_organization(
    uow: UnitOfWork,
    *,
    name: str,
    kind: OrgKind,
    parent_id: UUID | None,
    jurisdiction: str | None,
    secretary_name: str | None = None,
    contact_email: str | None = None,
    contact_phone: str | None = None,
    webhook_url: str | None = None,
) -> Result:
    principal = uow.request.principal
    parent = await uow.organizations.get(parent_id) if parent_id else None
    if parent is None:
        if await uow.organizations.root() is not None:
            raise Invalid(
                "is required: this node already has its root organization", field="parent_id"
            )
        raise Denied("only the node's set-up command creates the root organization")
    require_operator(principal, parent)
    org_id = uuid4()
    org = Organization(
        org_id=org_id,
        name=name,
        kind=kind,
        parent_id=parent.org_id,
        path=child_path(parent, org_id),
        jurisdiction=jurisdiction or parent.jurisdiction,
    )
    if kind is not OrgKind.WORKING_COMMITTEE and org.jurisdiction != parent.jurisdiction:
        raise Invalid(
            "only a working committee operates in another jurisdiction than its parent",
            field="jurisdiction",
        )
    contacts = {
        "secretary_name": secretary_name,
        "contact_email": contact_email,
        "contact_phone": contact_phone,
        "webhook_url": webhook_url,
    }
    await uow.organizations.add(org, contacts)
    uow.audit_detail = {
        "name": name,
        "kind": kind.value,
        "parent_id": str(parent.org_id),
        "changes": field_changes(None, {**_org_json(org), **contacts}, prefix="organization"),
    }
    return Result(201, {**_org_json(org), "target_id": str(org_id)})


def _org_json(org: Organization) -> dict[str, Any]:
    return {
        "org_id": str(org.org_id),
        "name": org.name,
        "kind": org.kind.value,
        "parent_id": str(org.parent_id) if org.parent_id else None,
        "jurisdiction": org.jurisdiction,
    }


async def issue_api_key(uow: UnitOfWork, *, name: str, role: Role, org_id: UUID) -> Result:
    org = await uow.organizations.get(org_id)
    require_operator(uow.request.principal, org)
    key_id, key = await uow.api_keys.create(name=name, role=role, org_id=org.org_id)
    uow.audit_detail = {
        "name": name,
        "role": role.value,
        "org_id": str(org_id),
        "changes": field_changes(
            None, {"name": name, "role": role.value, "org_id": str(org_id)}, prefix="api_key"
        ),
    }
    return Result(
        201,
        {
            "key_id": str(key_id),
            "api_key": key,
            "name": name,
            "role": role.value,
            "org_id": str(org_id),
            "target_id": str(key_id),
        },
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


async def revoke_api_key(uow: UnitOfWork, key_id: UUID) -> Result:
    """Revoke a key of the operator's subtree (again: the first revocation stands). A key
    outside the subtree is not found, as if it did not exist; the root keeps an operator."""
    principal = uow.request.principal
    require_operator(principal, await uow.organizations.get(principal.org_id))
    key = await uow.api_keys.find(key_id)
    if key is None or not principal.covers(key["org_path"]):
        raise NotFound(f"API key {key_id} does not exist in your subtree", field="key_id")
    if key["node_wide"] and key["role"] == Role.OPERATOR.value:
        active = await uow.api_keys.active_root_operator_keys()  # locked until commit
        if active == [key_id]:
            raise WouldLockOut(
                "is the last active operator key of the root organization; issue another first",
                field="key_id",
            )
    revoked_at = await uow.api_keys.revoke(key_id, uow.request.now)
    uow.audit_detail = {
        "name": key["name"],
        "role": key["role"],
        "org_id": str(key["org_id"]),
        "already_revoked": key["revoked_at"] is not None,
        "changes": field_changes(
            {"revoked_at": _iso(key["revoked_at"])},
            {"revoked_at": _iso(revoked_at)},
            prefix="api_key",
        ),
    }
    return Result(
        200,
        {
            "key_id": str(key_id),
            "name": key["name"],
            "role": key["role"],
            "org_id": str(key["org_id"]),
            "revoked_at": revoked_at,
        },
    )


# -- members ----------------------------------------------------------------------------


def new_member(
    uow: UnitOfWork,
    *,
    org_id: UUID,
    name: str,
    joined_on: date,
    phone: str | None,
    email: str | None,
    national_id: str | None,
    member_id: UUID | None = None,
) -> Member:
    dates.require_joined(joined_on, uow.request.now)
    return Member(
        member_id=member_id or uuid4(),
        org_id=org_id,
        name=name,
        joined_on=joined_on,
        phone=phone,
        email=email,
        national_id_hash=national_id_hash(uow.config.id_hash_key, national_id)
        if national_id
        else None,
        national_id_masked=mask_national_id(national_id) if national_id else None,
    )


async def add_member(uow: UnitOfWork, **fields: Any) -> Result:
    org = await uow.organizations.get(fields["org_id"])
    require_write(uow.request.principal, org)
    member = new_member(uow, **fields)
    await uow.members.add(member)
    shown = member_json(member)
    uow.audit_detail = {
        "org_id": str(org.org_id),
        "name": member.name,
        "changes": field_changes(
            None, {k: v for k, v in shown.items() if k != "member_id"}, prefix="member"
        ),
    }
    return Result(201, {**member_json(member), "target_id": str(member.member_id)})


def member_json(member: Member) -> dict[str, Any]:
    return {
        "member_id": str(member.member_id),
        "org_id": str(member.org_id),
        "name": member.name,
        "joined_on": member.joined_on.isoformat(),
        "phone": member.phone,
        "email": member.email,
        "address": member.address,
        "national_id_masked": member.national_id_masked,
    }


async def member_in_scope(
    uow: UnitOfWork, member_id: UUID, *, lock: bool = False
) -> tuple[Member, Organization]:
    """The member and its organization, if the principal's subtree holds them; a member
    outside it is not found, as one that does not exist (its existence is not told)."""
    try:
        member = await uow.members.get(member_id, lock=lock)
    except NotFound:
        member = None
    org = await uow.organizations.find(member.org_id) if member else None
    if member is None or org is None or not uow.request.principal.covers(org.path):
        raise NotFound(f"member {member_id} does not exist in your subtree", field="member_id")
    return member, org


async def update_member_contact(
    uow: UnitOfWork, member_id: UUID, *, contact: Mapping[str, str | None]
) -> Result:
    """Change only the contact fields sent (JSON merge patch: null removes a field); one
    way to reach the member remains. Audited with each changed field's before and after;
    a request that finds the contact as it asks changes nothing and is not audited."""
    member, org = await member_in_scope(uow, member_id, lock=True)
    require_write(uow.request.principal, org)
    if not contact:
        raise Invalid("nothing to update: give phone, email or address", field="contact")
    before = member.contact()
    after = merge_contact(before, contact)
    changes = contact_changes(before, after)
    if changes:
        await uow.members.update_contact(member_id, after)
        member = replace(
            member, phone=after["phone"], email=after["email"], address=after["address"]
        )
        uow.audit_detail = {"org_id": str(org.org_id), "changes": changes}
    else:
        uow.nothing_changed = True
    return Result(
        200, {**member_json(member), "changed": sorted(changes), "target_id": str(member_id)}
    )


# -- the origin side ----------------------------------------------------------------------


async def register_outflow(
    uow: UnitOfWork,
    *,
    member_id: UUID,
    destination: Destination,
    period: Period,
    contact: Contact,
    reason: OutflowReason,
) -> Result:
    """外出登记: a new movement, with the certificate this node issues for it
    (``domain.certificate``: the year's next number, given back if anything fails)."""
    member = await uow.members.get(member_id)
    org = await uow.organizations.get(member.org_id)
    require_write(uow.request.principal, org)
    issued_on = dates.local_date(uow.request.now)
    sequence = await uow.certificates.next_sequence(issued_on.year)
    certificate = Certificate(
        number=certificate_number(uow.config.node, issued_on.year, sequence),
        issued_on=issued_on,
    )
    movement = Movement.register_outflow(
        node=uow.config.node,
        origin_org=org_ref(org),
        member=member.card(),
        destination=destination,
        period=period,
        contact=contact,
        certificate=certificate,
        reason=reason,
        deadlines=uow.config.deadlines,
        partners=uow.config.partners,
        now=uow.request.now,
        actor=uow.request.principal.actor,
    )
    await uow.movements.add(movement, member.member_id, org.org_id)
    await uow.certificates.add(
        number=certificate.number,
        year=issued_on.year,
        sequence=sequence,
        movement_id=movement.movement_id,
        member_id=member.member_id,
        issued_on=issued_on,
        issued_by=uow.request.principal.actor,
    )
    group = movement.origin_group
    assert group is not None
    uow.audit_detail = {
        "member_id": str(member_id),
        "host": destination.jurisdiction,
        "certificate": certificate.number,
        "changes": field_changes(None, group.model_dump(mode="json"), prefix="origin_group"),
    }
    await uow.publish(movement)
    return _result(201, movement, uow)


async def _act(
    uow: UnitOfWork,
    movement_id: UUID,
    side: Side,
    step: Callable[[Movement], Any],
    *,
    host_org: Organization | None = None,
    save: bool = True,
) -> Movement:
    """Load, authorize and run one step on this node's group, then (unless the caller will)
    save and publish."""
    movement = await uow.movements.get(movement_id, lock=True)
    require_write(uow.request.principal, await answerable_org(uow, movement))
    if host_org is not None:
        require_write(uow.request.principal, host_org)
    before = _own_group(movement, side)
    step(movement)
    uow.audit_detail = {
        "side": side.value,
        "state": movement.state.value,
        "changes": field_changes(before, _own_group(movement, side), prefix=f"{side.value}_group"),
    }
    if save:
        await _save(uow, movement, host_org)
    return movement


def _own_group(movement: Movement, side: Side) -> dict[str, Any] | None:
    """The group a step on ``side`` changes, as the audit log keeps it (JSON)."""
    group = movement.origin_group if side is Side.ORIGIN else movement.host_group
    return group.model_dump(mode="json") if group is not None else None


async def _save(uow: UnitOfWork, movement: Movement, host_org: Organization | None) -> None:
    if not movement.events:
        return  # the step found the group as it asked: nothing new to keep or send
    await uow.movements.save_own_group(movement, host_org.org_id if host_org else None)
    await uow.publish(movement)


def _common(uow: UnitOfWork) -> dict[str, Any]:
    return {"node": uow.config.node, "now": uow.request.now, "actor": uow.request.principal.actor}


async def update_details(
    uow: UnitOfWork,
    movement_id: UUID,
    *,
    place: str | None,
    host_org_hint: OrganizationRef | None,
    period: Period | None,
    contact: Mapping[str, str | None] | None,
) -> Result:
    """``contact``: only the fields sent change (JSON merge patch: None removes one)."""
    movement = await _act(
        uow,
        movement_id,
        Side.ORIGIN,
        lambda m: m.update_details(
            **_common(uow),
            place=place,
            host_org_hint=host_org_hint,
            period=period,
            contact_changes=contact,
            deadlines=uow.config.deadlines,
        ),
    )
    return _result(200, movement, uow)


async def relocate(
    uow: UnitOfWork,
    movement_id: UUID,
    *,
    destination: Destination,
    departed_on: date,
    contact: Contact | None,
) -> Result:
    successors: list[Movement] = []

    def step(m: Movement) -> None:
        successors.append(
            m.relocate(
                **_common(uow),
                destination=destination,
                departed_on=departed_on,
                deadlines=uow.config.deadlines,
                partners=uow.config.partners,
                contact=contact,
            )
        )

    movement = await _act(uow, movement_id, Side.ORIGIN, step)
    successor = successors[0]
    origin_org_id, _ = await uow.movements.org_ids(movement_id)
    assert origin_org_id is not None  # an origin's own movement
    await uow.movements.add(successor, await uow.movements.member_id(movement_id), origin_org_id)
    await uow.publish(successor)
    return _result(
        201,
        successor,
        uow,
        previous=movement_view(movement, uow.config.node, uow.request.now.date(), uow),
    )


async def cancel(uow: UnitOfWork, movement_id: UUID) -> Result:
    movement = await _act(uow, movement_id, Side.ORIGIN, lambda m: m.cancel(**_common(uow)))
    return _result(200, movement, uow)


async def return_home(uow: UnitOfWork, movement_id: UUID, *, returned_on: date) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.ORIGIN,
        lambda m: m.return_home(**_common(uow), returned_on=returned_on),
    )
    return _result(200, movement, uow)


async def request_transfer(uow: UnitOfWork, movement_id: UUID, *, note: str | None) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.ORIGIN,
        lambda m: m.request_transfer(**_common(uow), note=note, deadlines=uow.config.deadlines),
    )
    return _result(200, movement, uow)


async def withdraw_transfer(uow: UnitOfWork, movement_id: UUID) -> Result:
    movement = await _act(
        uow, movement_id, Side.ORIGIN, lambda m: m.withdraw_transfer(**_common(uow))
    )
    return _result(200, movement, uow)


async def complete_transfer(uow: UnitOfWork, movement_id: UUID) -> Result:
    movement = await _act(
        uow, movement_id, Side.ORIGIN, lambda m: m.complete_transfer(**_common(uow))
    )
    return _result(200, movement, uow)


# -- the host side ------------------------------------------------------------------------


async def confirm_check_in(
    uow: UnitOfWork,
    movement_id: UUID,
    *,
    host_org_id: UUID,
    branch_id: UUID | None,
    checked_in_at: datetime | None,
) -> Result:
    host_org = await uow.organizations.get(host_org_id)
    branch = await uow.organizations.get(branch_id) if branch_id else None
    if branch is not None and not branch.within(host_org.path):
        raise Invalid(
            f"branch {branch_id} is not inside organization {host_org_id}", field="branch_id"
        )
    at = checked_in_at or uow.request.now
    movement = await _act(
        uow,
        movement_id,
        Side.HOST,
        lambda m: m.confirm_check_in(
            **_common(uow),
            host_org=org_ref(host_org),
            branch=org_ref(branch) if branch else None,
            checked_in_at=at,
        ),
        host_org=branch or host_org,
    )
    return _result(200, movement, uow)


async def reject(uow: UnitOfWork, movement_id: UUID, *, reason: str) -> Result:
    movement = await _act(
        uow, movement_id, Side.HOST, lambda m: m.reject(**_common(uow), reason=reason)
    )
    return _result(200, movement, uow)


async def forward(uow: UnitOfWork, movement_id: UUID, *, forwarded_to: str, reason: str) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.HOST,
        lambda m: m.forward(**_common(uow), forwarded_to=forwarded_to, reason=reason),
    )
    return _result(200, movement, uow)


async def mark_lost_contact(uow: UnitOfWork, movement_id: UUID, *, since: date) -> Result:
    movement = await _act(
        uow, movement_id, Side.HOST, lambda m: m.mark_lost_contact(**_common(uow), since=since)
    )
    return _result(200, movement, uow)


async def restore_contact(uow: UnitOfWork, movement_id: UUID) -> Result:
    movement = await _act(uow, movement_id, Side.HOST, lambda m: m.restore_contact(**_common(uow)))
    return _result(200, movement, uow)


async def record_participation(
    uow: UnitOfWork,
    movement_id: UUID,
    *,
    participation_id: UUID,
    activity_id: UUID | None,
    kind: ActivityKind,
    title: str,
    attended_at: datetime,
) -> Result:
    """An attendance counts once: its id is the key, and the step is taken only when the
    row is new (under the movement's lock, after the caller is authorized)."""
    recorded = []

    def step(m: Movement) -> None:
        recorded.append(
            m.record_participation(
                **_common(uow),
                participation_id=participation_id,
                activity_id=activity_id,
                kind=kind,
                title=title,
                attended_at=attended_at,
            )
        )

    movement = await _act(uow, movement_id, Side.HOST, step, save=False)
    if not await uow.movements.add_participation(recorded[0]):
        first = await uow.movements.participation(participation_id)
        assert first is not None  # the insert just met it
        if first["movement_id"] != movement_id:
            raise Conflict("is already used for another movement", field="participation_id")
        if (first["kind"], first["title"], first["attended_at"], first["activity_id"]) != (
            kind.value,
            title,
            attended_at,
            activity_id,
        ):
            raise Conflict(
                "is already used for another attendance of this member", field="participation_id"
            )
        unchanged = await uow.movements.get(movement_id)
        uow.audit_detail |= {"duplicate": True, "changes": {}}
        return _result(200, unchanged, uow, participation_id=str(participation_id), duplicate=True)
    await _save(uow, movement, None)
    return _result(201, movement, uow, participation_id=str(participation_id), duplicate=False)


async def confirm_dues_paid(uow: UnitOfWork, movement_id: UUID, *, months: list[str]) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.HOST,
        lambda m: m.confirm_dues_paid(**_common(uow), months=months),
    )
    return _result(200, movement, uow)


async def reply_transfer(
    uow: UnitOfWork, movement_id: UUID, *, decision: TransferDecision, reason: str | None
) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.HOST,
        lambda m: m.reply_transfer(**_common(uow), decision=decision, reason=reason),
    )
    return _result(200, movement, uow)


# -- activities ---------------------------------------------------------------------------


async def schedule_activity(
    uow: UnitOfWork,
    *,
    org_id: UUID,
    kind: ActivityKind,
    title: str,
    starts_at: datetime,
    ends_at: datetime | None,
    location: str,
) -> Result:
    org = await uow.organizations.get(org_id)
    require_write(uow.request.principal, org)
    dates.require_activity_times(starts_at, ends_at, uow.request.now)
    activity = ActivityScheduled(
        activity_id=uuid4(),
        jurisdiction=uow.config.node,
        organizer=org_ref(org),
        kind=kind,
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        location=location,
        scheduled_by=uow.request.principal.actor,
    )
    await uow.activities.add(activity, org.org_id)
    await uow.publish_activity(activity)
    uow.audit_detail = {"org_id": str(org_id), "kind": kind.value}
    body = activity.model_dump(mode="json")
    return Result(201, {**body, "target_id": str(activity.activity_id)})
