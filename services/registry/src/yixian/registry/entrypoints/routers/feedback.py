"""Feedback: a member's concerns, their answers, the secretaries' queue and statistics."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from yixian.registry.domain import FeedbackState
from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.dependencies import Api
from yixian.registry.service_layer import feedback

router = APIRouter(tags=["feedback"])
OrgFilter = Annotated[UUID | None, Query(description="Default: your whole subtree.")]


@router.post("/v1/feedback", status_code=201)
async def raise_concern(body: s.NewConcern, api: Api) -> JSONResponse:
    """Raise a member's concern with the host of the member's movement or with the origin
    (a repeat of a concern still open answers it, 200)."""
    return await api.command(
        "feedback.raise", None, lambda uow: feedback.raise_concern(uow, **s.fields(body))
    )


@router.get("/v1/feedback")
async def feedback_queue(
    api: Api,
    org_id: OrgFilter = None,
    state: Annotated[FeedbackState | None, Query(description="open, answered or closed")] = None,
    overdue: Annotated[
        bool | None, Query(description="Only concerns past (true) or within (false) the deadline.")
    ] = None,
) -> JSONResponse:
    """The concerns your subtree answers for, oldest first; `overdue` flags a concern with no
    answer past the node's deadline (`YIXIAN_DEADLINES__FEEDBACK_ANSWER_HOURS`)."""
    return await api.read(
        lambda uow: feedback.queue(uow, org_id=org_id, state=state, overdue=overdue)
    )


@router.get("/v1/feedback/statistics")
async def feedback_statistics(
    api: Api,
    org_id: OrgFilter = None,
    since: Annotated[
        date | None, Query(alias="from", description="First day concerns were raised (included).")
    ] = None,
    until: Annotated[
        date | None, Query(alias="to", description="Last day concerns were raised (included).")
    ] = None,
) -> JSONResponse:
    """Concerns raised in the period: counts by state, overdue, and the median and 90th
    percentile of the time to first answer, in seconds."""
    return await api.read(
        lambda uow: feedback.statistics(uow, org_id=org_id, since=since, until=until)
    )


@router.get("/v1/feedback/{feedback_id}")
async def get_concern(feedback_id: UUID, api: Api) -> JSONResponse:
    """A concern with its answers."""
    return await api.read(lambda uow: feedback.get_concern(uow, feedback_id))


@router.post("/v1/feedback/{feedback_id}/answers", status_code=201)
async def answer_concern(feedback_id: UUID, body: s.ConcernAnswer, api: Api) -> JSONResponse:
    """Answer a concern; the first answer stamps its time to first answer (the same answer
    again: 200, nothing changes)."""
    return await api.command(
        "feedback.answer",
        str(feedback_id),
        lambda uow: feedback.answer(uow, feedback_id, text=body.text),
    )


@router.post("/v1/feedback/{feedback_id}/close")
async def close_concern(feedback_id: UUID, api: Api) -> JSONResponse:
    """Close a concern; it takes no answer after."""
    return await api.command(
        "feedback.close", str(feedback_id), lambda uow: feedback.close(uow, feedback_id)
    )
