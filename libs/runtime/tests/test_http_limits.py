"""The request limits of a node's app hold the same under a node host's ``/nodes/<code>``
as for the app alone: the streamed import is recognized by the path its routes match."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from yixian.runtime import NodeSettings
from yixian.runtime.host import HostSettings, NodeHost, NodeRuntime
from yixian.runtime.http_limits import RequestLimits

IMPORT = "/v1/members/import"


def node_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestLimits, streamed={IMPORT: frozenset({"text/csv"})})

    @app.post(IMPORT)
    async def import_rows(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/v1/members")
    async def member(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return app


async def _never(settings: NodeSettings) -> NodeRuntime:
    raise AssertionError("no node is started here")


async def _no_migrations(settings: NodeSettings) -> list[str]:
    return []


@pytest.mark.parametrize("prefix", ["", "/nodes/411525"])
async def test_the_import_streams_alone_and_under_a_host(prefix: str, tmp_path: Path) -> None:
    host = NodeHost("registry", NodeSettings, _no_migrations, _never, HostSettings(dir=tmp_path))
    app = node_app()
    host.apps["411525"] = app
    served = host.app if prefix else app
    csv = b"org_id,name,joined_on\n" + b"x" * (200 * 1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(served), base_url="http://node"
    ) as client:
        streamed = await client.post(
            f"{prefix}{IMPORT}", content=csv, headers={"Content-Type": "text/csv"}
        )
        assert streamed.status_code == 200, streamed.text
        assert streamed.json() == {"bytes": len(csv)}
        # any other path keeps the JSON rules: no CSV, no body over the limit
        refused = await client.post(
            f"{prefix}/v1/members", content=csv, headers={"Content-Type": "text/csv"}
        )
        assert refused.status_code == 415
        assert refused.json()["field"] == "Content-Type"
        too_large = await client.post(
            f"{prefix}/v1/members", content=b"[" + b" " * (70 * 1024) + b"]",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert too_large.status_code == 413
