"""The notify service's HTTP endpoints: health, delivery status, opt-outs.

The node's API keys and roles, as at the registry (``Authorization: Bearer yx_...``): the
delivery log and the opt-outs are read by operators and auditors of the whole node; an
operator or a secretary changes the opt-outs of the members of its subtree. Errors are
``{"error", "message", "field"}``. ``/healthz``, ``/readyz`` and ``/metrics`` stay open.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency aliases defined
# inside create_app (Reader, Changer) at runtime.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from yixian.contracts import OPEN_ORIGIN_STATUSES
from yixian.notify.domain.rules import Channel
from yixian.runtime import get_logger
from yixian.runtime.apikeys import KeysUnreadable, Principal, Role, authenticate
from yixian.runtime.http_errors import ERROR_RESPONSES, on_http_error, on_validation_error
from yixian.runtime.http_limits import RequestLimits
from yixian.runtime.service import add_health_routes

log = get_logger(__name__)
API_KEY = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key `yx_<id>_<secret>` the node's registry issued.",
)
READERS = frozenset({Role.OPERATOR, Role.AUDITOR})
CHANGERS = frozenset({Role.OPERATOR, Role.SECRETARY})


class ApiError(Exception):
    """A refusal, answered as ``{"error", "message", "field"}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class OptOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: UUID
    channel: Channel


