"""What secretaries, operators and auditors read: always inside the principal's subtree."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any
from uuid import UUID

from yixian.contracts import MovementState
from yixian.registry.adapters.auth import api_keys_within
from yixian.registry.adapters.postgres import movement_from_row
from yixian.registry.domain import Side, classify

from .handlers import _org_ids, movement_view, require_operator, require_read, responsible_org
from .unit_of_work import Denied, UnitOfWork

OPEN_ORIGIN_STATUSES = ("registered", "transfer_requested")

# The organization answerable for a movement on this node: at its origin the member's
# organization; at its host the organization that checked the member in, else the one the
# origin suggested, else the node's root.
_SCOPED_MOVEMENTS = """
SELECT m.*, COALESCE(
           CASE WHEN m.origin = $1 THEN oo.path END,
           ho.path, hint.path, root.path) AS scope_path
FROM movements m
LEFT JOIN organizations oo ON oo.org_id = m.origin_org_id
LEFT JOIN organizations ho ON ho.org_id = m.host_org_id
LEFT JOIN organizations hint
       ON hint.org_id = (m.origin_group -> 'destination' -> 'host_org_hint' ->> 'org_id')::uuid
CROSS JOIN (SELECT path FROM organizations WHERE parent_id IS NULL) root
"""


async def _scope(uow: UnitOfWork, org_id: UUID | None) -> str:
    principal = uow.request.principal
    if org_id is None:
        return principal.org_path
    org = await uow.organizations.get(org_id)
    require_read(principal, org)
    return org.path


async def get_movement(uow: UnitOfWork, movement_id: UUID) -> dict[str, Any]:
    movement = await uow.movements.get(movement_id)
    origin_org_id, host_org_id = await _org_ids(uow, movement_id)
    mine = movement.side_of(uow.config.node)
    org = await responsible_org(
        uow, movement, origin_org_id if mine is Side.ORIGIN else host_org_id
    )
    require_read(uow.request.principal, org)
    view = movement_view(movement, uow.config.node, uow.request.now.date(), uow)
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


async def _movements(
    uow: UnitOfWork, side: Side, scope: str, *, open_only: bool = True
) -> list[dict[str, Any]]:
    node = uow.config.node
    column = "origin" if side is Side.ORIGIN else "host"
    rows = await uow.conn.fetch(
        f"SELECT * FROM ({_SCOPED_MOVEMENTS}) s WHERE s.{column} = $1"  # noqa: S608 (fixed names)
        " AND s.scope_path LIKE $2 || '%'"
        + (" AND s.origin_status = ANY($3::text[])" if open_only else "")
        + " ORDER BY s.created_at",
        node,
        scope,
        *([list(OPEN_ORIGIN_STATUSES)] if open_only else []),
    )
    today = uow.request.now.date()
    return [movement_view(movement_from_row(r), node, today, uow) for r in rows]


async def members_away(uow: UnitOfWork, org_id: UUID | None) -> list[dict[str, Any]]:
    """This node's members currently away (this node is their origin)."""
    return await _movements(uow, Side.ORIGIN, await _scope(uow, org_id))


async def members_visiting(uow: UnitOfWork, org_id: UUID | None) -> list[dict[str, Any]]:
    """Members of other jurisdictions currently hosted here (or expected)."""
    return await _movements(uow, Side.HOST, await _scope(uow, org_id))


async def present_in_area(uow: UnitOfWork, org_id: UUID) -> list[dict[str, Any]]:
    """Everyone present in an organization's area: its own members who are not away, and
    visiting members checked in there."""
    scope = await _scope(uow, org_id)
    node = uow.config.node
    local = await uow.conn.fetch(
        "SELECT mb.member_id, mb.name, mb.phone, mb.email, mb.org_id FROM members mb"
        " JOIN organizations o ON o.org_id = mb.org_id"
        " WHERE o.path LIKE $1 || '%' AND NOT EXISTS ("
        "   SELECT 1 FROM movements mv WHERE mv.member_id = mb.member_id AND mv.origin = $2"
        "   AND mv.origin_status = ANY($3::text[]))"
        " ORDER BY mb.name",
        scope,
        node,
        list(OPEN_ORIGIN_STATUSES),
    )
    visiting = await uow.conn.fetch(
        "SELECT mv.movement_id, mv.origin_group, mv.host_org_id FROM movements mv"
        " JOIN organizations o ON o.org_id = mv.host_org_id"
        " WHERE mv.host = $1 AND o.path LIKE $2 || '%'"
        " AND mv.host_status IN ('checked_in', 'lost_contact')"
        " AND mv.origin_status = ANY($3::text[])",
        node,
        scope,
        list(OPEN_ORIGIN_STATUSES),
    )
    people = [
        {
            "member_id": str(r["member_id"]),
            "name": r["name"],
            "org_id": str(r["org_id"]),
            "presence": "local",
            "phone": r["phone"],
            "email": r["email"],
        }
        for r in local
    ]
    for r in visiting:
        group = r["origin_group"]
        people.append(
            {
                "member_id": group["member"]["member_id"],
                "name": group["member"]["name"],
                "org_id": str(r["host_org_id"]),
                "presence": "visiting",
                "movement_id": str(r["movement_id"]),
                "origin": group["origin"],
                "phone": group["contact"].get("phone"),
                "email": group["contact"].get("email"),
            }
        )
    return people


