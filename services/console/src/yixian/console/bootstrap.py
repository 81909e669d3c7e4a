"""Composition root of the console: the one place its connections and parts are built."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from fastapi import FastAPI

from yixian.record import schema
from yixian.registry import bootstrap as registry
from yixian.runtime import create_pool, get_logger, wait_for_stop_signal
from yixian.runtime.divisions import division_name
from yixian.runtime.http import start_http
from yixian.runtime.service import readiness_checks
from yixian.sync import bootstrap as sync

from .adapters.node import NodeOperations
from .adapters.services import Endpoints
from .adapters.sessions import Sessions
from .config import ConsoleSettings
from .entrypoints.dependencies import ConsoleParts
from .entrypoints.http import create_app, templates

SERVICE = "console"
log = get_logger(__name__)


def endpoints(
    settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None
) -> Endpoints:
    """Clients of the node's services (``transport``: tests reach them in-process)."""

    def client(url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=url, timeout=settings.service_timeout_seconds, transport=transport
        )

    urls = {"registry": settings.registry_url, "sync": settings.sync_url}
    if settings.notify_url:
        urls["notify"] = settings.notify_url
    return Endpoints(
        registry=client(settings.registry_url),
        sync=client(settings.sync_url),
        notify=client(settings.notify_url) if settings.notify_url else None,
        urls=urls,
    )


def build_app(settings: ConsoleSettings, pool: asyncpg.Pool, services: Endpoints) -> FastAPI:
    parts = ConsoleParts(
        node=settings.node,
        node_name=settings.node_name or division_name(settings.node) or settings.node,
        partners=tuple(sorted(settings.partner_codes)),
        endpoints=services,
        operations=NodeOperations(pool, settings, trace_timeout=settings.service_timeout_seconds),
        sessions=Sessions(
            idle=settings.console_session_idle_minutes * 60,
            lifetime=settings.console_session_hours * 3600,
        ),
        templates=templates(),
        secure_cookie=settings.console_secure_cookie,
    )
    schemas = [  # the node's record, the registry's keys and audit log, sync's dead letters
        *schema.with_node_schema(registry.SERVICE, registry.MIGRATIONS),
        (sync.SERVICE, sync.MIGRATIONS),
    ]
    return create_app(parts, readiness_checks(pool, settings.kafka, schemas))


async def migrate(settings: ConsoleSettings) -> list[str]:
    """The console owns no tables: nothing to migrate."""
    return []


async def serve(settings: ConsoleSettings) -> None:
    """Serve the console until SIGTERM or SIGINT."""
    pool = await create_pool(settings.database_url, size=4)
    services = endpoints(settings)
    try:
        app = build_app(settings, pool, services)
        http = await start_http(app, settings.http_host, settings.http_port)
        log.info("service started", http=http.url, registry=settings.registry_url)
        await wait_for_stop_signal()
        await asyncio.wait_for(http.stop(), settings.shutdown_timeout)
    finally:
        await services.aclose()
        await pool.close()
