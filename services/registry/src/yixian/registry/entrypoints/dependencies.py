"""What every route depends on: the node's parts (in ``app.state``), the caller (an API
key), the request's context (time, trace, idempotency) and the runner of its command."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka import KafkaBroker
from opentelemetry.trace import SpanKind
from pydantic_core import to_jsonable_python

from yixian.contracts import new_traceparent
from yixian.registry.adapters.auth import Principal, authenticate
from yixian.registry.domain import DomainError, Invalid
from yixian.registry.service_layer.unit_of_work import (
    Denied,
    Result,
    TransactionRunner,
    UnitOfWork,
    request_hash,
)
from yixian.registry.service_layer.unit_of_work import Request as Ctx
from yixian.runtime import bind_trace, get_logger
from yixian.runtime.http import route_path
from yixian.runtime.http_errors import printable
from yixian.runtime.tracing import span

log = get_logger(__name__)
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_PRESENTED_KEY_ID = re.compile(r"^yx_([0-9a-f]{32})_")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_WRITES = frozenset({"POST", "PATCH"})
"""The methods of commands, whose Idempotency-Key is checked against a fingerprint."""

IMPORT_PATH = "/v1/members/import"
IMPORT_FORMATS = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}
"""The media types an import streams, and the format each one is."""

API_KEY = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key `yx_<id>_<secret>`, bound to a role and an organization subtree.",
)


class Unauthorized(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class NodeParts:
    """What the routes of one node's API work with; ``create_app`` keeps it in
    ``app.state.node``."""

    node: str
    pool: asyncpg.Pool
    runner: TransactionRunner
    clock: Callable[[], datetime]
    broker: KafkaBroker | None = None
    readiness: Callable[[], Awaitable[dict[str, str]]] | None = None
    degradation: Callable[[], Awaitable[list[str]]] | None = None


def parts_of(request: Request) -> NodeParts:
    parts: NodeParts = request.app.state.node
    return parts


# The dependencies are coroutines, even where they await nothing: FastAPI runs a plain
# function dependency in a worker thread, two thread hops per request.


async def node_parts(request: Request) -> NodeParts:
    return parts_of(request)


Parts = Annotated[NodeParts, Depends(node_parts)]


async def audit_refusal(request: Request, status: int, message: str, field: Any) -> None:
    """Every refusal is in the audit log, in the name of the key that asked (if any)."""
    who: Principal | None = getattr(request.state, "principal", None)
    await parts_of(request).runner.record_unanswered(
        actor=who.actor if who else "anonymous",
        role=who.role.value if who else None,
        action=printable(f"{request.method} {route_path(request.scope)}"),
        outcome="denied" if status == 403 else "refused",
        detail={
            "status": status,
            "reason": printable(message),
            "field": None if field is None else printable(field),
        },
    )


async def _record_unauthenticated(
    request: Request, parts: NodeParts, reason: str, presented: str | None = None
) -> None:
    detail = {"reason": reason}
    if presented is not None and (key_id := _PRESENTED_KEY_ID.match(presented)):
        detail["presented_key_id"] = str(UUID(key_id.group(1)))
    await parts.runner.record_unanswered(
        actor="anonymous",
        role=None,
        action=printable(f"{request.method} {route_path(request.scope)}"),
        outcome="denied",
        detail=detail,
    )


async def principal(
    request: Request,
    parts: Parts,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY)],
) -> Principal:
    """The API key's principal; 401 (audited) without a key or with an unknown one."""
    if credentials is None:
        await _record_unauthenticated(request, parts, "missing API key")
        raise Unauthorized("send the API key as 'Authorization: Bearer yx_...'")
    presented = credentials.credentials.strip()
    async with parts.pool.acquire() as conn:
        found = await authenticate(conn, presented)
    if found is None:
        await _record_unauthenticated(request, parts, "unknown or revoked API key", presented)
        raise Unauthorized("the API key is unknown or revoked")
    request.state.principal = found  # refusals after this point are audited in its name
    return found


async def context(
    request: Request,
    parts: Parts,
    who: Annotated[Principal, Depends(principal)],
    traceparent: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[
        str | None, Header(description="Retries with the same key return the first result.")
    ] = None,
) -> Ctx:
    """Who asks, when, under which trace, and the request's idempotency key and fingerprint."""
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise Invalid("1 to 200 visible ASCII characters", field="Idempotency-Key")
    match = _TRACEPARENT.match(traceparent or "")
    trace = f"00-{match.group(1)}-{secrets.token_hex(8)}-01" if match else new_traceparent()
    body_hash = None
    route = route_path(request.scope)  # the same whether the node is served alone or hosted
    streamed = route == IMPORT_PATH  # never read whole into memory
    if request.method in _WRITES and idempotency_key is not None and not streamed:
        body_hash = request_hash(
            parts.runner.config.id_hash_key, request.method, route, await request.body()
        )
    return Ctx(
        principal=who,
        now=parts.clock(),
        traceparent=trace,
        idempotency_key=idempotency_key,
        body_hash=body_hash,
        caller_traceparent=traceparent if match else None,
    )


Context = Annotated[Ctx, Depends(context)]


@dataclass(frozen=True, slots=True)
class Caller:
    """One authenticated request, ready to run its command or its read."""

    ctx: Ctx
    parts: NodeParts

    async def command(
        self,
        action: str,
        target: str | None,
        work: Callable[[UnitOfWork], Awaitable[Result]],
    ) -> JSONResponse:
        """Run a command in one transaction (idempotency claim, work, audit row)."""
        node = self.parts.node
        with span(
            f"registry {action}", self.ctx.caller_traceparent, SpanKind.SERVER,
            **{"yixian.node": node, "yixian.action": action, "yixian.target": target},
        ) as own:  # fmt: skip
            ctx = replace(self.ctx, traceparent=own)  # the events this command makes continue it
            with bind_trace(ctx.trace_id, action=action):
                result = await self.parts.runner.run(ctx, action=action, target=target, work=work)
                log.info("command done", target=target, status=result.status)
        body = {k: v for k, v in result.body.items() if k != "target_id"}
        return JSONResponse(
            status_code=result.status,
            content=to_jsonable_python(body),
            headers={"traceparent": ctx.traceparent},
        )

    async def read(self, work: Callable[[UnitOfWork], Awaitable[Any]]) -> JSONResponse:
        """Run a query in a read-only transaction; a refusal is audited."""
        runner = self.parts.runner
        try:
            async with runner.reading(self.ctx) as uow:
                body = await work(uow)
        except Denied as refusal:
            await runner.record_refusal(self.ctx, action="read", target=None, refusal=refusal)
            raise
        return JSONResponse(
            content=to_jsonable_python(body), headers={"traceparent": self.ctx.traceparent}
        )


async def caller(ctx: Context, parts: Parts) -> Caller:
    return Caller(ctx, parts)


Api = Annotated[Caller, Depends(caller)]
"""The dependency of a route that runs a command or a read."""
