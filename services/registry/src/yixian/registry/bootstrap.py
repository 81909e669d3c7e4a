"""Composition root of the registry: the one place its connections are built."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn

from yixian.runtime import get_logger, open_resources, wait_for_stop_signal

from .config import RegistrySettings
from .entrypoints.http import create_app

SERVICE = "registry"
log = get_logger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our own event loop: the service, not uvicorn, handles signals."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(settings: RegistrySettings) -> None:
    """Connect, serve the HTTP API, and run until SIGTERM or SIGINT."""
    async with open_resources(settings, client_id=f"yixian-{SERVICE}-{settings.node}") as res:
        app = create_app(node=settings.node, pool=res.pool, broker=res.broker)
        server = _EmbeddedServer(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        http = asyncio.create_task(server.serve(), name="http")
        while not server.started and not http.done():  # noqa: ASYNC110  (no started event)
            await asyncio.sleep(0.05)
        if http.done():
            await http  # re-raises why the server could not start
        port = server.servers[0].sockets[0].getsockname()[1]
        log.info("service started", http=f"http://{settings.http_host}:{port}")
        await wait_for_stop_signal()
        log.info("service stopping")
        server.should_exit = True
        await http
    log.info("service stopped")
