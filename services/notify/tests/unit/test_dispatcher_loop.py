"""The dispatcher's loop outlives whatever one round throws at it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
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
