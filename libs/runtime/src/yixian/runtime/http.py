"""Serving a service's HTTP endpoints with uvicorn inside the service's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


class _EmbeddedServer(uvicorn.Server):
    """The service, not uvicorn, handles signals; and uvicorn's clock ticks once a second,
    not ten times, so that an idle service does not wake for nothing."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    async def main_loop(self) -> None:
        # uvicorn's tick refreshes the Date header on each tenth count (each second) and
        # looks at should_exit; a stop is told at once through ``stopping``
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 1.0)

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningHttp:
    server: _EmbeddedServer
    task: asyncio.Task[None]
    url: str

    async def stop(self) -> None:
        self.server.should_exit = True
        self.server.stopping.set()
        await self.task


async def start_http(app: Any, host: str, port: int) -> RunningHttp:
    """Start serving ``app``; return once it listens (port 0 picks a free port)."""
    server = _EmbeddedServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="httptools",  # the C parser, not the pure-Python h11
        )
    )
    task = asyncio.create_task(server.serve(), name="http")
    while not server.started and not task.done():  # noqa: ASYNC110  (uvicorn has no started event)
        await asyncio.sleep(0.05)
    if task.done():
        await task  # re-raises why the server could not start
        raise RuntimeError("the HTTP server stopped at start-up")
    bound = server.servers[0].sockets[0].getsockname()[1]
    return RunningHttp(server, task, f"http://{host}:{bound}")


def route_path(scope: Mapping[str, Any]) -> str:
    """The request's path within the app: ``scope["path"]`` less the ``root_path`` a node
    host serves the node's app under (``/nodes/<code>``), so a rule that names a path (the
    streamed import, the audit log's action, an idempotency fingerprint) holds alike for a
    node served alone and on a host."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path
