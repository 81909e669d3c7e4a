"""One error body for every 4xx: ``{"error": code, "message": text, "field": dotted.path}``.

``field`` names the input at fault: a dotted path into the JSON body
(``destination.jurisdiction``, ``period.departed_on``), a query parameter (``target``), a
header (``Idempotency-Key``), or ``body`` for the body as a whole; it is left out when no
single input is at fault (an unknown route, a missing API key). A 422 for the request's
shape also lists every invalid field in ``errors``. This module renders FastAPI's and
Starlette's own refusals (unknown route, method, unreadable or invalid body) in that shape
for every service's API; each service maps its own refusals where its routes are, with
:func:`error_response`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from asyncpg.exceptions import OperatorInterventionError, TooManyConnectionsError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the invalid input.")
    reason: str


class Error(BaseModel):
    """What every 4xx answer carries."""

    error: str = Field(
        description="Machine-readable kind, e.g. invalid_request, invalid, not_found, "
        "forbidden, not_owner, body_too_large, unsupported_media_type, malformed_body.",
        examples=["invalid_request"],
    )
    message: str = Field(
        description="What is wrong, for a person.",
        examples=["destination.jurisdiction: 419999 is not a current administrative division"],
    )
    field: str | None = Field(
        default=None,
        description="The input at fault: a dotted path into the body, a query parameter, a "
        "header, or 'body' for the body as a whole.",
        examples=["destination.jurisdiction"],
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Every invalid field, when the request's shape is invalid."
    )


def _response(description: str) -> dict[str, Any]:
    return {"model": Error, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _response("The body is not JSON, not UTF-8, or nested too deeply (`field`: body)."),
    401: _response("No API key, or an unknown or revoked one."),
    403: _response("The key's role or subtree does not allow this."),
    404: _response("No such route, or no such thing as the request names."),
    409: _response("The request does not fit what is recorded (e.g. a movement's state)."),
    413: _response("The JSON body is larger than the limit (64 KiB); imports are streamed."),
    415: _response("The body is not application/json (an import: CSV or JSON lines)."),
    422: _response("An input is invalid or implausible; `field` names it."),
}
"""The 4xx answers every operation declares in the OpenAPI document."""

_CODES = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(value: object) -> str:
    """Text fit for a response and the audit log: what a refused input put in a message or
    a key (a NUL, an escape, a lone surrogate) is written as an escape, never as itself."""
    return _UNPRINTABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", str(value))


def error_response(
    status_code: int,
    code: str,
    message: str,
    field: str | None = None,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": printable(message)}
    if field:
        body["field"] = printable(field)
    if errors is not None:
        body["errors"] = [{k: printable(v) for k, v in e.items()} for e in errors]
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def dotted(loc: Sequence[int | str]) -> str:
    """``("body", "destination", "jurisdiction")`` → ``destination.jurisdiction``; a header
    keeps its own spelling (``Idempotency-Key``)."""
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in _LOCATIONS else None
    if where == "header" and parts:
        return "-".join(w.capitalize() for w in str(parts[0]).split("-"))
    return ".".join(str(p) for p in parts) or "body"


def _unreadable(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8 (at byte {cause.start + 1})"
    if isinstance(cause, RecursionError):
        return "the body is nested too deeply to read"
    if isinstance(cause, ValueError):
        return f"the body is not valid JSON: {cause}"
    return "the body could not be read as JSON"


async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own refusals, in the one error body."""
    status = exc.status_code
    code = _CODES.get(status) or re.sub(r"\W+", "_", HTTPStatus(status).phrase.lower())
    field = None
    message = printable(exc.detail)
    if status == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        message = f"there is no route {request.url.path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    elif status == 400:
        field = "body"
        message = _unreadable(exc.__cause__)
    elif status == 413:
        field = "body"
    return error_response(status, code, message, field, headers=exc.headers)


def _position(doc: object, pos: int) -> str:
    if not isinstance(doc, str):
        return f"character {pos + 1}"
    line = doc.count("\n", 0, pos) + 1
    column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A request whose shape is wrong: 400 for a body that is not JSON, else 422."""
    problems = exc.errors()
    broken = next((e for e in problems if e.get("type") == "json_invalid"), None)
    if broken is not None:
        pos = broken["loc"][-1] if isinstance(broken["loc"][-1], int) else 0
        reason = broken.get("ctx", {}).get("error", "JSON decode error")
        where = _position(exc.body, pos)
        return error_response(
            400, "malformed_body", f"the body is not valid JSON: {reason} at {where}", "body"
        )
    errors = [
        {"field": dotted(e["loc"]), "reason": str(e["msg"]).removeprefix("Value error, ")}
        for e in problems
    ]
    first = errors[0] if errors else {"field": "body", "reason": "invalid"}
    return error_response(
        422,
        "invalid_request",
        f"{first['field']}: {first['reason']}",
        first["field"],
        errors=errors,
    )


def answer_errors_in_one_body(app: FastAPI) -> None:
    """Answer Starlette's and FastAPI's own refusals (an unknown route or method, an
    unreadable or invalid request) with the one error body, for an app whose refusals are
    no more than those."""
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]


DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset: the server is down or restarting
    asyncpg.InterfaceError,  # the connection went away under the request
    asyncpg.PostgresConnectionError,
    OperatorInterventionError,  # shutting down, starting up
    TooManyConnectionsError,
)
"""What a request meets when the node's database is down or full, rather than wrong."""


async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with the one body and ``Retry-After``, not a bare 500: the client sends the
    request again (with its ``Idempotency-Key`` it takes effect once)."""
    return error_response(
        503,
        "unavailable",
        "the node's database does not answer now; send the request again shortly",
        headers={"Retry-After": "1"},
    )


def answer_database_outages(app: FastAPI) -> None:
    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, on_database_unavailable)
