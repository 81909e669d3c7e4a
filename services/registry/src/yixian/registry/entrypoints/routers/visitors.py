"""The unregistered visitor (口袋党员, ADR 21): the host records and asks; the origin
confirms or declines what it found."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import visitors

router = APIRouter(tags=["visitors"])


@router.post("/v1/visitors", status_code=201)
async def record_visitor(body: s.NewVisitor, api: Api) -> JSONResponse:
    """Record a person who claims membership of another node and ask that node (only the
    name and the ID's last four characters are sent). One claim per person and origin: a
    repeat answers 200 with the first. A member of this node is 409 (`national_id`)."""
    return await api.command(
        "visitor.record", None, lambda uow: visitors.record_visitor(uow, **s.fields(body))
    )


@router.get("/v1/visitors")
async def list_visitors(
    api: Api,
    to_do: Annotated[bool, Query(description="Only claims needing the host's action.")] = False,
) -> JSONResponse:
    """Claims recorded in the caller's subtree: `asked`, `ambiguous`, `matched` (the
    member is expected here through `movement_id`), `no_match` or `overdue` (to do)."""
    return await api.read(lambda uow: visitors.list_visitors(uow, to_do=to_do))


@router.get("/v1/visitor-claims")
async def list_claims(api: Api) -> JSONResponse:
    """Claims hosts asked of this node, with what it found (`result`, `candidates`)."""
    return await api.read(visitors.list_claims)


@router.post("/v1/visitor-claims/{claim_id}/confirm", status_code=201)
async def confirm_claim(claim_id: UUID, body: s.ClaimConfirmation, api: Api) -> JSONResponse:
    """The person is this node's member: register the outflow to the host from the
    member's record and answer `match`. A repeat answers 200 with the first."""
    return await api.command(
        "visitor_claim.confirm",
        str(claim_id),
        lambda uow: visitors.confirm_claim(uow, claim_id, **s.fields(body)),
    )


@router.post("/v1/visitor-claims/{claim_id}/decline")
async def decline_claim(claim_id: UUID, api: Api) -> JSONResponse:
    """The person is not this node's member: answer `no_match`."""
    return await api.command(
        "visitor_claim.decline", str(claim_id), lambda uow: visitors.decline_claim(uow, claim_id)
    )
