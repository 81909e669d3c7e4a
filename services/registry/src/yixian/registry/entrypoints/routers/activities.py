"""Activities an organization schedules for everyone present in its area."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import handlers

router = APIRouter(tags=["activities"])


@router.post("/v1/activities", status_code=201)
async def schedule_activity(body: s.NewActivity, api: Api) -> JSONResponse:
    """Schedule an activity (e.g. 主题党日) for everyone present in an organization's area."""
    return await api.command(
        "activity.schedule",
        None,
        lambda uow: handlers.schedule_activity(uow, **s.fields(body)),
    )
