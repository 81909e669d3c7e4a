"""The console's screens on a node of 200,000 movements: a database filled as a large
county has it (``county``), the node's registry, sync, notify and console served
in-process (httpx over ASGI, as the console's own tests do), an operator of the whole node
and a secretary of one township signed in through the console's sign-in form. Each screen
and each registry endpoint behind the screens is asked for several times: p50 and p95,
beside floors measured in the same run on the same database: the round trip of a
primary-key ``SELECT`` (of any request that reads it), and a bare count of the index the
queues (and the statistics) count from, no rule evaluated."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
from pydantic import SecretStr

from yixian.console.adapters.services import Endpoints
from yixian.console.bootstrap import build_app as console_app
from yixian.console.config import ConsoleSettings
from yixian.contracts import OPEN_ORIGIN_STATUSES
from yixian.localstack import LocalStack
from yixian.notify import bootstrap as notify
from yixian.notify.entrypoints.http import create_app as notify_app
from yixian.record import schema
from yixian.registry import bootstrap as registry
from yixian.registry.config import RegistrySettings
from yixian.runtime import KafkaSettings, create_pool
from yixian.sync import bootstrap as sync
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.entrypoints.http import create_app as sync_app

from . import county
from .report import Figure, Report

NODE = "411525"
GOAL_MS = 300.0
"""What a screen may take: the console's goal on a node of 200,000 movements."""
CEILING = "console_pk_select"
QUEUE_SCAN = "console_queue_scan"
REPORT_SCAN = "console_report_scan"
_AGAINST = {"queue": QUEUE_SCAN, "statistics": REPORT_SCAN}
"""A figure whose name says one of these is compared with a bare read of the index it
counts from, the others with the round trip of one row."""
Say = Callable[[str], None]
_SIGN_IN = re.compile(r'name="sign_in_token" value="([^"]+)"')


async def _ready() -> dict[str, str]:
    return {"database": "ok"}


def _client(app: Any, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://{host}", timeout=120
    )


def _percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    cuts = statistics.quantiles(samples, n=20, method="inclusive")
    return statistics.median(samples), cuts[18]


async def _timed(ask: Callable[[], Awaitable[httpx.Response]], times: int) -> list[float]:
    """Milliseconds of each of ``times`` requests, after one that warms the path."""
    first = await ask()
    if first.status_code != 200:
        raise RuntimeError(f"{first.request.url} answered {first.status_code}: {first.text[:500]}")
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        response = await ask()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")
    return samples


