"""The registry's HTTP API (FastAPI). OpenAPI 3 is published at ``/openapi.json``.

Every request authenticates with ``Authorization: Bearer yx_...``; every POST accepts an
``Idempotency-Key``; bad input is a 4xx naming the field; the trace continues from an
incoming ``traceparent``.
"""

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka import KafkaBroker
from opentelemetry.trace import SpanKind
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from yixian.contracts import ShortText, new_traceparent
from yixian.registry.adapters.auth import Principal, authenticate
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
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.importing import run_import
from yixian.registry.service_layer.unit_of_work import (
    Denied,
    Result,
    TransactionRunner,
    UnitOfWork,
    request_hash,
)
from yixian.registry.service_layer.unit_of_work import (
    Request as Ctx,
)
from yixian.runtime import bind_trace, get_logger
from yixian.runtime.http_errors import (
    ERROR_RESPONSES,
    on_http_error,
    on_validation_error,
)
from yixian.runtime.http_errors import error_response as _error
from yixian.runtime.http_limits import RequestLimits
from yixian.runtime.service import readiness_report
from yixian.runtime.tracing import span

from . import schemas as s

log = get_logger(__name__)
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRESENTED_KEY_ID = re.compile(r"^yx_([0-9a-f]{32})_")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")

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


IMPORT_PATH = "/v1/members/import"
IMPORT_FORMATS = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}
"""The media types an import streams, and the format each one is."""


API_KEY = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key `yx_<id>_<secret>`, bound to a role and an organization subtree.",
)
Route = tuple[str, str, str, Callable[..., Awaitable[Result]], type[s.Body] | None, str]
"""(path, audit action, tag, handler, body model, summary) of a step on a movement."""
OrgFilter = Annotated[UUID | None, Query(description="Default: your whole subtree.")]


