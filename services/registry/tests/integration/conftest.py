"""Registry nodes on the real PostgreSQL, driven over HTTP in-process (httpx + ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from yixian.contracts import OriginGroup, TopicNames
from yixian.registry.bootstrap import build_app, init_node, migrate
from yixian.registry.config import RegistrySettings
from yixian.runtime import KafkaSettings, create_pool

GUSHI, CHAOYANG = "411525", "110105"
NETWORK = frozenset({GUSHI, CHAOYANG, "110114", "350300"})
"""The brief's nodes: by default each test node is linked to the others."""
START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Node:
    """One registry: its settings, pool, HTTP client and the operator's key."""

    code: str
    settings: RegistrySettings
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    root_id: UUID
    operator_key: str
    clock: Clock
    keys: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        *,
        expect: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        headers.setdefault("Authorization", f"Bearer {key or self.operator_key}")
        response = await self.http.request(method, path, headers=headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    async def post(self, path: str, body: Any = None, key: str | None = None, **kw: Any) -> Any:
        return (
            await self.call("POST", path, key, json=body or {}, expect=kw.pop("expect", None), **kw)
        ).json()

    async def get(self, path: str, key: str | None = None, **kw: Any) -> Any:
        return (await self.call("GET", path, key, expect=kw.pop("expect", 200), **kw)).json()

    async def org(
        self, name: str, parent: UUID | None = None, kind: str = "branch", **extra: Any
    ) -> UUID:
        body = {"name": name, "kind": kind, "parent_id": str(parent or self.root_id), **extra}
        return UUID((await self.post("/v1/organizations", body, expect=201))["org_id"])

    async def key(self, name: str, role: str, org_id: UUID | None = None) -> str:
        body = {"name": name, "role": role, "org_id": str(org_id or self.root_id)}
        created = await self.post("/v1/api-keys", body, expect=201)
        self.keys[name] = created["api_key"]
        return str(created["api_key"])

    async def member(self, org_id: UUID, name: str = "张建国", **extra: Any) -> UUID:
        body = {"org_id": str(org_id), "name": name, "joined_on": "2008-07-01", **extra}
        return UUID((await self.post("/v1/members", body, expect=201))["member_id"])

    async def receive_origin_group(self, group: OriginGroup) -> None:
        """Store a partner's origin group as the sync service does (registry tests only)."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
                " origin_status, origin_group) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (movement_id) DO UPDATE SET origin_version = EXCLUDED.origin_version,"
                " origin_status = EXCLUDED.origin_status, origin_group = EXCLUDED.origin_group"
                " WHERE movements.origin_version < EXCLUDED.origin_version",
                group.movement_id,
                group.origin,
                group.destination.jurisdiction,
                group.member.member_id,
                group.version,
                group.status.value,
                group.model_dump(mode="json"),
            )

    async def outbox(self) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch("SELECT * FROM outbox ORDER BY id")


NodeFactory = Callable[..., Awaitable[Node]]
"""``make_node(code, partners=...)``; partners default to the rest of NETWORK."""


@pytest.fixture
async def make_node(
    make_database: Callable[[], Awaitable[str]], kafka_bootstrap: str, topic_names: TopicNames
) -> AsyncIterator[NodeFactory]:
    created: list[Node] = []

    async def create(code: str, partners: frozenset[str] | None = None) -> Node:
        settings = RegistrySettings(
            node=code,
            partners=",".join(sorted(NETWORK - {code} if partners is None else partners)),
            database_url=await make_database(),
            national_id_key=SecretStr(f"national-id-key-of-{code}-never-shared-0123"),  # its own
            kafka=KafkaSettings(
                bootstrap_servers=kafka_bootstrap, topic_namespace=topic_names.namespace
            ),
        )
        await migrate(settings)
        pool = await create_pool(settings.database_url, size=5)
        async with pool.acquire() as conn:
            root_id, key = await init_node(conn, code, root_name=f"{code} 党委")
        clock = Clock()
        app = build_app(settings, pool, clock)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{code}")
        node = Node(code, settings, pool, http, root_id, key, clock)
        created.append(node)
        return node

    yield create
    for node in created:
        await node.http.aclose()
        await node.pool.close()


@pytest.fixture
async def gushi(make_node: NodeFactory) -> Node:
    return await make_node(GUSHI)


@pytest.fixture
async def chaoyang(make_node: NodeFactory) -> Node:
    return await make_node(CHAOYANG)


def outflow(member_id: UUID, host: str = CHAOYANG, **extra: Any) -> dict[str, Any]:
    return {
        "member_id": str(member_id),
        "destination": {"jurisdiction": host, "place": "北京市朝阳区十八里店乡"},
        "period": {"departed_on": "2026-02-20", "expected_return_on": "2027-01-31"},
        "contact": {"phone": "+86 138 0000 0000"},
        "reason": {"kind": "work", "text": "在北京务工"},
        **extra,
    }
