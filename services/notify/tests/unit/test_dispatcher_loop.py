"""The dispatcher's loop outlives whatever one round throws at it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from asyncpg.exceptions import InternalClientError

from yixian.notify.domain.policy import QuietHours
from yixian.notify.service_layer.dispatcher import Dispatcher


class FlakyDispatcher(Dispatcher):
    """A round that fails as asyncpg does after a database crash, then rounds that work."""

    def __init__(self, stop: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop = stop
        self.rounds = 0

    async def dispatch_once(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise InternalClientError("cannot switch to state 12; another operation is in progress")
        if self.rounds == 3:
            self.stop.set()
        return 1


async def test_an_unexpected_error_in_one_round_does_not_end_the_loop() -> None:
    stop = asyncio.Event()
    dispatcher = FlakyDispatcher(
        stop,
        pool=None,
        channels={},
        rates={},
        quiet=QuietHours(time(0, 0), time(0, 0), ZoneInfo("Asia/Shanghai")),
        clock=lambda: datetime.now(UTC),
    )
    await asyncio.wait_for(dispatcher.run(stop, idle=0.01), 5)
    assert dispatcher.rounds == 3


class IdleDispatcher(Dispatcher):
    """Rounds that find nothing due; the first pending notice is due at ``due``."""

    def __init__(self, due: datetime | None, **kwargs: Any) -> None:
        super().__init__(pool=self, **kwargs)  # type: ignore[arg-type]  # it answers fetchval
        self.due = due
        self.rounds: list[float] = []

    async def fetchval(self, sql: str) -> datetime | None:
        assert "min(next_attempt_at)" in sql
        return self.due

    async def dispatch_once(self) -> int:
        self.rounds.append(asyncio.get_running_loop().time())
        return 0


def _idle(due: datetime | None, now: datetime) -> IdleDispatcher:
    return IdleDispatcher(
        due,
        channels={},
        rates={},
        quiet=QuietHours(time(0, 0), time(0, 0), ZoneInfo("Asia/Shanghai")),
        clock=lambda: now,
    )


async def _rounds_until(dispatcher: IdleDispatcher, count: int, within: float) -> None:
    async with asyncio.timeout(within):
        while len(dispatcher.rounds) < count:
            await asyncio.sleep(0.005)


async def test_an_idle_dispatcher_waits_for_the_first_due_notice_or_a_wake() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    stop = asyncio.Event()
    nothing = _idle(None, now)  # nothing pending: the longest wait, unless woken
    running = asyncio.create_task(nothing.run(stop, idle=0.01, most=60))
    await _rounds_until(nothing, 1, 5)
    await asyncio.sleep(0.2)
    assert len(nothing.rounds) == 1
    nothing.wake()  # notices planned
    await _rounds_until(nothing, 2, 1)
    stop.set()
    await asyncio.wait_for(running, 1)  # a stop ends the wait at once

    soon = _idle(now + timedelta(seconds=0.3), now)  # a retry due in 0.3 s
    stop = asyncio.Event()
    running = asyncio.create_task(soon.run(stop, idle=0.01, most=60))
    await _rounds_until(soon, 2, 5)
    assert 0.25 <= soon.rounds[1] - soon.rounds[0] < 2
    stop.set()
    await asyncio.wait_for(running, 1)

    overdue = _idle(now - timedelta(hours=1), now)  # held by another's lease: at least idle
    stop = asyncio.Event()
    running = asyncio.create_task(overdue.run(stop, idle=0.05, most=60))
    await _rounds_until(overdue, 3, 5)
    assert overdue.rounds[2] - overdue.rounds[1] >= 0.04
    stop.set()
    await asyncio.wait_for(running, 1)