class Unauthorized(DomainError):
    pass


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
    app = FastAPI(
        title=f"Yixian registry — node {node}",
        version="1.0.0",
        openapi_url="/openapi.json",
        description=__doc__,
        responses=ERROR_RESPONSES,
    )
    app.add_middleware(RequestLimits, streamed={IMPORT_PATH: frozenset(IMPORT_FORMATS)})
    app.add_exception_handler(HTTPException, on_http_error)  # type: ignore[arg-type]

    async def audit_refusal(request: Request, status: int, message: str, field: Any) -> None:
        """Every refusal is in the audit log, in the name of the key that asked (if any)."""
        who: Principal | None = getattr(request.state, "principal", None)
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO audit_log (actor, role, action, outcome, detail)"
                " VALUES ($1, $2, $3, $4, $5)",
                who.actor if who else "anonymous",
                who.role.value if who else None,
                _printable(f"{request.method} {request.url.path}"),
                "denied" if status == 403 else "refused",
                {"status": status, "reason": _printable(message), "field": _printable(field)},
            )

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        response = await on_validation_error(request, exc)
        body = json.loads(bytes(response.body))
        await audit_refusal(request, response.status_code, body["message"], body.get("field"))
        return response

    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, Unauthorized):
            return _error(401, "unauthorized", exc.message, "Authorization")
        kind = next((k for k in STATUS_OF if isinstance(exc, k)), None)
        status, code = (STATUS_OF[kind], CODE_OF[kind]) if kind else (422, "invalid")
        if not exc.audited:
            await audit_refusal(request, status, exc.message, exc.field)
        return _error(status, code, exc.message, exc.field)

    # -- request context ------------------------------------------------------------------

    async def principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY)],
    ) -> Principal:
        if credentials is None:
            await _record_unauthenticated(request, "missing API key")
            raise Unauthorized("send the API key as 'Authorization: Bearer yx_...'")
        presented = credentials.credentials.strip()
        async with pool.acquire() as conn:
            found = await authenticate(conn, presented)
        if found is None:
            await _record_unauthenticated(request, "unknown or revoked API key", presented)
            raise Unauthorized("the API key is unknown or revoked")
        request.state.principal = found  # refusals after this point are audited in its name
        return found

    async def _record_unauthenticated(
        request: Request, reason: str, presented: str | None = None
    ) -> None:
        detail = {"reason": reason}
        if presented is not None and (key_id := _PRESENTED_KEY_ID.match(presented)):
            detail["presented_key_id"] = str(UUID(key_id.group(1)))
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO audit_log (actor, action, target, outcome, detail)"
                " VALUES ('anonymous', $1, NULL, 'denied', $2)",
                _printable(f"{request.method} {request.url.path}"),
                detail,
            )

    async def context(
        request: Request,
        who: Annotated[Principal, Depends(principal)],
        traceparent: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[
            str | None, Header(description="Retries with the same key return the first result.")
        ] = None,
    ) -> Ctx:
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise Invalid("1 to 200 visible ASCII characters", field="Idempotency-Key")
        match = _TRACEPARENT.match(traceparent or "")
        trace = f"00-{match.group(1)}-{secrets.token_hex(8)}-01" if match else new_traceparent()
        body_hash = None
        streamed = request.url.path == IMPORT_PATH  # never read whole into memory
        if request.method == "POST" and idempotency_key is not None and not streamed:
            body_hash = request_hash(
                runner.config.id_hash_key, request.method, request.url.path, await request.body()
            )
        return Ctx(
            principal=who,
            now=clock(),
            traceparent=trace,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
            caller_traceparent=traceparent if match else None,
        )

    Context = Annotated[Ctx, Depends(context)]  # noqa: N806  (a type alias)

    async def command(
        ctx: Ctx,
        action: str,
        target: str | None,
        work: Callable[[UnitOfWork], Awaitable[Result]],
    ) -> JSONResponse:
        with span(
            f"registry {action}", ctx.caller_traceparent, SpanKind.SERVER,
            **{"yixian.node": node, "yixian.action": action, "yixian.target": target},
        ) as own:  # fmt: skip
            ctx = replace(ctx, traceparent=own)  # the events this command makes continue it
            with bind_trace(ctx.trace_id, action=action):
                result = await runner.run(ctx, action=action, target=target, work=work)
                log.info("command done", target=target, status=result.status)
        body = {k: v for k, v in result.body.items() if k != "target_id"}
        return JSONResponse(
            status_code=result.status,
            content=to_jsonable_python(body),
            headers={"traceparent": ctx.traceparent},
        )

    async def read(ctx: Ctx, work: Callable[[UnitOfWork], Awaitable[Any]]) -> JSONResponse:
        try:
            async with runner.reading(ctx) as uow:
                body = await work(uow)
        except Denied as refusal:
            await runner.record_refusal(ctx, action="read", target=None, refusal=refusal)
            raise
        return JSONResponse(
            content=to_jsonable_python(body), headers={"traceparent": ctx.traceparent}
        )

    # -- operations ---------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "node": node}

    @app.get("/readyz", tags=["operations"])
    async def readyz(response: Response) -> dict[str, Any]:
        """Database reachable with migrations applied, and broker reachable; what is
        degraded (outbox rows parked for an operator) is said without failing."""
        checks: dict[str, str] = {}
        try:
            await pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except (OSError, asyncpg.PostgresError) as exc:
            checks["database"] = f"unavailable: {exc}"
        if readiness is not None:
            checks |= await readiness()
        if broker is not None:
            checks["kafka"] = "ok" if await broker.ping(timeout=2.0) else "unavailable"
        degraded = await degradation() if degradation is not None else []
        return readiness_report(response, node, checks, degraded)

    # -- administration -------------------------------------------------------------------

    @app.post("/v1/organizations", status_code=201, tags=["administration"])
    async def create_organization(body: s.NewOrganization, ctx: Context) -> JSONResponse:
        """Add an organization under one in your subtree (operators)."""
        return await command(
            ctx,
            "organization.create",
            None,
            lambda uow: handlers.create_organization(uow, **body.model_dump()),
        )

    @app.post("/v1/api-keys", status_code=201, tags=["administration"])
    async def issue_api_key(body: s.NewApiKey, ctx: Context) -> JSONResponse:
        """Issue an API key bound to a role and an organization subtree (operators)."""
        return await command(
            ctx, "api_key.issue", None, lambda uow: handlers.issue_api_key(uow, **body.model_dump())
        )

    @app.get("/v1/api-keys", tags=["administration"])
    async def list_api_keys(ctx: Context) -> JSONResponse:
        """The API keys of your subtree, revoked ones too; never a secret (operators)."""
        return await read(ctx, queries.api_keys)

    @app.post("/v1/api-keys/{key_id}/revoke", tags=["administration"])
    async def revoke_api_key(key_id: UUID, ctx: Context) -> JSONResponse:
        """Revoke an API key of your subtree; it fails at once. Revoking again changes nothing;
        the root organization's last active operator key cannot be revoked (operators)."""
        return await command(
            ctx, "api_key.revoke", str(key_id), lambda uow: handlers.revoke_api_key(uow, key_id)
        )

    # -- members --------------------------------------------------------------------------

    @app.post("/v1/members", status_code=201, tags=["members"])
    async def add_member(body: s.NewMember, ctx: Context) -> JSONResponse:
        """Register a member of an organization of this node."""
        return await command(
            ctx, "member.add", None, lambda uow: handlers.add_member(uow, **body.model_dump())
        )

    @app.post(
        IMPORT_PATH,
        tags=["members"],
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
        content_type: Annotated[str, Header()] = "text/csv",
    ) -> JSONResponse:
        """Stream members in as CSV (header line first) or JSON lines; each bad row is reported
        with its line and field, the rest are imported. Columns: member_id, org_id, name,
        joined_on, phone, email, national_id."""
        media = content_type.split(";")[0].strip().lower()
        formats = IMPORT_FORMATS
        if media not in formats:
            raise Invalid("must be text/csv or application/x-ndjson", field="Content-Type")
        with bind_trace(ctx.trace_id, action="member.import"):
            try:
                result = await run_import(
                    runner,
                    ctx,
                    request.url.path,
                    request.stream(),
                    "csv" if formats[media] == "csv" else "jsonl",
                )
            except ClientDisconnect:  # audited as partial with its counts; nobody to answer
                log.info("import cut off by the client")
                return _error(400, "cut_off", "the client closed the request before its end")
        return JSONResponse(
            status_code=result.status, content=result.body, headers={"traceparent": ctx.traceparent}
        )

    # -- the origin side ------------------------------------------------------------------

    @app.post("/v1/movements", status_code=201, tags=["origin"])
    async def register_outflow(body: s.OutflowRegistration, ctx: Context) -> JSONResponse:
        """外出登记: record a member's departure to another jurisdiction."""
        return await command(
            ctx,
            "movement.register",
            None,
            lambda uow: handlers.register_outflow(
                uow,
                member_id=body.member_id,
                destination=body.destination,
                period=body.period,
                contact=body.contact,
                certificate=body.certificate,
            ),
        )

    def movement_route(
        path: str,
        action: str,
        tag: str,
        run: Callable[[UnitOfWork, UUID, Any], Awaitable[Result]],
        body_model: type[s.Body] | None,
        summary: str,
    ) -> None:
        if body_model is None:

            async def endpoint_without_body(movement_id: UUID, ctx: Context) -> JSONResponse:
                return await command(
                    ctx, action, str(movement_id), lambda uow: run(uow, movement_id, None)
                )

            endpoint: Callable[..., Awaitable[JSONResponse]] = endpoint_without_body
        else:

            async def endpoint_with_body(
                movement_id: UUID,
                body: body_model,  # type: ignore[valid-type]
                ctx: Context,
            ) -> JSONResponse:
                return await command(
                    ctx, action, str(movement_id), lambda uow: run(uow, movement_id, body)
                )

            endpoint = endpoint_with_body
        app.post(
            f"/v1/movements/{{movement_id}}/{path}",
            tags=[tag],
            summary=summary,
            name=action,
            operation_id=action.replace(".", "_"),
        )(endpoint)

    def fields(body: Any) -> dict[str, Any]:
        return {name: getattr(body, name) for name in type(body).model_fields}

    routes: list[Route] = [
        ("details", "movement.update_details", "origin",
         lambda u, m, b: handlers.update_details(u, m, **fields(b)), s.DetailsUpdate,
         "Correct the destination's details, the period or the contact"),
        ("relocate", "movement.relocate", "origin",
         lambda u, m, b: handlers.relocate(u, m, **fields(b)), s.Relocation,
         "The member moved on to another host: close this movement, open a linked one"),
        ("cancel", "movement.cancel", "origin",
         lambda u, m, _: handlers.cancel(u, m), None, "Cancel a registration made in error"),
        ("return", "movement.return", "origin",
         lambda u, m, b: handlers.return_home(u, m, returned_on=b.returned_on), s.Return,
         "返回: the member came back; the movement closes"),
        ("transfer/request", "movement.transfer.request", "origin",
         lambda u, m, b: handlers.request_transfer(u, m, note=b.note), s.TransferRequestBody,
         "组织关系转接: ask the host to take over the formal membership"),
        ("transfer/withdraw", "movement.transfer.withdraw", "origin",
         lambda u, m, _: handlers.withdraw_transfer(u, m), None,
         "Withdraw the transfer request; membership stays at the origin"),
        ("transfer/complete", "movement.transfer.complete", "origin",
         lambda u, m, _: handlers.complete_transfer(u, m), None,
         "Complete a transfer the host accepted"),
        ("check-in", "movement.check_in", "host",
         lambda u, m, b: handlers.confirm_check_in(u, m, **fields(b)), s.CheckIn,
         "报到: confirm the member reported, assign an organization"),
        ("reject", "movement.reject", "host",
         lambda u, m, b: handlers.reject(u, m, reason=b.reason), s.Rejection,
         "The host does not know the member"),
        ("forward", "movement.forward", "host",
         lambda u, m, b: handlers.forward(u, m, **fields(b)), s.Forwarding,
         "Point the origin to the right host"),
        ("lost-contact", "movement.lost_contact", "host",
         lambda u, m, b: handlers.mark_lost_contact(u, m, since=b.since), s.LostContact,
         "失联: the host cannot reach the member"),
        ("restore-contact", "movement.restore_contact", "host",
         lambda u, m, _: handlers.restore_contact(u, m), None, "Contact with the member restored"),
        ("participations", "movement.participation", "host",
         lambda u, m, b: handlers.record_participation(u, m, **fields(b)), s.ParticipationBody,
         "参加组织生活: record an attendance"),
        ("transfer/reply", "movement.transfer.reply", "host",
         lambda u, m, b: handlers.reply_transfer(u, m, decision=b.decision, reason=b.reason),
         s.TransferReplyBody, "Accept or reject the origin's transfer request"),
    ]  # fmt: skip
    for route in routes:
        movement_route(*route)

    # -- activities -----------------------------------------------------------------------

    @app.post("/v1/activities", status_code=201, tags=["activities"])
    async def schedule_activity(body: s.NewActivity, ctx: Context) -> JSONResponse:
        """Schedule an activity (e.g. 主题党日) for everyone present in an organization's area."""
        return await command(
            ctx,
            "activity.schedule",
            None,
            lambda uow: handlers.schedule_activity(uow, **fields(body)),
        )

    # -- queries --------------------------------------------------------------------------

    @app.get("/v1/movements/{movement_id}", tags=["queries"])
    async def get_movement(movement_id: UUID, ctx: Context) -> JSONResponse:
        """A movement with both groups, its state, its history and its participations."""
        return await read(ctx, lambda uow: queries.get_movement(uow, movement_id))

    @app.get("/v1/members/away", tags=["queries"])
    async def members_away(ctx: Context, org_id: OrgFilter = None) -> JSONResponse:
        """Members of this node away in other jurisdictions (open movements)."""
        return await read(ctx, lambda uow: queries.members_away(uow, org_id))

    @app.get("/v1/members/visiting", tags=["queries"])
    async def members_visiting(ctx: Context, org_id: OrgFilter = None) -> JSONResponse:
        """Members of other jurisdictions expected or hosted here."""
        return await read(ctx, lambda uow: queries.members_visiting(uow, org_id))

    @app.get("/v1/organizations/{org_id}/present", tags=["queries"])
    async def present(org_id: UUID, ctx: Context) -> JSONResponse:
        """Everyone present in the organization's area, local or visiting."""
        return await read(ctx, lambda uow: queries.present_in_area(uow, org_id))

    @app.get("/v1/queues", tags=["queries"])
    async def work_queues(ctx: Context, org_id: OrgFilter = None) -> JSONResponse:
        """To do, waiting on the other side, overdue, upcoming."""
        return await read(ctx, lambda uow: queries.work_queues(uow, org_id))

    @app.get("/v1/statistics", tags=["queries"])
    async def statistics(ctx: Context, org_id: OrgFilter = None) -> JSONResponse:
        """Movements by partner, by state and by month of departure."""
        return await read(ctx, lambda uow: queries.statistics(uow, org_id))

    @app.get("/v1/audit", tags=["queries"])
    async def audit(
        ctx: Context,
        target: Annotated[ShortText | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> JSONResponse:
        """The node's audit log, newest first (operators and auditors of the whole node)."""
        return await read(ctx, lambda uow: queries.audit_entries(uow, target, limit))

    return app


def _printable(text: str | None) -> str | None:
    """Text for the audit log with control characters shown as escapes (a refusal may quote
    what it refused, and the log keeps no NUL)."""
    if text is None:
        return None
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
