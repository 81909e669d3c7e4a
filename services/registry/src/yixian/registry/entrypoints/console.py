"""The registry's steps the operator's console runs (``yixian key``, ``yixian node root``).

The ``yixian`` command works over the node's database, as ``node init`` does; these steps go
through the same handlers and runner as the HTTP API's (one transaction with the audit row,
refusals audited too), in the name of the operator at the console, bound to the root.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid5

from yixian.contracts import new_traceparent
from yixian.registry.adapters.auth import ConsoleOperator, Role, api_keys_within
from yixian.registry.adapters.postgres import Organizations
from yixian.registry.domain import Organization
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Request, Result, TransactionRunner
from yixian.runtime import DbConnection

_IDENTITY = UUID("2d7c6a51-8f0e-4a4b-9c55-3f1e9b0d6e27")
"""The namespace of a console operator's key id (one per actor name)."""


class NoRoot(LookupError):
    """The node has no root organization yet (``yixian node init --root-name`` makes it)."""


async def root(conn: DbConnection) -> Organization | None:
    """The node's root organization, if it has one."""
    return await Organizations(conn).root()


async def active_keys(conn: DbConnection) -> int:
    """How many API keys of the node are not revoked."""
    found = await Organizations(conn).root()
    if found is None:
        return 0
    return sum(1 for key in await api_keys_within(conn, found.path) if key["revoked_at"] is None)


class Console:
    """The operator at the console, as the root's operator, through ``runner``."""

    def __init__(
        self, runner: TransactionRunner, actor: str, clock: Callable[[], datetime]
    ) -> None:
        self.runner = runner
        self.actor = actor
        self.clock = clock

    async def _request(self) -> Request:
        async with self.runner.pool.acquire() as conn:
            found = await root(conn)
        if found is None:
            raise NoRoot("this node has no root organization yet")
        principal = ConsoleOperator(
            key_id=uuid5(_IDENTITY, self.actor),
            name=self.actor,
            role=Role.OPERATOR,
            org_id=found.org_id,
            org_path=found.path,
            node_wide=True,
            console_actor=self.actor,
        )
        return Request(principal=principal, now=self.clock(), traceparent=new_traceparent())

    async def issue_key(self, *, name: str, role: Role, org_id: UUID | None) -> Result:
        """A new API key of ``role`` for ``org_id`` (default: the root), audited."""
        request = await self._request()
        return await self.runner.run(
            request,
            action="api_key.issue",
            target=None,
            work=partial(
                handlers.issue_api_key,
                name=name,
                role=role,
                org_id=org_id or request.principal.org_id,
            ),
        )

    async def revoke_key(self, key_id: UUID) -> Result:
        """Revoke an API key, audited (the root's last operator key stays)."""
        return await self.runner.run(
            await self._request(),
            action="api_key.revoke",
            target=str(key_id),
            work=partial(handlers.revoke_api_key, key_id=key_id),
        )

    async def keys(self) -> list[dict[str, Any]]:
        """Every key of the node, revoked ones too; never a secret."""
        async with self.runner.reading(await self._request()) as uow:
            return await queries.api_keys(uow)
