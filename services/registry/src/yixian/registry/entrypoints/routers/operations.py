"""Operations: liveness and readiness (``/metrics`` is added by the composition root)."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Response

from yixian.registry.entrypoints.dependencies import Parts
from yixian.runtime.service import readiness_report

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(parts: Parts) -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok", "node": parts.node}


@router.get("/readyz")
async def readyz(response: Response, parts: Parts) -> dict[str, Any]:
    """Database reachable with migrations applied, and broker reachable; what is
    degraded (outbox rows parked for an operator) is said without failing."""
    checks: dict[str, str] = {}
    try:
        await parts.pool.fetchval("SELECT 1")
        checks["database"] = "ok"
    except (OSError, asyncpg.PostgresError) as exc:
        checks["database"] = f"unavailable: {exc}"
    if parts.readiness is not None:
        checks |= await parts.readiness()
    if parts.broker is not None:
        checks["kafka"] = "ok" if await parts.broker.ping(timeout=2.0) else "unavailable"
    degraded = await parts.degradation() if parts.degradation is not None else []
    return readiness_report(response, parts.node, checks, degraded)