def create_app(
    *, node: str, pool: asyncpg.Pool, readiness: Callable[[], Awaitable[dict[str, str]]]
) -> FastAPI:
    app = FastAPI(
        title=f"Yixian notify — node {node}",
        version="1.0.0",
        description=__doc__,
        responses=ERROR_RESPONSES,
    )
    app.add_middleware(RequestLimits, streamed={})
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]

    @app.exception_handler(ApiError)
    async def on_refusal(_: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.code, "message": exc.message}
        if exc.field:
            body["field"] = exc.field
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(status_code=exc.status, content=body, headers=headers)

    add_health_routes(app, node, readiness)

    async def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY)],
    ) -> Principal:
        where = f"{request.method} {request.url.path}"
        if credentials is None:
            log.warning("request refused", reason="missing API key", request=where)
            raise ApiError(
                401,
                "unauthorized",
                "send the API key as 'Authorization: Bearer yx_...'",
                "Authorization",
            )
        try:
            async with pool.acquire() as conn:
                found = await authenticate(conn, credentials.credentials.strip())
        except KeysUnreadable as exc:
            log.error("API keys unreadable", reason=str(exc))
            raise ApiError(
                503, "unavailable", "API keys cannot be checked until the registry has migrated"
            ) from None
        if found is None:
            log.warning("request refused", reason="unknown or revoked API key", request=where)
            raise ApiError(
                401, "unauthorized", "the API key is unknown or revoked", "Authorization"
            )
        return found

    def role_in(roles: frozenset[Role], what: str) -> Callable[..., Awaitable[Principal]]:
        async def allowed(
            request: Request, who: Annotated[Principal, Depends(principal)]
        ) -> Principal:
            if who.role not in roles:
                log.warning(
                    "request refused",
                    actor=who.actor,
                    role=who.role.value,
                    request=f"{request.method} {request.url.path}",
                )
                raise ApiError(
                    403, "forbidden", f"{who.actor} is a {who.role.value}; {what}", "Authorization"
                )
            return who

        return allowed

    async def node_reader(
        who: Annotated[
            Principal, Depends(role_in(READERS, "reading this needs an operator or an auditor"))
        ],
    ) -> Principal:
        if not who.node_wide:
            raise ApiError(
                403,
                "forbidden",
                f"{who.actor} is bound to a part of the node; the delivery log and the opt-outs"
                " are read with a key of the whole node",
                "Authorization",
            )
        return who

    Reader = Annotated[Principal, Depends(node_reader)]  # noqa: N806  (a type alias)
    Changer = Annotated[  # noqa: N806  (a type alias)
        Principal,
        Depends(role_in(CHANGERS, "changing opt-outs needs an operator or a secretary")),
    ]

    async def require_member_covered(who: Principal, member_id: UUID) -> None:
        """A member of an organization of the key's subtree, or a member visiting (an open
        movement) whose host organization is in it; a key of the whole node covers any."""
        if who.node_wide:
            return
        covered = await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM member_contacts"
            " WHERE member_id = $1 AND org_path LIKE $2 || '%')"
            " OR EXISTS (SELECT 1 FROM movements mv JOIN organization_contacts o"
            " ON o.org_id = mv.host_org_id WHERE mv.member_id = $1 AND mv.host = $3"
            " AND mv.origin_status = ANY($4::text[]) AND o.path LIKE $2 || '%')",
            member_id,
            who.org_path,
            node,
            [status.value for status in OPEN_ORIGIN_STATUSES],
        )
        if not covered:
            raise ApiError(
                404, "not_found", f"member {member_id} is not known in your subtree", "member_id"
            )

    @app.get("/v1/notices", tags=["notices"])
    async def notices(
        _: Reader,
        member_id: Annotated[UUID | None, Query()] = None,
        movement_id: Annotated[UUID | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Delivery status per notice (sent / pending / suppressed / dead, with the reason)."""
        rows = await pool.fetch(
            "SELECT reason, recipient, channel, address, member_id, movement_id, subject, status,"
            " attempts, last_error, created_at, sent_at FROM notices"
            " WHERE ($1::uuid IS NULL OR member_id = $1) AND ($2::uuid IS NULL OR movement_id = $2)"
            " ORDER BY created_at LIMIT $3",
            member_id,
            movement_id,
            limit,
        )
        return [
            {
                **{
                    k: r[k]
                    for k in (
                        "reason",
                        "recipient",
                        "channel",
                        "address",
                        "subject",
                        "status",
                        "attempts",
                    )
                },
                "member_id": str(r["member_id"]) if r["member_id"] else None,
                "movement_id": str(r["movement_id"]) if r["movement_id"] else None,
                "last_error": r["last_error"],
                "created_at": r["created_at"].isoformat(),
                "sent_at": r["sent_at"].isoformat() if r["sent_at"] else None,
            }
            for r in rows
        ]

    @app.get("/v1/opt-outs", tags=["notices"])
    async def opt_outs(
        _: Reader,
        member_id: Annotated[UUID | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, str]]:
        """Who takes no notices over which channel."""
        rows = await pool.fetch(
            "SELECT member_id, channel, created_at FROM opt_outs"
            " WHERE ($1::uuid IS NULL OR member_id = $1) ORDER BY created_at LIMIT $2",
            member_id,
            limit,
        )
        return [
            {
                "member_id": str(r["member_id"]),
                "channel": r["channel"],
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]

    @app.post("/v1/opt-outs", status_code=201, tags=["notices"])
    async def opt_out(body: OptOut, who: Changer) -> dict[str, str]:
        """The member takes no more notices over this channel (except those that must be sent)."""
        await require_member_covered(who, body.member_id)
        log.info("opt-out", actor=who.actor, member_id=str(body.member_id), channel=body.channel)
        await pool.execute(
            "INSERT INTO opt_outs (member_id, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            body.member_id,
            body.channel.value,
        )
        return {"member_id": str(body.member_id), "channel": body.channel.value}

    @app.delete("/v1/opt-outs", status_code=204, tags=["notices"])
    async def opt_in(body: OptOut, who: Changer) -> Response:
        """The member takes notices over this channel again."""
        await require_member_covered(who, body.member_id)
        log.info("opt-in", actor=who.actor, member_id=str(body.member_id), channel=body.channel)
        await pool.execute(
            "DELETE FROM opt_outs WHERE member_id = $1 AND channel = $2",
            body.member_id,
            body.channel.value,
        )
        return Response(status_code=204)

    return app
