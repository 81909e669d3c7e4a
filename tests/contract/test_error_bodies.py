"""Every HTTP app of a node (registry, sync, notify and the standalone relay) answers an
unknown path and a method a route does not take with the documented error body
``{"error", "message"}`` (README, "Errors and input limits"), never FastAPI's
``{"detail": ...}``. The apps run in memory: a route that does not exist touches no store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from yixian.notify.entrypoints.http import create_app as notify_app
from yixian.record.metrics import RelayMetrics
from yixian.record.process import RelayNodeSettings, relay_app
from yixian.registry.entrypoints.http import create_app as registry_app
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.entrypoints.http import create_app as sync_app

NODE = "411525"


async def _ready() -> dict[str, str]:
    return {"database": "ok"}


APPS: dict[str, Callable[[], FastAPI]] = {
    "registry": lambda: registry_app(
        node=NODE, pool=None, runner=None, broker=None, clock=lambda: datetime.now(UTC)
    ),  # type: ignore[arg-type]
    "sync": lambda: sync_app(
        node=NODE, pool=None, keeper=None, metrics=SyncMetrics(), readiness=_ready
    ),  # type: ignore[arg-type]
    "notify": lambda: notify_app(node=NODE, pool=None, readiness=_ready),  # type: ignore[arg-type]
    "relay": lambda: relay_app(
        RelayNodeSettings(node=NODE, database_url="postgresql://nowhere/none"),
        None,  # type: ignore[arg-type]
        RelayMetrics(),
    ),
}


async def _ask(app: FastAPI, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        return await client.request(method, path)


def _body(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body, dict)
    assert "detail" not in body, body
    return body


@pytest.mark.parametrize("service", sorted(APPS))
async def test_an_unknown_path_answers_the_error_body(service: str) -> None:
    response = await _ask(APPS[service](), "GET", "/v1/no-such-thing")
    assert response.status_code == 404
    body = _body(response)
    assert body["error"] == "not_found"
    assert "/v1/no-such-thing" in body["message"]


@pytest.mark.parametrize("service", sorted(APPS))
async def test_a_method_the_route_does_not_take_answers_the_error_body(service: str) -> None:
    response = await _ask(APPS[service](), "DELETE", "/healthz")
    assert response.status_code == 405
    body = _body(response)
    assert body["error"] == "method_not_allowed"
    assert "DELETE" in body["message"]
    assert "GET" in body["message"]  # what the route takes
