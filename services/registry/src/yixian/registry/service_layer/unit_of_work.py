"""One transaction per request: state, its events (outbox) and its audit row commit together.

An idempotency key makes a retried request return the first result and change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from pydantic_core import to_jsonable_python

from yixian.contracts import (
    ActivityScheduled,
    ContractModel,
    HostGroupChanged,
    OriginGroupChanged,
    ParticipationRecorded,
    TopicNames,
    make_event,
)
from yixian.record.outbox import Outbox
from yixian.registry.adapters.auth import Principal
from yixian.registry.adapters.postgres import (
    Activities,
    ApiKeys,
    AuditLog,
    Certificates,
    Feedback,
    IdempotencyKeys,
    Members,
    Movements,
    Organizations,
    Visitors,
)
from yixian.registry.domain import (
    Conflict,
    Deadlines,
    DomainError,
    InProgress,
    Movement,
    NotOwner,
    Side,
)
from yixian.registry.domain import HostGroupChanged as HostChangedEvent
from yixian.registry.domain import OriginGroupChanged as OriginChangedEvent
from yixian.registry.domain import ParticipationAdded as ParticipationEvent
from yixian.runtime import DbConnection

from .repositories import (
    ActivityRepository,
    ApiKeyRepository,
    AuditRepository,
    CertificateRepository,
    FeedbackRepository,
    MemberRepository,
    MovementRepository,
    OrganizationRepository,
    OutboxRepository,
    VisitorRepository,
)

T = TypeVar("T")
STREAM_LEASE = timedelta(minutes=2)
"""How long a streamed request's claim on its idempotency key lasts unless renewed."""
_UNKNOWN_FINGERPRINT = "0" * 64
"""The fingerprint of a streamed request until its whole body has been read."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What a registry knows about the node it serves."""

    node: str
    topics: TopicNames
    deadlines: Deadlines
    id_hash_key: bytes
    partners: frozenset[str]
    """The linked nodes (``YIXIAN_PARTNERS``): the only jurisdictions a movement may go to."""


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
    """What one request's handler works on: the node's repositories inside one transaction
    (committed or rolled back by whoever opened it), the node and the request."""

    config: NodeConfig
    request: Request
    organizations: OrganizationRepository
    members: MemberRepository
    movements: MovementRepository
    activities: ActivityRepository
    api_keys: ApiKeyRepository
    outbox: OutboxRepository
    audit: AuditRepository
    certificates: CertificateRepository
    feedback: FeedbackRepository
    visitors: VisitorRepository
    audit_detail: dict[str, Any] = field(default_factory=dict)
    nothing_changed: bool = False
    """Set by a command that found everything as it asked and changed nothing: no audit
    row (the audit log holds every change and every refusal, not every repetition)."""

    async def publish(self, movement: Movement) -> None:
        """Turn the movement's domain events into integration events in the outbox."""
        side = movement.side_of(self.config.node)
        partner = movement.host if side is Side.ORIGIN else movement.origin
        for event in movement.events:
            payload: ContractModel
            if isinstance(event, OriginChangedEvent):
                if side is not Side.ORIGIN:
                    raise NotOwner("a host node never publishes an origin group")
                payload = OriginGroupChanged(group=event.group, step=event.step)
            elif isinstance(event, HostChangedEvent):
                if side is not Side.HOST:
                    raise NotOwner("an origin node never publishes a host group")
                payload = HostGroupChanged(group=event.group, step=event.step)
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

    async def publish_to_partner(
        self, payload: ContractModel, partner: str, *, subject: UUID
    ) -> None:
        """An event for one partner only, keyed by ``subject`` (a visitor's claim, ADR 21):
        not on the local topic, as no service of this node acts on it."""
        node = self.config.node
        envelope = make_event(
            payload,
            node=node,
            time=self.request.now,
            traceparent=self.request.traceparent,
            subject=str(subject),
            correlationid=subject,
        )
        await self.outbox.add(
            envelope, local_topic=None, pair=(self.config.topics.pair(node, partner), partner)
        )

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


def on_connection(conn: DbConnection, config: NodeConfig, request: Request) -> UnitOfWork:
    """A unit of work on PostgreSQL: the repositories on one connection, in the transaction
    its caller holds."""
    return UnitOfWork(
        config=config,
        request=request,
        organizations=Organizations(conn),
        members=Members(conn),
        movements=Movements(conn, config.node),
        activities=Activities(conn),
        api_keys=ApiKeys(conn),
        outbox=Outbox(conn),
        audit=AuditLog(conn),
        certificates=Certificates(conn),
        feedback=Feedback(conn),
        visitors=Visitors(conn),
    )


