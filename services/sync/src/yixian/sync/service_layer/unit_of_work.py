"""One transaction of applying: a consumer batch's records, or one step of a dead letter's
retry, committed together or not at all.

``adapters/unit_of_work.py`` opens them on the node's PostgreSQL database;
``tests/unit/fakes.py`` in memory.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .repositories import Store


class UnitOfWork(Protocol):
    """The store of one transaction (committed or rolled back by whoever opened it)."""

    @property
    def store(self) -> Store: ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: what the store wrote inside it is undone if the block
        raises, and the transaction goes on (the store's reads kept for the batch, its
        notes of inbox outcomes included, are not)."""


class Transactions(Protocol):
    """Opens units of work, each in a new transaction: committed when the block ends,
    rolled back when it raises."""

    @property
    def transient(self) -> tuple[type[BaseException], ...]:
        """Failures of the database itself, that say nothing about the records: the batch
        is applied again later, never dead-lettered."""

    def __call__(self, *, deferred: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work; ``deferred``: its store holds the append-only writes until
        ``flush`` (``Store``)."""
