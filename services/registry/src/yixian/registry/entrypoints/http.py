"""The registry's HTTP API (FastAPI). OpenAPI 3 is published at ``/openapi.json``.

Every request authenticates with ``Authorization: Bearer yx_...``; every POST accepts an
``Idempotency-Key``; bad input is a 4xx naming the field; the trace continues from an
incoming ``traceparent``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from starlette.exceptions import HTTPException

from yixian.registry.domain import (
    AlreadyExists,
    Conflict,
    DomainError,
    InProgress,
    Invalid,
    InvalidTransition,
    NotFound,
    NotOwner,
    WouldLockOut,
)
from yixian.registry.service_layer.unit_of_work import Denied, TransactionRunner
from yixian.runtime.http_errors import (
    ERROR_RESPONSES,
    answer_database_outages,
    error_response,
    on_http_error,
)
from yixian.runtime.http_errors import on_validation_error as answer_invalid_request
from yixian.runtime.http_limits import RequestLimits

from .dependencies import IMPORT_FORMATS, IMPORT_PATH, NodeParts, Unauthorized, audit_refusal
from .routers import ROUTERS

STATUS_OF: dict[type[DomainError], int] = {
    NotFound: 404,
    Denied: 403,
    NotOwner: 409,
    InvalidTransition: 409,
    AlreadyExists: 409,
    WouldLockOut: 409,
    InProgress: 409,
    Conflict: 422,
    Invalid: 422,
}
CODE_OF: dict[type[DomainError], str] = {
    NotFound: "not_found",
    Denied: "forbidden",
    NotOwner: "not_owner",
    InvalidTransition: "invalid_transition",
    AlreadyExists: "already_exists",
    WouldLockOut: "would_lock_out",
    InProgress: "in_progress",
    Conflict: "conflict",
    Invalid: "invalid",
}


async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A request the schema refuses: the error body, and its audit row."""
    response = await answer_invalid_request(request, exc)
    body = json.loads(bytes(response.body))
    await audit_refusal(request, response.status_code, body["message"], body.get("field"))
    return response


async def on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    """A refusal: its status and code, and its audit row unless the runner wrote it."""
    if isinstance(exc, Unauthorized):
        return error_response(401, "unauthorized", exc.message, "Authorization")
    kind = next((k for k in STATUS_OF if isinstance(exc, k)), None)
    status, code = (STATUS_OF[kind], CODE_OF[kind]) if kind else (422, "invalid")
    if not exc.audited:
        await audit_refusal(request, status, exc.message, exc.field)
    return error_response(status, code, exc.message, exc.field)


def create_app(
    *,
    node: str,
    pool: asyncpg.Pool,
    runner: TransactionRunner,
    broker: KafkaBroker | None,
    clock: Callable[[], datetime],
    readiness: Callable[[], Awaitable[dict[str, str]]] | None = None,
    degradation: Callable[[], Awaitable[list[str]]] | None = None,
) -> FastAPI:
    """The API of one node: its routers, the limits on request bodies, and the answer (and
    audit row) of every refusal."""
    app = FastAPI(
        title=f"Yixian registry — node {node}",
        version="1.0.0",
        openapi_url="/openapi.json",
        description=__doc__,
        responses=ERROR_RESPONSES,
        # no spans or request metrics of FastAPI's own: a command's span continues the
        # caller's trace (dependencies.Caller), and FastAPI's would add half a dozen more a
        # request, none of them joined to it
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.node = NodeParts(
        node=node,
        pool=pool,
        runner=runner,
        clock=clock,
        broker=broker,
        readiness=readiness,
        degradation=degradation,
    )
    app.add_middleware(RequestLimits, streamed={IMPORT_PATH: frozenset(IMPORT_FORMATS)})
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, on_domain_error)  # type: ignore[arg-type]
    answer_database_outages(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