def fingerprint(node_key: bytes, method: str, path: str) -> hmac.HMAC:
    """A keyed digest of a request, to be fed its body: what ``idempotency_keys`` keeps to
    tell a retry from another request. Keyed with a key derived from the node's own
    secret, so a copy of the table cannot be used to test guesses of what a body held."""
    key = hmac.new(node_key, b"yixian idempotency fingerprint", hashlib.sha256).digest()
    digest = hmac.new(key, digestmod=hashlib.sha256)
    digest.update(method.encode() + b" " + path.encode() + b"\n")
    return digest


def request_hash(node_key: bytes, method: str, path: str, body: bytes) -> str:
    digest = fingerprint(node_key, method, path)
    digest.update(body)
    return digest.hexdigest()


class TransactionRunner:
    """Runs one command: idempotency, the work, the audit row, all in one transaction."""

    def __init__(self, pool: asyncpg.Pool, config: NodeConfig) -> None:
        self.pool = pool
        self.config = config

    @asynccontextmanager
    async def reading(self, request: Request) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            yield on_connection(conn, self.config, request)

    @asynccontextmanager
    async def writing(self, request: Request) -> AsyncIterator[UnitOfWork]:
        """One transaction of a request that spans several (a streamed import), with no
        idempotency claim or audit row of its own."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield on_connection(conn, self.config, request)

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
                keys = IdempotencyKeys(conn)
                if request.idempotency_key is not None:
                    replay = await self._claim_key(keys, request)
                    if replay is not None:
                        return replay
                uow = on_connection(conn, self.config, request)
                result = await work(uow)
                if not uow.nothing_changed:
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
                    await keys.finish(
                        principal.actor,
                        request.idempotency_key,
                        result.status,
                        to_jsonable_python(result.body),
                    )
                return result
        except DomainError as refusal:
            await self.record_refusal(request, action=action, target=target, refusal=refusal)
            raise

    async def _claim_key(self, keys: IdempotencyKeys, request: Request) -> Result | None:
        """Claim the idempotency key, or return the first request's result."""
        actor, key = request.principal.actor, request.idempotency_key
        assert key is not None
        if await keys.claim(actor, key, request.body_hash):
            return None
        row = await keys.first(actor, key)
        assert row is not None
        if row["request_hash"] != request.body_hash:
            raise Conflict(
                "this Idempotency-Key was used for a different request", field="Idempotency-Key"
            )
        return Result(status=row["status"], body=row["response"])

    # -- a request that spans several transactions (a streamed import) ---------------------

    async def claim_stream(self, request: Request) -> tuple[str, Result] | None:
        """Claim the idempotency key of a streamed request before it starts.

        None: this request runs (a fresh key, or one whose first request died and let its
        lease run out). Otherwise the first request's fingerprint and result, for the caller
        to compare once it has read this body. InProgress: the first request still runs.
        """
        key, actor = request.idempotency_key, request.principal.actor
        assert key is not None
        async with self.pool.acquire() as conn:
            keys = IdempotencyKeys(conn)
            if await keys.claim_leased(actor, key, _UNKNOWN_FINGERPRINT, STREAM_LEASE):
                return None
            row = await keys.first(actor, key)
        if row is None or row["status"] is None:
            raise InProgress(
                "the first request with this Idempotency-Key is still running; retry later",
                field="Idempotency-Key",
            )
        return row["request_hash"], Result(row["status"], row["response"])

    async def renew_stream(self, request: Request) -> None:
        """Keep the claim of a streamed request that is still running."""
        assert request.idempotency_key is not None
        async with self.pool.acquire() as conn:
            await IdempotencyKeys(conn).renew(
                request.principal.actor, request.idempotency_key, STREAM_LEASE
            )

    async def finish_stream(self, request: Request, request_hash: str, result: Result) -> None:
        assert request.idempotency_key is not None
        async with self.pool.acquire() as conn:
            await IdempotencyKeys(conn).finish(
                request.principal.actor,
                request.idempotency_key,
                result.status,
                to_jsonable_python(result.body),
                request_hash=request_hash,
            )

    async def release_stream(self, request: Request) -> None:
        """Let a retry run a streamed request that stopped before it finished."""
        assert request.idempotency_key is not None
        async with self.pool.acquire() as conn:
            await IdempotencyKeys(conn).release(request.principal.actor, request.idempotency_key)

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
        refusal.audited = True

    async def record_unanswered(
        self, *, actor: str, role: str | None, action: str, outcome: str, detail: dict[str, Any]
    ) -> None:
        """The audit row of a request refused before it reached a handler (no key, a bad
        key, a malformed request)."""
        async with self.pool.acquire() as conn:
            await AuditLog(conn).record(
                actor=actor,
                role=role,
                action=action,
                target=None,
                outcome=outcome,
                detail=detail,
                trace_id=None,
            )