@dataclass
class ConsoleBench:
    """One node's database, services and console, and the people signed in."""

    stack: LocalStack
    movements: int
    requests: int
    say: Say

    async def run(self, report: Report) -> None:
        url = await self.stack.fresh_database("bench_console")
        for service in (registry, sync, notify):
            await schema.migrate(url, service.SERVICE, service.MIGRATIONS)
        pool = await create_pool(url, size=8)
        try:
            async with pool.acquire() as conn:
                root_id, operator_key = await registry.init_node(
                    conn, NODE, root_name="固始县委组织部"
                )
                started = time.monotonic()
                filled = await county.fill(conn, NODE, root_id, self.movements)
                elapsed = time.monotonic() - started
            report.add("console_fill", Figure(
                "console: fill the node", elapsed, "s",
                f"{filled.movements:,} movements, {filled.members:,} members,"
                f" {filled.audit_rows:,} audit rows (generate_series, then VACUUM ANALYZE)",
                target="< 120 s",
            ))  # fmt: skip
            self.say(f"console: {filled.movements:,} movements filled in {elapsed:.0f} s")
            await self._measure(report, pool, url, filled, operator_key)
        finally:
            await pool.close()

    async def _measure(
        self, report: Report, pool: Any, url: str, filled: county.County, operator_key: str
    ) -> None:
        kafka = KafkaSettings(
            bootstrap_servers=self.stack.config.kafka_bootstrap,
            topic_namespace=f"bench{uuid4().hex[:6]}",
        )
        partners = ",".join(county.PARTNERS)
        registry_settings = RegistrySettings(
            node=NODE, partners=partners, database_url=url, kafka=kafka,
            national_id_key=SecretStr("national-id-key-of-the-bench-console-node-0123"),
        )  # fmt: skip
        console_settings = ConsoleSettings(
            node=NODE, partners=partners, database_url=url, kafka=kafka, notify_url=None
        )
        api = _client(registry.build_app(registry_settings, pool), "registry")
        endpoints = Endpoints(
            registry=_client(registry.build_app(registry_settings, pool), "registry"),
            sync=_client(
                sync_app(
                    node=NODE, pool=pool, keeper=sync.build_keeper(console_settings, pool),
                    metrics=SyncMetrics(), readiness=_ready,
                ),
                "sync",
            ),
            notify=_client(notify_app(node=NODE, pool=pool, readiness=_ready), "notify"),
        )  # fmt: skip
        console = console_app(console_settings, pool, endpoints)
        operator = _client(console, "console")
        secretary = _client(console, "console")
        try:
            township = filled.townships[0]
            created = await api.post(
                "/v1/api-keys",
                json={"name": "bench-secretary", "role": "secretary", "org_id": str(township)},
                headers={"Authorization": f"Bearer {operator_key}"},
            )
            await _sign_in(operator, operator_key)
            await _sign_in(secretary, created.json()["api_key"])
            await self._ceiling(report, pool)
            await self._screens(report, pool, api, operator_key, operator, secretary, filled)
        finally:
            for client in (api, operator, secretary):
                await client.aclose()
            await endpoints.aclose()

    async def _ceiling(self, report: Report, pool: Any) -> None:
        ids = [r["movement_id"] for r in await pool.fetch(
            "SELECT movement_id FROM movements TABLESAMPLE SYSTEM (1) LIMIT 200"
        )]  # fmt: skip
        listed = ", ".join(f"'{status.value}'" for status in sorted(OPEN_ORIGIN_STATUSES))
        floors: dict[str, tuple[str, str, Callable[[int], tuple[Any, ...]]]] = {
            CEILING: (
                "console: primary-key SELECT round trip",
                "one movement by id on the same database and pool (asyncpg), the floor of any"
                " request that reads it",
                lambda i: ("SELECT * FROM movements WHERE movement_id = $1", ids[i % len(ids)]),
            ),
            QUEUE_SCAN: (
                "console: count of the movements the queues read",
                "count(*) of the index movements_queues, no rule evaluated: the floor of"
                " counting the queues of the whole node",
                lambda i: (
                    f"SELECT count(*) FROM movements WHERE origin_status IN ({listed})"  # noqa: S608
                    " OR (origin_status = 'transferred' AND fact_to_enrol)",
                ),
            ),
            REPORT_SCAN: (
                "console: count of every movement",
                "count(*) of the index movements_reports: the floor of a report over every"
                " movement of the node",
                lambda i: ("SELECT count(*) FROM movements WHERE fact_departed_on IS NOT NULL",),
            ),
        }
        async with pool.acquire() as conn:
            for key, (name, how, statement) in floors.items():
                samples = []
                for i in range(max(20, self.requests * (5 if key == CEILING else 1))):
                    started = time.perf_counter()
                    await conn.fetchrow(*statement(i))
                    samples.append((time.perf_counter() - started) * 1000)
                p50, p95 = _percentiles(samples)
                report.add(key, Figure(
                    name, p50, "ms p50", how, detail={"p50_ms": p50, "p95_ms": p95}
                ))  # fmt: skip

    async def _screens(
        self,
        report: Report,
        pool: Any,
        api: httpx.AsyncClient,
        operator_key: str,
        operator: httpx.AsyncClient,
        secretary: httpx.AsyncClient,
        filled: county.County,
    ) -> None:
        movement = await pool.fetchval(
            "SELECT movement_id FROM movements WHERE host = $1 AND host_status = 'checked_in'"
            " ORDER BY created_at DESC LIMIT 1",
            NODE,
        )
        member = await pool.fetchval(
            'SELECT member_id FROM members ORDER BY name COLLATE "C" LIMIT 1 OFFSET $1',
            filled.members // 2,
        )
        headers = {"Authorization": f"Bearer {operator_key}"}
        overdue = (await api.get(
            "/v1/queues", params={"queue": "overdue", "limit": 26}, headers=headers
        )).json()["overdue"]  # fmt: skip
        after = overdue[24]["movement_id"] if len(overdue) > 25 else None
        root, branch = filled.root_id, filled.branches[0]
        breakdowns = [("breakdown", g) for g in ("partner", "state", "month", "branch")]
        behind: list[tuple[str, str, Any]] = [
            ("queue counts", "/v1/queues/counts", None),
            ("a page of to do", "/v1/queues", {"queue": "to_do", "limit": 26}),
            ("a page of upcoming (few)", "/v1/queues", {"queue": "upcoming", "limit": 26}),
            ("members away", "/v1/members/away", {"limit": 26}),
            ("members away by name", "/v1/members/away", {"name": "王建", "limit": 26}),
            ("members visiting", "/v1/members/visiting", {"limit": 26}),
            ("a movement", f"/v1/movements/{movement}", None),
            ("a member", f"/v1/members/{member}", None),
            ("member search", "/v1/members", {"limit": 25}),
            ("member search by name", "/v1/members", {"name": "王", "limit": 25}),
            ("present (whole node)", f"/v1/organizations/{root}/present", {"limit": 26}),
            ("present (one branch)", f"/v1/organizations/{branch}/present", {"limit": 26}),
            ("statistics (4 breakdowns)", "/v1/statistics", breakdowns),
            ("audit log", "/v1/audit", {"limit": 26}),
        ]
        for name, path, params in behind:

            def ask_registry(p: str = path, q: Any = params) -> Awaitable[httpx.Response]:
                return api.get(p, params=q, headers=headers)

            await self._figure(report, f"registry {name}", f"GET {path}", ask_registry)
        screens: list[tuple[str, httpx.AsyncClient, str]] = [
            ("queues", operator, "/queues"),
            ("queues, overdue, second page", operator,
             f"/queues?queue=overdue&after={after}" if after else "/queues?queue=overdue"),
            ("members away", operator, "/members/away"),
            ("members away by name", operator, "/members/away?name=王建"),
            ("members visiting", operator, "/members/visiting"),
            ("a movement", operator, f"/movements/{movement}"),
            ("a member", operator, f"/members/{member}"),
            ("member search", operator, "/members?name=王"),
            ("everyone present", operator, f"/organizations/{root}/present"),
            ("statistics", operator, "/statistics"),
            ("audit log", operator, "/audit"),
            ("secretary: queues", secretary, "/queues"),
            ("secretary: members away", secretary, "/members/away"),
            ("secretary: statistics", secretary, "/statistics"),
            ("secretary: present", secretary, f"/organizations/{filled.townships[0]}/present"),
        ]  # fmt: skip
        for name, person, path in screens:

            def ask_console(
                c: httpx.AsyncClient = person, p: str = path
            ) -> Awaitable[httpx.Response]:
                return c.get(p)

            await self._figure(report, f"console {name}", f"GET {path}", ask_console)

    async def _figure(
        self, report: Report, name: str, how: str, ask: Callable[[], Awaitable[httpx.Response]]
    ) -> None:
        samples = await _timed(ask, self.requests)
        p50, p95 = _percentiles(samples)
        key = re.sub(r"\W+", "_", name.replace(":", "")).strip("_").lower()
        report.add(key, Figure(
            name, p95, "ms p95", f"{how}, {len(samples)} requests, p50 {p50:.0f} ms",
            target=f"< {GOAL_MS:.0f} ms",
            against=next((c for word, c in _AGAINST.items() if word in name), CEILING),
            detail={"p50_ms": p50, "p95_ms": p95, "max_ms": max(samples),
                    "met": p95 < GOAL_MS},
        ))  # fmt: skip
        self.say(f"{name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms")


async def _sign_in(person: httpx.AsyncClient, key: str) -> None:
    page = await person.get("/sign-in")
    token = _SIGN_IN.search(page.text)
    if token is None:
        raise RuntimeError("the console's sign-in form has no token")
    signed = await person.post(
        "/sign-in", data={"sign_in_token": token.group(1), "api_key": key, "next": "/queues"}
    )
    if signed.status_code != 303:
        raise RuntimeError(f"signing in failed: {signed.status_code} {signed.text[:300]}")


async def console_screens(
    stack: LocalStack, report: Report, *, movements: int, requests: int, say: Say
) -> None:
    await ConsoleBench(stack, movements, requests, say).run(report)
