"""The unregistered visitor (口袋党员, ADR 21): the host records a claim and asks the
claimed origin; the origin looks among its members, answers, and on a confirmed match
registers the outflow itself, after which the movement runs as any other.

Nothing the host sends identifies the number (``yixian.contracts.visitor``), and the
origin's answer carries nothing of the member. The host never creates a member of its
own for a claim: a matched visitor is the origin's member, expected here through the
movement the origin registered, and counted once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from yixian.contracts import (
    ClaimResult,
    Contact,
    Destination,
    OutflowReason,
    OutflowReasonKind,
    Period,
    VisitorClaimAnswered,
    VisitorClaimAsked,
)
from yixian.registry.domain import Conflict, InvalidTransition, MemberStatus, NotFound, dates
from yixian.registry.domain.member import mask_national_id, national_id_hash
from yixian.registry.domain.movement import require_reachable
from yixian.registry.domain.visitor import (
    TO_DO,
    answered_at_once,
    claim_state,
    claimed_origin,
    first_result,
    id_ending,
)

from . import handlers
from .handlers import require_read, require_write
from .repositories import MemberSearch
from .unit_of_work import Result, UnitOfWork

ANSWERER = "registry:claim-answerer"

# -- host ------------------------------------------------------------------------------------


async def record_visitor(
    uow: UnitOfWork,
    *,
    name: str,
    national_id: str,
    origin: str | None,
    contact: Contact,
    org_id: UUID | None,
) -> Result:
    """Record a person who claims membership of another node and ask that node. One claim
    per person and origin: a repeat answers 200 with the first (the unique key decides)."""
    config = uow.config
    root = await uow.organizations.root()
    if root is None:  # pragma: no cover - a node without a root has no keys either
        raise NotFound("this node has no organizations yet", field="org_id")
    org = await uow.organizations.get(org_id) if org_id is not None else root
    require_write(uow.request.principal, org)
    asked_of = claimed_origin(national_id, origin, node=config.node, partners=config.partners)
    require_reachable(contact)
    hashed = national_id_hash(config.id_hash_key, national_id)
    if await uow.members.search(root.path, MemberSearch(national_id_hash=hashed), None, 1):
        raise Conflict(
            "is a member of this node already: find the member instead", field="national_id"
        )
    today = dates.local_date(uow.request.now)
    claim_id = uuid4()
    claim: dict[str, Any] = {
        "claim_id": claim_id,
        "origin": asked_of,
        "org_id": org.org_id,
        "name": name,
        "national_id_hash": hashed,
        "national_id_masked": mask_national_id(national_id),
        "contact": contact.model_dump(mode="json", exclude_none=True),
        "asked_at": uow.request.now,
        "asked_by": uow.request.principal.actor,
        "due_on": config.deadlines.visitor_claim_due(today),
    }
    if not await uow.visitors.add(claim):
        uow.nothing_changed = True
        first = await uow.visitors.of_person(asked_of, hashed)
        assert first is not None
        return Result(200, {**_visitor_json(first, uow), "target_id": str(first["claim_id"])})
    await uow.publish_to_partner(
        VisitorClaimAsked(
            claim_id=claim_id,
            host=config.node,
            origin=asked_of,
            name=name,
            id_ending=id_ending(national_id),
            asked_at=uow.request.now,
        ),
        asked_of,
        subject=claim_id,
    )
    uow.audit_detail = {
        "origin": asked_of,
        "org_id": str(org.org_id),
        "changes": {"visitor.name": {"before": None, "after": name}},
    }
    shown = claim | {"result": None, "movement_id": None, "answered_at": None}
    return Result(201, {**_visitor_json(shown, uow), "target_id": str(claim["claim_id"])})


async def list_visitors(uow: UnitOfWork, *, to_do: bool = False) -> dict[str, Any]:
    """The claims the caller's subtree recorded, each with the origin's answer and where it
    stands; ``to_do``: only those a host secretary must act on."""
    principal = uow.request.principal
    rows = [_visitor_json(r, uow) for r in await uow.visitors.within(principal.org_path)]
    if to_do:
        rows = [r for r in rows if r["to_do"]]
    return {"visitors": rows}


def _visitor_json(row: dict[str, Any], uow: UnitOfWork) -> dict[str, Any]:
    answer = ClaimResult(row["result"]) if row.get("result") else None
    state = claim_state(answer, row["due_on"], dates.local_date(uow.request.now))
    return {
        "claim_id": str(row["claim_id"]),
        "origin": row["origin"],
        "org_id": str(row["org_id"]),
        "name": row["name"],
        "national_id_masked": row["national_id_masked"],
        "contact": row["contact"],
        "asked_at": row["asked_at"],
        "due_on": row["due_on"],
        "state": state.value,
        "to_do": state in TO_DO,
        "movement_id": str(row["movement_id"]) if row.get("movement_id") else None,
        "answered_at": row.get("answered_at"),
    }


# -- origin ----------------------------------------------------------------------------------


async def look_at_claim(uow: UnitOfWork, claim_id: UUID) -> Result:
    """The origin's first look at a claim asked of it (the answerer, ADR 21): the members
    at home with the name and the ID ending. None or several: answered at once; one waits
    for a secretary's confirmation, which registers the outflow."""
    asked = await uow.visitors.asked(claim_id, lock=True)
    if asked is None:
        raise NotFound(f"no claim {claim_id} was asked of this node", field="claim_id")
    if asked["result"] is not None:
        uow.nothing_changed = True
        return Result(200, {**_claim_json(asked), "target_id": str(claim_id)})
    candidates = await _at_home(uow, asked["name"], asked["id_ending"])
    result = first_result(len(candidates))
    decision = {
        "claim_id": claim_id,
        "host": asked["host"],
        "result": result.value,
        "candidates": len(candidates),
        "member_id": candidates[0] if result is ClaimResult.MATCH else None,
        "movement_id": None,
        "answered": answered_at_once(result),
        "decided_at": uow.request.now,
        "decided_by": uow.request.principal.actor,
        "replace": False,
    }
    if not await uow.visitors.decide(decision):
        uow.nothing_changed = True
        return Result(200, {"claim_id": str(claim_id), "target_id": str(claim_id)})
    if decision["answered"]:
        await _answer(uow, claim_id, asked["host"], result, None)
    uow.audit_detail = {
        "host": asked["host"],
        "result": result.value,
        "candidates": len(candidates),
    }
    return Result(201, {**_claim_json(asked | decision), "target_id": str(claim_id)})


