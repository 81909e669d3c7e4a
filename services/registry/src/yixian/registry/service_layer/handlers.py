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
    DuesPeriod,
    OrganizationRef,
    OutflowReason,
    Period,
    TransferDecision,
    check_in_overdue,
    dues_overdue_month,
    recorded_status,
    report_due_on,
    transfer_reply_due_on,
    transfer_reply_overdue,
)
from yixian.registry.adapters.auth import Principal, Role
from yixian.registry.domain import (
    Conflict,
    Invalid,
    InvalidTransition,
    Member,
    MemberStatus,
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
    member_status,
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
        "transfer_reply_due_on": transfer_reply_due_on(movement.origin_group, movement.host_group)
        if movement.origin_group
        else None,
        "report_due_on": report_due_on(
            movement.origin_group, movement.host_group, uow.config.deadlines
        )
        if movement.origin_group
        else None,
        "dues_overdue_month": dues_overdue_month(
            movement.origin_group, movement.host_group, today, uow.config.deadlines
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
    body = movement_view(movement, uow.config.node, dates.local_date(uow.request.now), uow)
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
    contact_sms: str | None = None,
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
        "contact_sms": contact_sms,
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


ORGANIZATION_FIELDS = (
    "name", "secretary_name", "contact_email", "contact_phone", "contact_sms", "webhook_url",
)  # fmt: skip
"""What an organization's record shows and an operator may change: its name, and how its
secretary is reached (mail, phone, SMS, a signed webhook)."""


def organization_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An organization with its contacts, as listed and answered."""
    return {
        "org_id": str(row["org_id"]),
        "parent_id": str(row["parent_id"]) if row["parent_id"] else None,
        "kind": row["kind"],
        "jurisdiction": row["jurisdiction"],
        **{name: row[name] for name in ORGANIZATION_FIELDS},
    }


async def update_organization(
    uow: UnitOfWork, org_id: UUID, *, changes: Mapping[str, str | None]
) -> Result:
    """Change an organization's name or its secretary's contacts, field by field (JSON merge
    patch: null removes a contact; the name stays). Operators of a subtree that holds it;
    one outside is not found, as one that does not exist. Audited with each changed field's
    before and after; a request that finds the organization as it asks is not audited."""
    principal = uow.request.principal
    org = await uow.organizations.find(org_id)
    if org is None or not principal.covers(org.path):
        raise NotFound(f"organization {org_id} does not exist in your subtree", field="org_id")
    require_operator(principal, org)
    if not changes:
        raise Invalid(f"nothing to update: give one of {', '.join(ORGANIZATION_FIELDS)}")
    if "name" in changes and not changes["name"]:
        raise Invalid("cannot be removed: an organization keeps a name", field="name")
    before = await uow.organizations.record(org_id, lock=True)
    after = {**before, **{name: changes[name] for name in ORGANIZATION_FIELDS if name in changes}}
    changed = {
        name: {"before": before[name], "after": after[name]}
        for name in ORGANIZATION_FIELDS
        if before[name] != after[name]
    }
    if changed:
        await uow.organizations.update(org_id, {name: after[name] for name in changed})
        uow.audit_detail = {"changes": changed}
    else:
        uow.nothing_changed = True
    return Result(
        200, {**organization_json(after), "changed": sorted(changed), "target_id": str(org_id)}
    )


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
        "transferred_from": member.transferred_from,
        "transfer_movement_id": str(member.transfer_movement_id)
        if member.transfer_movement_id
        else None,
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
    member = await uow.members.get(member_id, lock=True)  # as a transfer completes: one order
    org = await uow.organizations.get(member.org_id)
    require_write(uow.request.principal, org)
    status = await status_of(uow, member_id)
    if status is MemberStatus.TRANSFERRED_OUT:
        raise InvalidTransition(
            "was transferred out: the membership moved to the host with a completed transfer;"
            " the record is kept for history and no outflow can be registered for it",
            field="member_id",
        )
    if status is MemberStatus.REMOVED:
        raise InvalidTransition(
            "was removed (除名): the record is kept for history and no outflow can be"
            " registered for it",
            field="member_id",
        )
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


async def status_of(uow: UnitOfWork, member_id: UUID) -> MemberStatus:
    """A member's status from the movements this node registered for it
    (``domain.member_status``)."""
    node = uow.config.node
    return member_status(
        recorded_status(m.origin_group)
        for m in await uow.movements.of_member(member_id)
        if m.origin_group is not None and m.side_of(node) is Side.ORIGIN
    )


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


def _host_common(uow: UnitOfWork) -> dict[str, Any]:
    """A host step's arguments: the host's deadlines too, whose transfer-reply setting its
    group carries to the origin."""
    return {**_common(uow), "deadlines": uow.config.deadlines}


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
        previous=movement_view(movement, uow.config.node, dates.local_date(uow.request.now), uow),
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
    """The member becomes transferred out here (``domain.member_status``): the member's
    row is locked first, as a registration locks it, so that no outflow is registered for
    the member while the transfer completes."""
    movement = await uow.movements.get(movement_id)
    if movement.origin == uow.config.node:
        await uow.members.get(await uow.movements.member_id(movement_id), lock=True)
    movement = await _act(
        uow, movement_id, Side.ORIGIN, lambda m: m.complete_transfer(**_common(uow))
    )
    return _result(200, movement, uow)


async def follow_forward(uow: UnitOfWork, movement_id: UUID, *, automatic: bool = False) -> Result:
    """The origin follows the host's forward (ADR 19): this movement closes as relocated and
    a linked one opens to the jurisdiction the host named. ``automatic``: the registry's
    follower (``forward_policy = follow``), which finds a movement another instance already
    followed unchanged and leaves no audit row for it."""
    if automatic:
        current = await uow.movements.get(movement_id, lock=True)
        if current.forwarded_to() is None or current.side_of(uow.config.node) is not Side.ORIGIN:
            uow.nothing_changed = True
            return _result(200, current, uow)
    successors: list[Movement] = []

    def step(m: Movement) -> None:
        successors.append(
            m.follow_forward(
                **_common(uow), deadlines=uow.config.deadlines, partners=uow.config.partners
            )
        )

    movement = await _act(uow, movement_id, Side.ORIGIN, step)
    successor = successors[0]
    origin_org_id, _ = await uow.movements.org_ids(movement_id)
    assert origin_org_id is not None  # an origin's own movement
    await uow.movements.add(successor, await uow.movements.member_id(movement_id), origin_org_id)
    await uow.publish(successor)
    uow.audit_detail |= {"host": successor.host, "next_movement_id": str(successor.movement_id)}
    return _result(
        201,
        successor,
        uow,
        previous=movement_view(movement, uow.config.node, dates.local_date(uow.request.now), uow),
    )


# -- the origin's decisions on lost contact, and the member's report ---------------------


async def _decide(
    uow: UnitOfWork,
    movement_id: UUID,
    step: Callable[[Movement], Any],
    side: Side = Side.ORIGIN,
) -> Movement:
    """A step that may find the record as it asks (a repeated request): then it changes
    nothing, sends nothing and writes no audit row."""
    changed: list[bool] = []

    def run(movement: Movement) -> None:
        step(movement)
        changed.append(bool(movement.events))

    movement = await _act(uow, movement_id, side, run)
    uow.nothing_changed = not changed[0]
    return movement


async def mark_lost_contact_at_origin(uow: UnitOfWork, movement_id: UUID, *, since: date) -> Result:
    movement = await _decide(
        uow, movement_id, lambda m: m.mark_lost_contact_at_origin(**_common(uow), since=since)
    )
    return _result(200, movement, uow)


async def restore_contact_at_origin(uow: UnitOfWork, movement_id: UUID) -> Result:
    movement = await _act(
        uow, movement_id, Side.ORIGIN, lambda m: m.restore_contact_at_origin(**_common(uow))
    )
    return _result(200, movement, uow)


async def suspend(uow: UnitOfWork, movement_id: UUID, *, reason: str, force: bool) -> Result:
    movement = await _decide(
        uow,
        movement_id,
        lambda m: m.suspend(
            **_common(uow), reason=reason, force=force, deadlines=uow.config.deadlines
        ),
    )
    uow.audit_detail |= {"reason": reason, "force": force}
    return _result(200, movement, uow)


async def reinstate(uow: UnitOfWork, movement_id: UUID, *, reason: str) -> Result:
    movement = await _decide(uow, movement_id, lambda m: m.reinstate(**_common(uow), reason=reason))
    uow.audit_detail |= {"reason": reason}
    return _result(200, movement, uow)


async def remove(uow: UnitOfWork, movement_id: UUID, *, reason: str, force: bool) -> Result:
    movement = await _decide(
        uow,
        movement_id,
        lambda m: m.remove(
            **_common(uow), reason=reason, force=force, deadlines=uow.config.deadlines
        ),
    )
    uow.audit_detail |= {"reason": reason, "force": force}
    return _result(200, movement, uow)


async def record_report(uow: UnitOfWork, movement_id: UUID, *, reported_on: date) -> Result:
    movement = await _decide(
        uow, movement_id, lambda m: m.record_report(**_common(uow), reported_on=reported_on)
    )
    return _result(200, movement, uow)


# -- the host side ------------------------------------------------------------------------


async def _authorized(uow: UnitOfWork, movement_id: UUID, side: Side, step: str) -> Movement:
    """The movement, locked, once the principal is found to write for the organization
    answerable for it and this node to own ``side``'s group (before any input is read)."""
    movement = await uow.movements.get(movement_id, lock=True)
    require_write(uow.request.principal, await answerable_org(uow, movement))
    movement.require_side(uow.config.node, side, step)
    return movement


async def _placeable(uow: UnitOfWork, org_id: UUID, *, field: str) -> Organization:
    """An organization of this node's own area the principal writes for, to place a visiting
    member with: one outside the principal's subtree is not found, as one that does not
    exist; a working committee serves another area than this node's."""
    org = await uow.organizations.find(org_id)
    if org is None or not uow.request.principal.covers(org.path):
        raise NotFound(f"organization {org_id} does not exist in your subtree", field=field)
    if org.jurisdiction != uow.config.node:
        raise Invalid(
            f"{org.name} serves {org.jurisdiction}, not this node's {uow.config.node}: a member"
            " who arrives here is placed with an organization of this node's own area",
            field=field,
        )
    return org


async def assign(uow: UnitOfWork, movement_id: UUID, *, org_id: UUID) -> Result:
    """分配: a host secretary places an arriving (or visiting) member with one of its
    organizations, whose secretaries then see and check in the member; the same step moves
    the member to another. Audited with the organization before and after; an assignment
    the movement already has changes nothing and is not audited."""
    movement = await _authorized(uow, movement_id, Side.HOST, "assigning")
    target = await _placeable(uow, org_id, field="org_id")
    require_write(uow.request.principal, target)
    before = _own_group(movement, Side.HOST)
    movement.assign(**_host_common(uow), org=org_ref(target))
    if not movement.events:
        uow.nothing_changed = True
        return _result(200, movement, uow)
    uow.audit_detail = {
        "side": Side.HOST.value,
        "state": movement.state.value,
        "changes": field_changes(before, _own_group(movement, Side.HOST), prefix="host_group"),
    }
    await _save(uow, movement, target)
    return _result(200, movement, uow)


async def confirm_check_in(
    uow: UnitOfWork,
    movement_id: UUID,
    *,
    host_org_id: UUID | None,
    branch_id: UUID | None,
    checked_in_at: datetime | None,
) -> Result:
    """``host_org_id``: by default the organization the member was assigned to."""
    movement = await _authorized(uow, movement_id, Side.HOST, "confirming check-in")
    if host_org_id is None:
        assigned = movement.host_group.host_org if movement.host_group else None
        if assigned is None:
            raise Invalid(
                "is required: the member is not assigned to an organization yet",
                field="host_org_id",
            )
        host_org_id = assigned.org_id
    host_org = await _placeable(uow, host_org_id, field="host_org_id")
    branch = await _placeable(uow, branch_id, field="branch_id") if branch_id else None
    if branch is not None and not branch.within(host_org.path):
        raise Invalid(
            f"branch {branch_id} is not inside organization {host_org_id}", field="branch_id"
        )
    require_write(uow.request.principal, branch or host_org)
    before = _own_group(movement, Side.HOST)
    movement.confirm_check_in(
        **_host_common(uow),
        host_org=org_ref(host_org),
        branch=org_ref(branch) if branch else None,
        checked_in_at=checked_in_at or uow.request.now,
    )
    uow.audit_detail = {
        "side": Side.HOST.value,
        "state": movement.state.value,
        "changes": field_changes(before, _own_group(movement, Side.HOST), prefix="host_group"),
    }
    await _save(uow, movement, branch or host_org)
    return _result(200, movement, uow)


async def reject(uow: UnitOfWork, movement_id: UUID, *, reason: str) -> Result:
    movement = await _act(
        uow, movement_id, Side.HOST, lambda m: m.reject(**_host_common(uow), reason=reason)
    )
    return _result(200, movement, uow)


async def forward(uow: UnitOfWork, movement_id: UUID, *, forwarded_to: str, reason: str) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.HOST,
        lambda m: m.forward(**_host_common(uow), forwarded_to=forwarded_to, reason=reason),
    )
    return _result(200, movement, uow)


async def mark_lost_contact(uow: UnitOfWork, movement_id: UUID, *, since: date) -> Result:
    movement = await _act(
        uow, movement_id, Side.HOST, lambda m: m.mark_lost_contact(**_host_common(uow), since=since)
    )
    return _result(200, movement, uow)


async def restore_contact(uow: UnitOfWork, movement_id: UUID) -> Result:
    movement = await _act(
        uow, movement_id, Side.HOST, lambda m: m.restore_contact(**_host_common(uow))
    )
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
                **_host_common(uow),
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


async def confirm_dues_paid(
    uow: UnitOfWork,
    movement_id: UUID,
    *,
    months: list[str] | None = None,
    period: DuesPeriod | None = None,
    amount_fen: int | None = None,
    receipt: str | None = None,
) -> Result:
    """Dues paid at the host: a payment (``period``, ``amount_fen``, an optional
    ``receipt``), or months confirmed paid without an amount (``months``, as before)."""
    if (months is None) == (period is None):
        raise Invalid("give either period (with amount_fen) or months", field="period")
    if period is not None:
        if amount_fen is None:
            raise Invalid("is required with a period", field="amount_fen")

        def step(m: Movement) -> None:
            m.record_dues_payment(
                **_host_common(uow),
                period=period,
                amount_fen=amount_fen,
                receipt=receipt,
            )
    else:
        if amount_fen is not None or receipt is not None:
            field = "amount_fen" if amount_fen is not None else "receipt"
            raise Invalid("goes with a period, not with months", field=field)
        assert months is not None

        def step(m: Movement) -> None:
            m.confirm_dues_paid(**_host_common(uow), months=months)

    movement = await _decide(uow, movement_id, step, Side.HOST)
    return _result(200, movement, uow)


async def record_report_received(
    uow: UnitOfWork, movement_id: UUID, *, reported_on: date
) -> Result:
    """The member gave the host the report due to the origin: the origin counts it."""
    movement = await _decide(
        uow,
        movement_id,
        lambda m: m.record_report_received(**_host_common(uow), reported_on=reported_on),
        Side.HOST,
    )
    return _result(200, movement, uow)


async def reply_transfer(
    uow: UnitOfWork, movement_id: UUID, *, decision: TransferDecision, reason: str | None
) -> Result:
    movement = await _act(
        uow,
        movement_id,
        Side.HOST,
        lambda m: m.reply_transfer(**_host_common(uow), decision=decision, reason=reason),
    )
    return _result(200, movement, uow)


async def enrol(uow: UnitOfWork, movement_id: UUID, *, org_id: UUID | None = None) -> Result:
    """After the origin completed the transfer, the host enrols the member as its own
    (ADR 19): a member of this node, made from the movement's data (the origin group's
    member card and contact; no national ID crosses nodes, ADR 14), in ``org_id`` (default:
    the organization that checked the member in), linked to the movement and its origin.
    The host group records the enrolment. Once per movement: a repeat answers the member
    enrolled first and changes nothing (the movement's lock orders concurrent requests, the
    unique index ``members_transferred_in_once`` backs it)."""
    movement = await uow.movements.get(movement_id, lock=True)
    require_write(uow.request.principal, await answerable_org(uow, movement))
    node = uow.config.node
    first = movement.may_enrol(node)  # the host's step, after the completed transfer
    enrolled = await uow.members.by_transfer(movement_id)
    if enrolled is not None:
        uow.nothing_changed = True
        home = await uow.organizations.find(enrolled.org_id)
        shown = home is not None and uow.request.principal.covers(home.path)
        return _result(  # the member itself only to a caller whose subtree holds it
            200,
            movement,
            uow,
            member=member_json(enrolled) if shown else {"member_id": str(enrolled.member_id)},
            duplicate=True,
        )
    if not first:
        raise Conflict(
            "the host group records an enrolment this node has no member for",
            field="movement_id",
        )
    host = movement.host_group
    checked_in = (host.branch or host.host_org) if host is not None else None
    target = org_id or (checked_in.org_id if checked_in else None)
    org = (
        await _placeable(uow, target, field="org_id")
        if target
        else await answerable_org(uow, movement)
    )
    require_write(uow.request.principal, org)
    member_id = uuid4()
    before = _own_group(movement, Side.HOST)
    movement.enrol(**_host_common(uow), member_id=member_id, org=org_ref(org))
    origin = movement.origin_group
    assert origin is not None  # a completed transfer has its origin group
    member = Member(
        member_id=member_id,
        org_id=org.org_id,
        name=origin.member.name,
        joined_on=origin.member.joined_on,
        phone=origin.contact.phone,
        email=origin.contact.email,
        national_id_hash=None,
        national_id_masked=None,
        address=origin.contact.address,
        transferred_from=movement.origin,
        transfer_movement_id=movement_id,
    )
    await uow.members.add(member)
    await _save(uow, movement, None)
    uow.audit_detail = {
        "side": Side.HOST.value,
        "member_id": str(member_id),
        "org_id": str(org.org_id),
        "origin": movement.origin,
        "changes": field_changes(before, _own_group(movement, Side.HOST), prefix="host_group"),
    }
    return _result(201, movement, uow, member=member_json(member), duplicate=False)


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
