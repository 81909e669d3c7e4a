"""What secretaries, operators and auditors read: always inside the principal's subtree."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

from yixian.contracts import OPEN_ORIGIN_STATUSES
from yixian.registry.domain import (
    GroupBy,
    Invalid,
    MemberStatus,
    Movement,
    Queue,
    Side,
    classify,
    dates,
    dues_paid_where,
    national_id_hash,
    phone_digits,
)

from .handlers import (
    answerable_org,
    member_in_scope,
    member_json,
    movement_view,
    organization_json,
    require_operator,
    require_read,
    status_of,
)
from .repositories import AuditFilter, MemberSearch, QueueQuery, ReportGroup, ReportQuery
from .unit_of_work import Denied, UnitOfWork

_OPEN = sorted(status.value for status in OPEN_ORIGIN_STATUSES)
"""The open statuses, as the repositories take them."""


async def _scope(uow: UnitOfWork, org_id: UUID | None) -> str:
    principal = uow.request.principal
    if org_id is None:
        return principal.org_path
    org = await uow.organizations.get(org_id)
    require_read(principal, org)
    return org.path


async def get_movement(uow: UnitOfWork, movement_id: UUID) -> dict[str, Any]:
    movement = await uow.movements.get(movement_id)
    require_read(uow.request.principal, await answerable_org(uow, movement))
    view = movement_view(movement, uow.config.node, dates.local_date(uow.request.now), uow)
    view["history"] = [
        {
            "group": r["group_name"],
            "version": r["version"],
            "status": r["snapshot"]["status"],
            "changed_at": r["snapshot"]["changed_at"],
            "changed_by": r["snapshot"]["changed_by"],
            "recorded_at": r["recorded_at"].isoformat(),
        }
        for r in await uow.movements.history(movement_id)
    ]
    view["participations"] = [
        {
            "participation_id": str(r["participation_id"]),
            "activity_id": str(r["activity_id"]) if r["activity_id"] else None,
            "kind": r["kind"],
            "title": r["title"],
            "attended_at": r["attended_at"].isoformat(),
        }
        for r in await uow.movements.participations(movement_id)
    ]
    return view


def _cursor(name: str, member_id: UUID) -> str:
    """Where the next page of a search starts: after this member (opaque to the caller)."""
    raw = json.dumps([name, str(member_id)], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[str, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, member_id = json.loads(raw.decode())
        if not isinstance(name, str) or "\x00" in name:
            raise ValueError(name)
        name.encode()  # a lone surrogate is no name
        return name, UUID(member_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, AttributeError):
        raise Invalid("is not a cursor this API gave out", field="cursor") from None


async def search_members(
    uow: UnitOfWork,
    *,
    org_id: UUID | None = None,
    name: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    status: MemberStatus | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """This node's members in the principal's subtree (or an organization's in it) that
    match every key given, by name then id, a page at a time: each a summary, never
    anything of the national ID. A national ID is matched through this node's keyed hash."""
    scope = await _scope(uow, org_id)
    criteria = MemberSearch(
        name=name,
        phone_digits=phone_digits(phone) if phone is not None else None,
        national_id_hash=national_id_hash(uow.config.id_hash_key, national_id)
        if national_id is not None
        else None,
        status=status,
    )
    after = _after(cursor) if cursor is not None else None
    rows = await uow.members.search(scope, criteria, after, limit + 1)
    page = rows[:limit]
    items = [
        {
            "member_id": str(r["member_id"]),
            "org_id": str(r["org_id"]),
            "name": r["name"],
            "joined_on": r["joined_on"].isoformat(),
            "phone": r["phone"],
            "email": r["email"],
            "status": r["status"],
        }
        for r in page
    ]
    last = page[-1] if len(rows) > limit else None
    return {
        "items": items,
        "next_cursor": _cursor(last["name"], last["member_id"]) if last else None,
    }


async def get_member(uow: UnitOfWork, member_id: UUID) -> dict[str, Any]:
    """A member of the principal's subtree (else not found, as one that does not exist),
    every movement of the member this node holds and may show, and what was changed."""
    member, _ = await member_in_scope(uow, member_id)
    node, today = uow.config.node, dates.local_date(uow.request.now)
    shown = await _movements_shown(uow, member_id)
    movements = [movement_view(movement, node, today, uow) for movement in shown]
    changes = [
        {
            "at": r["at"].isoformat(),
            "actor": r["actor"],
            "key_name": r["key_name"],
            "action": r["action"],
            "detail": r["detail"],
            "trace_id": r["trace_id"],
        }
        for r in await uow.audit.changes(str(member_id))
    ]
    status = await status_of(uow, member_id)
    return {
        **member_json(member),
        "status": status.value,
        "movements": movements,
        "dues": dues_paid_where(shown),
        "changes": changes,
    }


async def _movements_shown(uow: UnitOfWork, member_id: UUID) -> list[Movement]:
    """The member's movements this node holds that the principal may see."""
    return [
        movement
        for movement in await uow.movements.of_member(member_id)
        if uow.request.principal.covers((await answerable_org(uow, movement)).path)
    ]


async def member_dues(uow: UnitOfWork, member_id: UUID) -> dict[str, Any]:
    """Which months of a member of the principal's subtree are paid where: each month with
    the hosts that recorded it, and every payment (amount, receipt)."""
    await member_in_scope(uow, member_id)
    return {"member_id": str(member_id), **dues_paid_where(await _movements_shown(uow, member_id))}


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a list: at most ``limit`` items after the one named ``after`` (None: from
    the start; no limit: the whole list)."""

    after: UUID | None = None
    limit: int | None = None


async def _movements(
    uow: UnitOfWork, side: Side, scope: str, *, name: str | None, page: Page
) -> list[dict[str, Any]]:
    node = uow.config.node
    movements = await uow.movements.in_scope(
        scope, side, _OPEN, name=name, after=page.after, limit=page.limit
    )
    today = dates.local_date(uow.request.now)
    return [movement_view(movement, node, today, uow) for movement in movements]


async def members_away(
    uow: UnitOfWork, org_id: UUID | None, *, name: str | None = None, page: Page = Page()
) -> list[dict[str, Any]]:
    """This node's members currently away (this node is their origin), oldest first."""
    return await _movements(uow, Side.ORIGIN, await _scope(uow, org_id), name=name, page=page)


async def members_visiting(
    uow: UnitOfWork, org_id: UUID | None, *, name: str | None = None, page: Page = Page()
) -> list[dict[str, Any]]:
    """Members of other jurisdictions currently hosted here (or expected), oldest first."""
    return await _movements(uow, Side.HOST, await _scope(uow, org_id), name=name, page=page)


async def present_in_area(
    uow: UnitOfWork, org_id: UUID, page: Page = Page()
) -> list[dict[str, Any]]:
    """Everyone present in an organization's area, local or visiting: the view
    ``people_present`` (migration 0006) holds the rule, which notify's invitations share."""
    scope = await _scope(uow, org_id)
    rows = await uow.members.present_in(scope, after=page.after, limit=page.limit)
    people: list[dict[str, Any]] = []
    for r in rows:
        person = {
            "member_id": str(r["member_id"]),
            "name": r["name"],
            "org_id": str(r["org_id"]),
            "presence": r["presence"],
        }
        if r["presence"] == "visiting":
            person |= {"movement_id": str(r["movement_id"]), "origin": r["origin"]}
        people.append(person | {"phone": r["phone"], "email": r["email"]})
    return people


def _partner(uow: UnitOfWork, partner: str | None) -> str | None:
    """A partner filter names a node this one is linked to."""
    if partner is not None and partner not in uow.config.partners:
        linked = ", ".join(sorted(uow.config.partners)) or "none yet"
        raise Invalid(
            f"{partner} is not a partner of this node (partners: {linked})", field="partner"
        )
    return partner


def _partner_of(movement: Movement, side: Side) -> str:
    return movement.host if side is Side.ORIGIN else movement.origin


async def _names(uow: UnitOfWork, org_ids: set[UUID]) -> dict[UUID, str]:
    names = {}
    for org_id in org_ids:
        org = await uow.organizations.find(org_id)
        names[org_id] = org.name if org else str(org_id)
    return names


async def work_queues(
    uow: UnitOfWork,
    org_id: UUID | None,
    *,
    queue: Queue | None = None,
    partner: str | None = None,
    after: UUID | None = None,
    limit: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The work queues of the caller's organization (or of ``org_id`` in its subtree): the
    movements this node's organizations there answer for, so a branch secretary sees the
    branch's and an ancestor its whole subtree's. Only ``queue`` (one of them) and the
    movements shared with ``partner``, when given; each queue oldest first, at most
    ``limit`` of each, after the movement ``after`` (of the one ``queue``) when given. The
    database places the movements in the queues (the domain's rules, in SQL); the entries
    of a page are classified here again for their reasons and due dates."""
    if after is not None and queue is None:
        raise Invalid("a page starts after a movement of one queue: give `queue`", field="after")
    which = QueueQuery(
        await _scope(uow, org_id),
        dates.local_date(uow.request.now),
        uow.config.deadlines,
        queue,
        _partner(uow, partner),
    )
    queues: dict[str, list[dict[str, Any]]] = {
        q.value: [] for q in Queue if queue is None or q is queue
    }
    if limit is None and after is None:  # the whole of it, in one statement
        found = await uow.movements.queued(which)
    else:
        found = [
            scoped
            for name in queues
            for scoped in await uow.movements.queued(
                replace(which, queue=Queue(name)), after=after, limit=limit
            )
        ]
    names = await _names(uow, {s.org_id for s in found})
    for scoped in found:
        movement = scoped.movement
        side = movement.side_of(uow.config.node)
        entry = classify(
            side, movement.origin_group, movement.host_group, which.today, which.deadlines
        )
        if entry is None or entry.queue.value not in queues:
            continue
        member = movement.origin_group.member if movement.origin_group else None
        host = movement.host_group
        assigned = host.host_org if side is Side.HOST and host else None
        queues[entry.queue.value].append(
            {
                "assigned_to": assigned.model_dump(mode="json") if assigned else None,
                "movement_id": str(movement.movement_id),
                "side": side.value,
                "member": member.name if member else None,
                "partner": _partner_of(movement, side),
                "org_id": str(scoped.org_id),
                "org_name": names[scoped.org_id],
                "state": movement.state.value,
                "reason": entry.reason,
                "due_on": entry.due_on.isoformat() if entry.due_on else None,
            }
        )
    return queues


async def queue_counts(
    uow: UnitOfWork, org_id: UUID | None, *, partner: str | None = None
) -> dict[str, int]:
    """How many movements are in each of the work queues ``work_queues`` reads."""
    which = QueueQuery(
        await _scope(uow, org_id),
        dates.local_date(uow.request.now),
        uow.config.deadlines,
        partner=_partner(uow, partner),
    )
    return {q.value: n for q, n in (await uow.movements.queue_counts(which)).items()}


async def statistics(
    uow: UnitOfWork,
    org_id: UUID | None,
    *,
    since: date | None = None,
    until: date | None = None,
    group_by: GroupBy | None = None,
    partner: str | None = None,
    side: Side | None = None,
    breakdowns: Sequence[GroupBy] = (),
) -> dict[str, Any]:
    """The movements of the scope that count in the period (``domain.AWAY_DURING``: the
    member departed by its last day and the movement had not closed before its first),
    counted both as movements and as distinct members, in total and by ``group_by``; by
    each of ``breakdowns`` as movements and open movements. The database counts them."""
    scope = await _scope(uow, org_id)
    dates.require_report_period(since, until, uow.request.now, fields=("from", "to"))
    which = ReportQuery(
        scope, since, until, side, _partner(uow, partner), group_by, tuple(breakdowns)
    )
    report = await uow.movements.report(which)
    by_branch = [
        *(report.groups if group_by is GroupBy.BRANCH else []),
        *report.breakdowns.get(GroupBy.BRANCH, []),
    ]
    names = await _names(uow, {UUID(g.key) for g in by_branch if g.key})

    def listed(groups: list[ReportGroup], branch: bool) -> list[dict[str, Any]]:
        return [
            {
                "key": g.key,
                **({"name": names[UUID(g.key)]} if branch and g.key else {}),
                "movements": g.movements,
                "open": g.open,
                **({"members": g.members} if g.members is not None else {}),
            }
            for g in groups
        ]

    return {
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
        "group_by": group_by.value if group_by else None,
        "partner": partner,
        "side": side.value if side else None,
        "movements": report.total.movements,
        "members": report.total.members,
        "groups": listed(report.groups, group_by is GroupBy.BRANCH),
        **(
            {
                "breakdowns": {
                    b.value: listed(groups, b is GroupBy.BRANCH)
                    for b, groups in report.breakdowns.items()
                }
            }
            if breakdowns
            else {}
        ),
        "members_by_status": await uow.members.count_by_status(scope),
    }


async def organizations(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The organizations of the principal's subtree by path, with their contacts."""
    rows = await uow.organizations.within(uow.request.principal.org_path)
    return [organization_json(r) for r in rows]


async def api_keys(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The keys of the operator's subtree, revoked ones too; never a secret or its hash."""
    principal = uow.request.principal
    require_operator(principal, await uow.organizations.get(principal.org_id))
    return await uow.api_keys.within(principal.org_path)


async def audit_entries(
    uow: UnitOfWork,
    target: str | None = None,
    limit: int = 200,
    *,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """The node's audit log, newest first: the rows about ``target``, by ``actor`` (as the
    log names it, ``key:<key id>``), at or after ``since`` and before ``until``, older than
    the row ``before`` (its ``id``: the next page), as given. A change's row holds each
    changed field's before and after (``detail.changes``)."""
    principal = uow.request.principal
    root = await uow.organizations.root()
    if root is None or principal.org_path != root.path or principal.role.value == "secretary":
        raise Denied(f"{principal.actor} may not read the node's audit log")
    dates.require_time_window(since, until, uow.request.now, fields=("since", "until"))
    rows = await uow.audit.entries(
        AuditFilter(
            target=target, actor=actor, since=since, until=until, before=before, limit=limit
        )
    )
    return [
        {
            "id": r["id"],
            "at": r["at"].isoformat(),
            "actor": r["actor"],
            "key_name": r["key_name"],
            "role": r["role"],
            "action": r["action"],
            "target": r["target"],
            "outcome": r["outcome"],
            "detail": r["detail"],
            "trace_id": r["trace_id"],
        }
        for r in rows
    ]
