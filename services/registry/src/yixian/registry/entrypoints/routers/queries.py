"""What secretaries, operators and auditors read, always within their subtree."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from yixian.contracts import ShortText
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import queries

router = APIRouter(tags=["queries"])
OrgFilter = Annotated[UUID | None, Query(description="Default: your whole subtree.")]


@router.get("/v1/movements/{movement_id}")
async def get_movement(movement_id: UUID, api: Api) -> JSONResponse:
    """A movement with both groups, its state, its history and its participations."""
    return await api.read(lambda uow: queries.get_movement(uow, movement_id))


@router.get("/v1/members/away")
async def members_away(api: Api, org_id: OrgFilter = None) -> JSONResponse:
    """Members of this node away in other jurisdictions (open movements)."""
    return await api.read(lambda uow: queries.members_away(uow, org_id))


@router.get("/v1/members/visiting")
async def members_visiting(api: Api, org_id: OrgFilter = None) -> JSONResponse:
    """Members of other jurisdictions expected or hosted here."""
    return await api.read(lambda uow: queries.members_visiting(uow, org_id))


@router.get("/v1/organizations/{org_id}/present")
async def present(org_id: UUID, api: Api) -> JSONResponse:
    """Everyone present in the organization's area, local or visiting."""
    return await api.read(lambda uow: queries.present_in_area(uow, org_id))


@router.get("/v1/queues")
async def work_queues(api: Api, org_id: OrgFilter = None) -> JSONResponse:
    """To do, waiting on the other side, overdue, upcoming."""
    return await api.read(lambda uow: queries.work_queues(uow, org_id))


@router.get("/v1/statistics")
async def statistics(api: Api, org_id: OrgFilter = None) -> JSONResponse:
    """Movements by partner, by state and by month of departure."""
    return await api.read(lambda uow: queries.statistics(uow, org_id))


@router.get("/v1/audit")
async def audit(
    api: Api,
    target: Annotated[ShortText | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """The node's audit log, newest first (operators and auditors of the whole node)."""
    return await api.read(lambda uow: queries.audit_entries(uow, target, limit))
