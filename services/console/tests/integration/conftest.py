"""A node's console on the real PostgreSQL (and Kafka, for the node's status), with the
node's registry, sync and notify APIs served in-process (httpx + ASGI): one node per
module, a fresh browser (cookie jar) per test."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
import structlog
from pydantic import SecretStr

from yixian.console.adapters.services import Endpoints
from yixian.console.bootstrap import build_app
from yixian.console.config import ConsoleSettings
from yixian.notify import bootstrap as notify
from yixian.notify.entrypoints.http import create_app as notify_app
from yixian.record import schema
from yixian.registry import bootstrap as registry
from yixian.registry.config import RegistrySettings
from yixian.runtime import KafkaSettings, create_pool
from yixian.sync import bootstrap as sync
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.entrypoints.http import create_app as sync_app

GUSHI, CHAOYANG = "411525", "110105"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SIGN_IN = re.compile(r'name="sign_in_token" value="([^"]+)"')


async def _ready() -> dict[str, str]:
    return {"database": "ok"}


@dataclass
class ConsoleNode:
    """Gushi's node: its database, its registry (for setting things up as a caller would)
    and its console's app."""

    pool: asyncpg.Pool
    registry: httpx.AsyncClient
    console: Any
    root_id: UUID
    operator_key: str
    people: int = 0

    async def api(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        response = await self.registry.request(
            method, path, json=body, headers={"Authorization": f"Bearer {key or self.operator_key}"}
        )
        assert response.status_code < 300, response.text
        return response.json()

    async def key(self, role: str, org: UUID | None = None) -> tuple[str, UUID]:
        created = await self.api(
            "POST",
            "/v1/api-keys",
            {"name": f"{role}-{uuid4().hex[:8]}", "role": role, "org_id": str(org or self.root_id)},
        )
        return created["api_key"], UUID(created["key_id"])

    async def audit(self, **where: Any) -> list[asyncpg.Record]:
        rows = await self.pool.fetch("SELECT * FROM audit_log ORDER BY id")
        return [r for r in rows if all(r[k] == v for k, v in where.items())]

    def browser(self) -> Browser:
        """A new person, at an address of their own (sign-in is limited per address)."""
        self.people += 1
        address = f"10.0.{self.people // 250}.{self.people % 250 + 1}"
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.console, client=(address, 40000)),
            base_url="http://console",
        )
        return Browser(client)


@dataclass
class Browser:
    """A person at the console: a cookie jar and the CSRF token of the last page read."""

    http: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        response = await self.http.get(path, **kw)
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def post(
        self, path: str, form: dict[str, str] | None = None, *, csrf: bool = True, **kw: Any
    ) -> httpx.Response:
        data = {**({"csrf": self.csrf} if csrf else {}), **(form or {})}
        return await self.http.post(path, data=data, **kw)

    async def sign_in(self, key: str) -> httpx.Response:
        page = await self.http.get("/sign-in")
        token = _SIGN_IN.search(page.text)
        assert token, page.text
        response = await self.http.post(
            "/sign-in", data={"sign_in_token": token.group(1), "api_key": key, "next": "/queues"}
        )
        if response.status_code == 303:
            await self.get("/queues")  # the session's CSRF token
        return response

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture(scope="module", autouse=True)
def plain_tracebacks() -> Any:
    """An error's traceback logged as plain text, as the services log it (structlog's
    development default draws every frame's locals, seconds for a web app's stack)."""
    before = structlog.get_config()["processors"]
    if not isinstance(before[-1], structlog.dev.ConsoleRenderer):
        yield
        return
    plain = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(processors=[*before[:-1], plain])
    yield
    structlog.configure(processors=before)


@pytest.fixture(scope="module")
async def node(local_stack: Any) -> AsyncIterator[ConsoleNode]:
    """One node (Gushi, linked to Chaoyang) for the whole module, in a database of its own."""
    admin = local_stack.config.database_dsn("postgres")
    name = f"test_{uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = local_stack.config.database_dsn(name)
    kafka = KafkaSettings(
        bootstrap_servers=local_stack.config.kafka_bootstrap, topic_namespace=f"t{uuid4().hex[:12]}"
    )
    for service in (registry, sync, notify):
        await schema.migrate(url, service.SERVICE, service.MIGRATIONS)
    pool = await create_pool(url, size=6)
    async with pool.acquire() as conn:
        root_id, key = await registry.init_node(conn, GUSHI, root_name="固始县委组织部")
    registry_settings = RegistrySettings(
        node=GUSHI,
        partners=CHAOYANG,
        database_url=url,
        national_id_key=SecretStr("national-id-key-of-the-console-test-node-0123"),
        kafka=kafka,
    )
    console_settings = ConsoleSettings(
        node=GUSHI, partners=CHAOYANG, database_url=url, kafka=kafka, notify_url=None
    )

    def client(app: Any, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")

    registry_client = client(registry.build_app(registry_settings, pool), "registry")
    endpoints = Endpoints(
        registry=client(registry.build_app(registry_settings, pool), "registry"),
        sync=client(
            sync_app(
                node=GUSHI,
                pool=pool,
                keeper=sync.build_keeper(console_settings, pool),
                metrics=SyncMetrics(),
                readiness=_ready,
            ),
            "sync",
        ),
        notify=client(notify_app(node=GUSHI, pool=pool, readiness=_ready), "notify"),
    )
    console = build_app(console_settings, pool, endpoints)
    yield ConsoleNode(pool, registry_client, console, root_id, key)
    await registry_client.aclose()
    await endpoints.aclose()
    await pool.close()
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@pytest.fixture
async def browser(node: ConsoleNode) -> AsyncIterator[Browser]:
    person = node.browser()
    yield person
    await person.aclose()