async def confirm_claim(
    uow: UnitOfWork,
    claim_id: UUID,
    *,
    member_id: UUID | None,
    place: str,
    period: Period | None,
    contact: Contact | None,
) -> Result:
    """The origin's secretary confirms the person is its member (``member_id`` names one of
    several; default: the one found): the outflow to the host is registered from the
    member's record, and the host is answered ``match`` with the movement."""
    asked = await uow.visitors.asked(claim_id, lock=True)
    if asked is None or asked["result"] is None:
        raise NotFound(f"no claim {claim_id} waits here for a decision", field="claim_id")
    if asked["result"] == ClaimResult.MATCH.value and asked["movement_id"] is not None:
        uow.nothing_changed = True  # confirmed already: the first answer stands
        return Result(200, {**_claim_json(asked), "target_id": str(claim_id)})
    candidates = await _at_home(uow, asked["name"], asked["id_ending"])
    chosen = member_id or (asked["member_id"] if asked["result"] == "match" else None)
    if chosen is None:
        raise InvalidTransition(
            f"{len(candidates)} members fit: name the one with member_id", field="member_id"
        )
    if chosen not in candidates:
        raise NotFound(
            "is not a member at home of this node with the claim's name and ID ending",
            field="member_id",
        )
    member = await uow.members.get(chosen)
    reachable = contact or Contact.model_validate(
        {k: v for k, v in member.contact().items() if v is not None}
    )
    require_reachable(reachable)
    registered = await handlers.register_outflow(
        uow,
        member_id=chosen,
        destination=Destination(jurisdiction=asked["host"], place=place),
        period=period or Period(departed_on=dates.local_date(uow.request.now)),
        contact=reachable,
        reason=OutflowReason(
            kind=OutflowReasonKind.OTHER,
            text=f"found at {asked['host']} as a visitor (claim {claim_id})",
        ),
    )
    movement_id = UUID(registered.body["movement_id"])
    decision = {
        "claim_id": claim_id,
        "host": asked["host"],
        "result": ClaimResult.MATCH.value,
        "candidates": len(candidates),
        "member_id": chosen,
        "movement_id": movement_id,
        "answered": True,
        "decided_at": uow.request.now,
        "decided_by": uow.request.principal.actor,
        "replace": True,
    }
    await uow.visitors.decide(decision)
    await _answer(uow, claim_id, asked["host"], ClaimResult.MATCH, movement_id)
    uow.audit_detail = {
        **uow.audit_detail,
        "claim_id": str(claim_id),
        "host": asked["host"],
        "member_id": str(chosen),
    }
    return Result(201, {**_claim_json(asked | decision), "target_id": str(claim_id)})


