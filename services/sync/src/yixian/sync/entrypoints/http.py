"""The sync service's HTTP endpoints: health, link status, on-demand repair, metrics, and
the AsyncAPI document of the node's Kafka traffic.

The AsyncAPI document is served here because sync is the node's end of every link: it
reads every pair topic addressed to the node, sends the link's own protocol and keeps
the dead letters, so the contract of that traffic sits beside ``/v1/links``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Path, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from yixian.contracts import LinkState
from yixian.contracts.schemas import asyncapi_document
from yixian.runtime.divisions import DivisionCode
from yixian.runtime.http_errors import (
    ERROR_RESPONSES,
    error_response,
    on_http_error,
    on_validation_error,
)
from yixian.runtime.http_limits import RequestLimits
from yixian.runtime.metrics import add_metrics_route
from yixian.runtime.service import add_health_routes
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.service_layer.links import LinkKeeper

_CODE = r"^\d{6}$"
_DIVISION = TypeAdapter[str](DivisionCode)


def create_app(
    *,
    node: str,
    pool: asyncpg.Pool,
    keeper: LinkKeeper,
    metrics: SyncMetrics,
    readiness: Callable[[], Awaitable[dict[str, str]]],
    consumer_lag: Callable[[], Awaitable[None]] | None = None,
    on_linked: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    app = FastAPI(title=f"Yixian sync — node {node}", version="1.0.0", responses=ERROR_RESPONSES)
    app.add_middleware(RequestLimits, streamed={})
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]

    add_health_routes(app, node, readiness)
    contract = json.dumps(asyncapi_document(), ensure_ascii=False).encode()

    @app.get("/asyncapi.json", tags=["contract"], response_class=Response)
    async def asyncapi() -> Response:
        """The AsyncAPI 3.0 document of the node's Kafka traffic: channels, messages with
        their JSON Schemas, keys and headers, and the login (as committed in
        contracts/schemas/current/v1/asyncapi.json)."""
        return Response(contract, media_type="application/json")

    @app.get("/v1/links", tags=["links"])
    async def links() -> list[dict[str, Any]]:
        """Each partner link: state (healthy / lagging / gap / silent), lag, sequences."""
        views = await keeper.views()
        for view in views:
            metrics.link_lag.labels(partner=view.partner).set(view.lag)
            metrics.outbox_backlog.labels(partner=view.partner).set(view.backlog)
            for state in LinkState:
                metrics.link_state.labels(partner=view.partner, state=state.value).set(
                    1 if view.state is state else 0
                )
        return [v.as_json() for v in views]

    async def _known(partner: str) -> None:
        if not any(v.partner == partner for v in await keeper.views()):
            raise HTTPException(404, detail=f"no link with {partner} on this node")

    @app.put("/v1/links/{partner}", tags=["links"], status_code=200)
    async def link(
        partner: str = Path(pattern=_CODE, description="The partner's division code."),
    ) -> Response:
        """Keep a link with ``partner`` from now on, without a restart: its pair topic to
        this node is read (once ``yixian partner link`` made it), heartbeats and digests go
        to it. 201 when the link is new, 200 when the node already had it."""
        try:
            _DIVISION.validate_python(partner)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            return error_response(422, "invalid", f"{partner}: {reason}", "partner")
        if partner == node:
            return error_response(
                422, "invalid", f"{partner} is this node; a node is not its own partner", "partner"
            )
        made = await keeper.link(partner)
        if on_linked is not None:
            await on_linked()
        return JSONResponse(
            {"partner": partner, "status": "linked" if made else "already linked"},
            status_code=201 if made else 200,
        )

    @app.post("/v1/links/{partner}/anti-entropy", status_code=202, tags=["links"])
    async def anti_entropy(partner: str) -> dict[str, str]:
        """Compare digests with the partner now; differences are repaired by the owners."""
        await _known(partner)
        await keeper.anti_entropy_now(partner)
        return {"partner": partner, "status": "digest sent"}

    @app.post("/v1/links/{partner}/status-request", status_code=202, tags=["links"])
    async def status_request(partner: str) -> dict[str, str]:
        """Ask the partner how it sees the link (the answer appears in /v1/links)."""
        await _known(partner)
        await keeper.ask_status(partner)
        return {"partner": partner, "status": "asked"}

    async def refresh() -> None:
        await links()
        if consumer_lag is not None:
            await consumer_lag()

    add_metrics_route(app, metrics.registry, refresh)

    return app
