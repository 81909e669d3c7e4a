"""The registry's HTTP API (FastAPI)."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import FastAPI, Response, status
from faststream.kafka import KafkaBroker


def create_app(*, node: str, pool: asyncpg.Pool, broker: KafkaBroker) -> FastAPI:
    app = FastAPI(
        title=f"Yixian registry — node {node}",
        version="0.1.0",
        openapi_url="/openapi.json",
    )

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "node": node}

    @app.get("/readyz", tags=["operations"])
    async def readyz(response: Response) -> dict[str, Any]:
        """The database and the broker answer."""
        checks: dict[str, str] = {}
        try:
            await pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except (OSError, asyncpg.PostgresError) as exc:
            checks["database"] = f"unavailable: {exc}"
        checks["kafka"] = "ok" if await broker.ping(timeout=2.0) else "unavailable"
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"ready": ready, "node": node, "checks": checks}

    return app
