"""Running a service until it is told to stop: SIGTERM and SIGINT end it cleanly."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

from .logging import get_logger

log = get_logger(__name__)


class BackgroundTaskEnded(RuntimeError):
    """A loop that should run for the service's life ended: the service must restart."""


async def wait_for_stop_signal(*tasks: asyncio.Task[Any]) -> None:
    """Return when the process receives SIGTERM or SIGINT.

    ``tasks`` are the service's background loops: if one ends first (each catches and logs
    its own errors, so it should not), this raises, the service exits with an error and its
    supervisor starts it again, rather than it running on with a part missing.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and not stop.is_set():
                failure = None if task.cancelled() else task.exception()
                raise BackgroundTaskEnded(f"{task.get_name()} ended: {failure!r}") from failure
    finally:
        waiter.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(service: str, main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Run ``main`` in a fresh uvloop event loop (libuv's: several times cheaper per socket
    operation than the standard loop, and every request is a few of them); return the exit
    code."""
    # Everything imported so far lives as long as the process: out of the collector's sight,
    # full collections stop walking it again and again under load.
    gc.freeze()
    try:
        uvloop.run(main())
    except Exception:
        log.exception("service failed", service=service)
        return 1
    return 0