async def decline_claim(uow: UnitOfWork, claim_id: UUID) -> Result:
    """The origin's secretary says the person is not its member: ``no_match``."""
    asked = await uow.visitors.asked(claim_id, lock=True)
    if asked is None or asked["result"] is None:
        raise NotFound(f"no claim {claim_id} waits here for a decision", field="claim_id")
    root = await uow.organizations.root()
    assert root is not None
    require_write(uow.request.principal, root)
    if asked["result"] == ClaimResult.MATCH.value and asked["movement_id"] is not None:
        raise InvalidTransition(
            "was confirmed: the outflow is registered; cancel the movement instead",
            field="claim_id",
        )
    if asked["result"] == ClaimResult.NO_MATCH.value:
        uow.nothing_changed = True
        return Result(200, {**_claim_json(asked), "target_id": str(claim_id)})
    decision = {
        **{k: asked[k] for k in ("claim_id", "host", "candidates", "movement_id")},
        "result": ClaimResult.NO_MATCH.value,
        "member_id": None,
        "answered": True,
        "decided_at": uow.request.now,
        "decided_by": uow.request.principal.actor,
        "replace": True,
    }
    await uow.visitors.decide(decision)
    await _answer(uow, claim_id, asked["host"], ClaimResult.NO_MATCH, None)
    uow.audit_detail = {"host": asked["host"], "result": ClaimResult.NO_MATCH.value}
    return Result(200, {**_claim_json(asked | decision), "target_id": str(claim_id)})


async def list_claims(uow: UnitOfWork) -> dict[str, Any]:
    """The claims hosts asked of this node, with what it found. The whole node's: a claim
    belongs to no organization until a member is confirmed, so only node-wide keys and the
    root's subtree read them."""
    root = await uow.organizations.root()
    assert root is not None
    require_read(uow.request.principal, root)
    return {"claims": [_claim_json(a) for a in await uow.visitors.asked_all()]}


async def _at_home(uow: UnitOfWork, name: str, ending: str) -> list[UUID]:
    """The members of this node with the name and ID ending who are at home: not away on an
    open movement, not transferred out (``domain.member_status``). A member away elsewhere
    is not found: nothing tells the asker where that member is."""
    found = await uow.visitors.candidates(name, ending)
    return [m for m in found if await handlers.status_of(uow, m) is MemberStatus.HOME]


async def _answer(
    uow: UnitOfWork, claim_id: UUID, host: str, result: ClaimResult, movement_id: UUID | None
) -> None:
    await uow.publish_to_partner(
        VisitorClaimAnswered(
            claim_id=claim_id,
            host=host,
            origin=uow.config.node,
            result=result,
            movement_id=movement_id,
            answered_at=uow.request.now,
        ),
        host,
        subject=claim_id,
    )


def _claim_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "claim_id": str(row["claim_id"]),
        "host": row["host"],
        "name": row["name"],
        "id_ending": row["id_ending"],
        "asked_at": row["asked_at"],
        "result": row.get("result"),
        "candidates": row.get("candidates"),
        "member_id": str(row["member_id"]) if row.get("member_id") else None,
        "movement_id": str(row["movement_id"]) if row.get("movement_id") else None,
        "answered": row.get("answered"),
        "decided_at": row.get("decided_at"),
    }
