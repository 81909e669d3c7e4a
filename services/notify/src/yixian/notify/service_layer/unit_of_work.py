"""One transaction of planning: what was seen, the notices planned, and the node's record
read alongside, committed together (a consumer's batch, or a tick of the clock)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from .repositories import NodeRecord, NoticeLog, SeenGroups


@dataclass(frozen=True, slots=True)
class UnitOfWork:
    """The repositories of one transaction (committed or rolled back by whoever opened it)."""

    seen: SeenGroups
    notices: NoticeLog
    record: NodeRecord


Transactions = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
"""Opens a unit of work in a new transaction: committed when the block ends, rolled back
when it raises (``bootstrap.transactions`` on PostgreSQL; ``FakeTransactions`` in memory)."""