async def work_queues(uow: UnitOfWork, org_id: UUID | None) -> dict[str, list[dict[str, Any]]]:
    scope = await _scope(uow, org_id)
    queues: dict[str, list[dict[str, Any]]] = {
        "to_do": [],
        "waiting": [],
        "overdue": [],
        "upcoming": [],
    }
    today = uow.request.now.date()
    for side in (Side.ORIGIN, Side.HOST):
        column = "origin" if side is Side.ORIGIN else "host"
        rows = await uow.conn.fetch(
            f"SELECT * FROM ({_SCOPED_MOVEMENTS}) s WHERE s.{column} = $1"  # noqa: S608
            " AND s.scope_path LIKE $2 || '%' AND s.origin_status = ANY($3::text[])",
            uow.config.node,
            scope,
            list(OPEN_ORIGIN_STATUSES),
        )
        for row in rows:
            movement = movement_from_row(row)
            entry = classify(
                side, movement.origin_group, movement.host_group, today, uow.config.deadlines
            )
            if entry is None:
                continue
            member = movement.origin_group.member if movement.origin_group else None
            queues[entry.queue.value].append(
                {
                    "movement_id": str(movement.movement_id),
                    "side": side.value,
                    "member": member.name if member else None,
                    "partner": movement.host if side is Side.ORIGIN else movement.origin,
                    "state": movement.state.value,
                    "reason": entry.reason,
                    "due_on": entry.due_on.isoformat() if entry.due_on else None,
                }
            )
    return queues


async def statistics(uow: UnitOfWork, org_id: UUID | None) -> dict[str, Any]:
    """Movements in scope counted by partner, by state and by month of departure."""
    scope = await _scope(uow, org_id)
    rows = await uow.conn.fetch(
        f"SELECT * FROM ({_SCOPED_MOVEMENTS}) s WHERE s.scope_path LIKE $2 || '%'",  # noqa: S608
        uow.config.node,
        scope,
    )
    by_partner: dict[str, Counter[str]] = defaultdict(Counter)
    by_state: Counter[str] = Counter()
    by_month: Counter[str] = Counter()
    for row in rows:
        movement = movement_from_row(row)
        side = movement.side_of(uow.config.node)
        partner = movement.host if side is Side.ORIGIN else movement.origin
        state = movement.state
        by_partner[partner][f"{side.value}:{'open' if state.is_open else 'closed'}"] += 1
        by_state[state.value] += 1
        if movement.origin_group is not None:
            by_month[movement.origin_group.period.departed_on.strftime("%Y-%m")] += 1
    return {
        "total": len(rows),
        "by_partner": {p: dict(c) for p, c in sorted(by_partner.items())},
        "by_state": {
            s.value: by_state.get(s.value, 0) for s in MovementState if by_state.get(s.value)
        },
        "by_departure_month": dict(sorted(by_month.items())),
    }


async def api_keys(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The keys of the operator's subtree, revoked ones too; never a secret or its hash."""
    principal = uow.request.principal
    require_operator(principal, await uow.organizations.get(principal.org_id))
    return [dict(r) for r in await api_keys_within(uow.conn, principal.org_path)]


async def audit_entries(uow: UnitOfWork, target: str | None, limit: int) -> list[dict[str, Any]]:
    principal = uow.request.principal
    root = await uow.organizations.root()
    if root is None or principal.org_path != root.path or principal.role.value == "secretary":
        raise Denied(f"{principal.actor} may not read the node's audit log")
    rows = await uow.audit.entries(target, limit)
    return [
        {
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
