"""Members: one at a time, or a streamed import; a member's contact changes field by field."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from yixian.registry.domain import Invalid
from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.dependencies import (
    IMPORT_FORMATS,
    IMPORT_PATH,
    Api,
    Context,
    Parts,
)
from yixian.registry.service_layer import handlers
from yixian.registry.service_layer.importing import run_import
from yixian.runtime import bind_trace, get_logger
from yixian.runtime.http import route_path
from yixian.runtime.http_errors import error_response

router = APIRouter(tags=["members"])
log = get_logger(__name__)


@router.post("/v1/members", status_code=201)
async def add_member(body: s.NewMember, api: Api) -> JSONResponse:
    """Register a member of an organization of this node."""
    return await api.command(
        "member.add", None, lambda uow: handlers.add_member(uow, **body.model_dump())
    )


@router.patch("/v1/members/{member_id}")
async def update_member(member_id: UUID, body: s.MemberUpdate, api: Api) -> JSONResponse:
    """Change a member's contact: only the fields sent change, null removes one (JSON
    merge patch; `application/json` or `application/merge-patch+json`). One way to reach
    the member must remain. Audited with each changed field's before and after; a retry
    with the same `Idempotency-Key` returns the first result."""
    return await api.command(
        "member.update_contact",
        str(member_id),
        lambda uow: handlers.update_member_contact(uow, member_id, **s.fields(body)),
    )


@router.post(
    IMPORT_PATH,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_members_endpoint(
    request: Request,
    ctx: Context,
    parts: Parts,
    content_type: Annotated[str, Header()] = "text/csv",
) -> JSONResponse:
    """Stream members in as CSV (header line first) or JSON lines; each bad row is reported
    with its line and field, the rest are imported. Columns: member_id, org_id, name,
    joined_on, phone, email, national_id."""
    media = content_type.split(";")[0].strip().lower()
    if media not in IMPORT_FORMATS:
        raise Invalid("must be text/csv or application/x-ndjson", field="Content-Type")
    with bind_trace(ctx.trace_id, action="member.import"):
        try:
            result = await run_import(
                parts.runner,
                ctx,
                route_path(request.scope),
                request.stream(),
                "csv" if IMPORT_FORMATS[media] == "csv" else "jsonl",
            )
        except ClientDisconnect:  # audited as partial with its counts; nobody to answer
            log.info("import cut off by the client")
            return error_response(400, "cut_off", "the client closed the request before its end")
    return JSONResponse(
        status_code=result.status, content=result.body, headers={"traceparent": ctx.traceparent}
    )
