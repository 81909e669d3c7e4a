"""The origin follows a host's forward (ADR 19; ``forward_policy = follow``).

The host writes only its own group: it says where the member really is
(``forwarded_to``). Only the origin writes a destination, so the origin's registry takes
the step: it looks for its registered movements the sync service found forwarded to a
linked partner, and follows each one through the same handler and runner as a secretary's
``POST /v1/movements/{id}/forward/follow`` (one transaction with its events and its audit
row, in the name ``registry:forward-follower``). Several registry instances may run it:
the movement's lock orders them, and the second finds nothing left to do. A forward
the registry may not follow (a refusal, audited) is not tried again until the host's group
changes; it stays in the origin's to-do queue for a secretary.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from uuid import UUID

import asyncpg

from yixian.contracts import new_traceparent
from yixian.registry.adapters.postgres import Movements
from yixian.registry.domain import DomainError
from yixian.registry.service_layer import handlers
from yixian.registry.service_layer.unit_of_work import Request, TransactionRunner
from yixian.runtime import get_logger

from .node_loop import NodeLoop

log = get_logger(__name__)
NAME = "forward-follower"
ACTION = "movement.forward.follow"
BATCH = 100
_IDENTITY = UUID("6f2b1f5e-2a7c-4d43-9d7e-6b1f0c7f1a19")


class ForwardFollower(NodeLoop):
    name = NAME
    identity = _IDENTITY

    def __init__(
        self,
        pool: asyncpg.Pool,
        runner: TransactionRunner,
        clock: Callable[[], datetime],
        interval: float,
    ) -> None:
        super().__init__(pool, runner, clock, interval)
        self.refused: set[tuple[UUID, int]] = set()
        """Forwards refused at a host group's version: not tried again at that version."""

    async def follow_once(self) -> int:
        """Follow every forward waiting now; how many were followed."""
        config = self.runner.config
        async with self.pool.acquire() as conn:
            found = await Movements(conn, config.node).forwards_to_follow(
                sorted(config.partners), BATCH + len(self.refused)
            )
        waiting = [f for f in found if f not in self.refused]
        self.refused &= set(found)  # forgotten once followed elsewhere or changed
        if not waiting:
            return 0
        principal = await self.principal()
        if principal is None:
            return 0
        followed = 0
        for movement_id, host_version in waiting:
            request = Request(principal=principal, now=self.clock(), traceparent=new_traceparent())
            try:
                result = await self.runner.run(
                    request,
                    action=ACTION,
                    target=str(movement_id),
                    work=partial(handlers.follow_forward, movement_id=movement_id, automatic=True),
                )
            except DomainError as refusal:  # audited by the runner; the queue still shows it
                self.refused.add((movement_id, host_version))
                log.warning(
                    "forward not followed",
                    movement_id=str(movement_id),
                    reason=refusal.message,
                    trace_id=request.trace_id,
                )
                continue
            if result.status == 201:
                followed += 1
                log.info(
                    "forward followed",
                    movement_id=str(movement_id),
                    next_movement_id=result.body["movement_id"],
                    host=result.body["host"],
                    trace_id=request.trace_id,
                )
        return followed

    once = follow_once
