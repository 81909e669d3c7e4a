"""The notify service's HTTP endpoints: health, delivery status, opt-outs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import FastAPI, Query, Response
from pydantic import BaseModel, ConfigDict

from yixian.notify.domain.rules import Channel
from yixian.runtime.service import add_health_routes


class OptOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: UUID
    channel: Channel


def create_app(
    *, node: str, pool: asyncpg.Pool, readiness: Callable[[], Awaitable[dict[str, str]]]
) -> FastAPI:
    app = FastAPI(title=f"Yixian notify — node {node}", version="1.0.0")

    add_health_routes(app, node, readiness)

    @app.get("/v1/notices", tags=["notices"])
    async def notices(
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

    @app.post("/v1/opt-outs", status_code=201, tags=["notices"])
    async def opt_out(body: OptOut) -> dict[str, str]:
        """The member takes no more notices over this channel (except those that must be sent)."""
        await pool.execute(
            "INSERT INTO opt_outs (member_id, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            body.member_id,
            body.channel.value,
        )
        return {"member_id": str(body.member_id), "channel": body.channel.value}

    @app.delete("/v1/opt-outs", status_code=204, tags=["notices"])
    async def opt_in(body: OptOut) -> Response:
        await pool.execute(
            "DELETE FROM opt_outs WHERE member_id = $1 AND channel = $2",
            body.member_id,
            body.channel.value,
        )
        return Response(status_code=204)

    return app
