"""Pytest fixtures over the real local stack.

- ``local_stack`` (session): the running stack, brought up if it is not running and
  stopped again at the end if this session started it (``YIXIAN_STACK_KEEP=1`` keeps it);
- ``database_url``: a fresh, empty database for one test, dropped afterwards;
- ``topic_names``: topic names in a namespace of their own, so tests never share topics
  (their topics are deleted at the end of the session: a broker restarts in seconds only
  while it keeps few partitions);
- ``kafka_bootstrap``: the broker's address.

Tests using them must be marked ``integration`` or ``e2e``; every other test is a
``unit`` test and may do no I/O.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from uuid import uuid4

import asyncpg
import pytest

from yixian.contracts import TopicNames

from .stack import LocalStack

STACK_FIXTURES = frozenset(
    {"local_stack", "database_url", "make_database", "topic_names", "kafka_bootstrap"}
)
REAL_STACK_MARKERS = frozenset({"integration", "e2e"})
NOT_UNIT = REAL_STACK_MARKERS | {"deploy"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        markers = {m.name for m in item.iter_markers()}
        if markers & NOT_UNIT:
            continue
        uses_stack = STACK_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_stack:
            raise pytest.UsageError(
                f"{item.nodeid} uses {sorted(uses_stack)} but is not marked integration or e2e"
            )
        item.add_marker(pytest.mark.unit)


_NAMESPACES: set[str] = set()
"""The topic namespaces this session's tests used."""


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The running stack. Under pytest-xdist every worker asks for it: one starts what is
    missing while the others wait on a lock, and no worker stops it (another may still be
    using it); ``make test`` starts it before the workers and stops it after them."""
    stack = LocalStack.from_env()
    stack.config.state_dir.mkdir(parents=True, exist_ok=True)
    with (stack.config.state_dir / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = stack.up(report=lambda _line: None)
    yield stack
    if _NAMESPACES and stack.kafka.answers():
        with contextlib.suppress(Exception):  # best effort: the tests have their results
            stack.kafka.delete_topics(f"{namespace}." for namespace in _NAMESPACES)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if started and not worker and not os.environ.get("YIXIAN_STACK_KEEP"):
        for name in started:
            getattr(stack, name).stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    return local_stack.config.kafka_bootstrap


@contextlib.asynccontextmanager
async def fresh_databases(stack: LocalStack) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A factory of fresh, empty databases on the stack's server; all dropped at the end."""
    admin_dsn = stack.config.database_dsn("postgres")
    created: list[str] = []

    async def create() -> str:
        name = f"test_{uuid4().hex[:16]}"
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return stack.config.database_dsn(name)

    yield create
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def make_database(local_stack: LocalStack) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A factory of fresh, empty databases (for tests with several nodes); all dropped after."""
    async with fresh_databases(local_stack) as create:
        yield create


@pytest.fixture
async def database_url(make_database: Callable[[], Awaitable[str]]) -> str:
    """A fresh, empty database for one test, dropped afterwards."""
    return await make_database()


@pytest.fixture
def topic_names(local_stack: LocalStack) -> TopicNames:
    names = TopicNames(namespace=f"t{uuid4().hex[:12]}")
    _NAMESPACES.add(names.namespace)
    return names
