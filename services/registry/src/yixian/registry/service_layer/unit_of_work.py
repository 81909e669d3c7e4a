"""One transaction per request: state, its events (outbox) and its audit row commit together.

An idempotency key makes a retried request return the first result and change nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from yixian.contracts import (
    ActivityScheduled,
    ContractModel,
    HostGroupChanged,
    OriginGroupChanged,
    ParticipationRecorded,
    TopicNames,
    make_event,
)
from yixian.registry.adapters.auth import Principal
from yixian.registry.adapters.postgres import AuditLog, Members, Movements, Organizations
from yixian.registry.domain import (
    Conflict,
    Deadlines,
    DomainError,
    Movement,
    NotOwner,
    Side,
)
from yixian.registry.domain import HostGroupChanged as HostChangedEvent
from yixian.registry.domain import OriginGroupChanged as OriginChangedEvent
from yixian.registry.domain import ParticipationAdded as ParticipationEvent
from yixian.runtime import DbConnection
from yixian.runtime.outbox import Outbox

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What a registry knows about the node it serves."""

    node: str
    topics: TopicNames
    deadlines: Deadlines
    id_hash_key: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """Who asks, when, and under which trace."""

    principal: Principal
    now: datetime
    traceparent: str
    idempotency_key: str | None = None
    body_hash: str | None = None
    caller_traceparent: str | None = None
    """The caller's span, which this request's span continues (None: a new trace)."""

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]


@dataclass
class Result:
    status: int
    body: dict[str, Any]


class Denied(DomainError):
    """The principal's role or subtree does not allow this."""


@dataclass
class UnitOfWork:
    conn: DbConnection
    config: NodeConfig
    request: Request
    audit_detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.organizations = Organizations(self.conn)
        self.members = Members(self.conn)
        self.movements = Movements(self.conn, self.config.node)
        self.outbox = Outbox(self.conn)
        self.audit = AuditLog(self.conn)

    async def publish(self, movement: Movement) -> None:
        """Turn the movement's domain events into integration events in the outbox."""
        side = movement.side_of(self.config.node)
        partner = movement.host if side is Side.ORIGIN else movement.origin
        for event in movement.events:
            payload: ContractModel
            if isinstance(event, OriginChangedEvent):
                if side is not Side.ORIGIN:
                    raise NotOwner("a host node never publishes an origin group")
                payload = OriginGroupChanged(group=event.group)
            elif isinstance(event, HostChangedEvent):
                if side is not Side.HOST:
                    raise NotOwner("an origin node never publishes a host group")
                payload = HostGroupChanged(group=event.group)
            elif isinstance(event, ParticipationEvent):
                p = event.participation
                payload = ParticipationRecorded(
                    participation_id=p.participation_id,
                    movement_id=p.movement_id,
                    host=p.host,
                    host_org=p.host_org,
                    activity_id=p.activity_id,
                    kind=p.kind,
                    title=p.title,
                    attended_at=p.attended_at,
                    recorded_at=p.recorded_at,
                    recorded_by=p.recorded_by,
                )
            else:  # pragma: no cover - the union is closed
                raise TypeError(f"unknown domain event {event!r}")
            await self._queue(payload, movement.movement_id, partner)
        movement.events.clear()

    async def publish_activity(self, activity: ActivityScheduled) -> None:
        envelope = make_event(
            activity,
            node=self.config.node,
            time=self.request.now,
            traceparent=self.request.traceparent,
            subject=str(activity.activity_id),
        )
        await self.outbox.add(
            envelope, local_topic=self.config.topics.local(self.config.node), pair=None
        )

    async def _queue(self, payload: ContractModel, movement_id: UUID, partner: str) -> None:
        node = self.config.node
        envelope = make_event(
            payload,
            node=node,
            time=self.request.now,
            traceparent=self.request.traceparent,
            subject=str(movement_id),
            correlationid=movement_id,
        )
        await self.outbox.add(
            envelope,
            local_topic=self.config.topics.local(node),
            pair=(self.config.topics.pair(node, partner), partner),
        )


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class TransactionRunner:
    """Runs one command: idempotency, the work, the audit row, all in one transaction."""

    def __init__(self, pool: asyncpg.Pool, config: NodeConfig) -> None:
        self.pool = pool
        self.config = config

    @asynccontextmanager
    async def reading(self, request: Request) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            yield UnitOfWork(conn, self.config, request)

    async def run(
        self,
        request: Request,
        *,
        action: str,
        target: str | None,
        work: Callable[[UnitOfWork], Awaitable[Result]],
    ) -> Result:
        principal = request.principal
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if request.idempotency_key is not None:
                    replay = await self._claim_key(conn, request)
                    if replay is not None:
                        return replay
                uow = UnitOfWork(conn, self.config, request)
                result = await work(uow)
                await uow.audit.record(
                    actor=principal.actor,
                    role=principal.role.value,
                    action=action,
                    target=target or result.body.get("target_id"),
                    outcome="ok",
                    detail=uow.audit_detail,
                    trace_id=request.trace_id,
                )
                if request.idempotency_key is not None:
                    await conn.execute(
                        "UPDATE idempotency_keys SET status = $3, response = $4"
                        " WHERE actor = $1 AND key = $2",
                        principal.actor,
                        request.idempotency_key,
                        result.status,
                        json.loads(json.dumps(result.body, default=str)),
                    )
                return result
        except DomainError as refusal:
            await self.record_refusal(request, action=action, target=target, refusal=refusal)
            raise

    async def _claim_key(self, conn: DbConnection, request: Request) -> Result | None:
        """Claim the idempotency key, or return the first request's result."""
        claimed = await conn.fetchval(
            "INSERT INTO idempotency_keys (actor, key, request_hash) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            request.principal.actor,
            request.idempotency_key,
            request.body_hash,
        )
        if claimed:
            return None
        row = await conn.fetchrow(
            "SELECT request_hash, status, response FROM idempotency_keys"
            " WHERE actor = $1 AND key = $2",
            request.principal.actor,
            request.idempotency_key,
        )
        assert row is not None
        if row["request_hash"] != request.body_hash:
            raise Conflict(
                "this Idempotency-Key was used for a different request", field="Idempotency-Key"
            )
        return Result(status=row["status"], body=row["response"])

    async def record_refusal(
        self, request: Request, *, action: str, target: str | None, refusal: DomainError
    ) -> None:
        outcome = "denied" if isinstance(refusal, Denied) else "refused"
        async with self.pool.acquire() as conn:
            await AuditLog(conn).record(
                actor=request.principal.actor,
                role=request.principal.role.value,
                action=action,
                target=target,
                outcome=outcome,
                detail={"reason": refusal.message, "field": refusal.field},
                trace_id=request.trace_id,
            )
