"""What the registry's own loops beside the API share (the forward follower, the claim
answerer): a node-wide operator identity of their own, requests through the same runner as
the API's, and a pace that a failure of the database does not stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid5

import asyncpg

from yixian.registry.adapters.auth import NodeProcess, Role
from yixian.registry.adapters.postgres import Organizations
from yixian.registry.service_layer.unit_of_work import TransactionRunner
from yixian.runtime import get_logger

log = get_logger(__name__)


class NodeLoop:
    """A loop of the registry's: ``once`` does what is waiting now, ``run`` repeats it."""

    name: str
    """The loop's actor name (``registry:<name>`` in the audit log)."""
    identity: UUID
    """The namespace of its key id, one per node."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        runner: TransactionRunner,
        clock: Callable[[], datetime],
        interval: float,
    ) -> None:
        self.pool = pool
        self.runner = runner
        self.clock = clock
        self.interval = interval

    async def once(self) -> int:
        raise NotImplementedError

    async def principal(self) -> NodeProcess | None:
        """The loop as a node-wide operator at the root (None: the node has no root yet)."""
        async with self.pool.acquire() as conn:
            root = await Organizations(conn).root()
        if root is None:
            return None
        return NodeProcess(
            key_id=uuid5(self.identity, self.runner.config.node),
            name=self.name,
            role=Role.OPERATOR,
            org_id=root.org_id,
            org_path=root.path,
            node_wide=True,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Repeat ``once`` until ``stop`` is set; a failure is logged and retried."""
        while not stop.is_set():
            try:
                await self.once()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("registry loop failed; retrying", loop=self.name, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
