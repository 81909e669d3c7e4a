"""Running a service until it is told to stop: SIGTERM and SIGINT end it cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from .logging import get_logger

log = get_logger(__name__)


async def wait_for_stop_signal() -> None:
    """Return when the process receives SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(service: str, main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Run ``main`` in a fresh event loop; log start and stop; return the exit code."""
    try:
        asyncio.run(main())
    except Exception:
        log.exception("service failed", service=service)
        return 1
    return 0
