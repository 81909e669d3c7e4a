"""Composition root of the registry: the one place its connections are built."""

from __future__ import annotations

import asyncio

import uvicorn

from yixian.runtime import get_logger, open_resources, wait_for_stop_signal

from .config import RegistrySettings
from .entrypoints.http import create_app

SERVICE = "registry"
log = get_logger(__name__)


async def serve(settings: RegistrySettings) -> None:
    """Connect, serve the HTTP API, and run until SIGTERM or SIGINT."""
    async with open_resources(settings, client_id=f"yixian-{SERVICE}-{settings.node}") as res:
        app = create_app(node=settings.node, pool=res.pool, broker=res.broker)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        http = asyncio.create_task(server._serve(), name="http")  # noqa: SLF001
        while not server.started and not http.done():
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
