"""A local network of Yixian nodes, every service a real process: for the demo and the
end-to-end tests.

Each node has its own database and runs ``registry`` (HTTP API), its outbox ``relay``,
``sync`` and, when asked, ``notify`` as separate processes, so a test can stop, kill or
restart any of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.kafka import principal


def national_id_key(code: str) -> str:
    """The node's own national-ID key (ADR 14): no two nodes share one. A fixed value per
    node, so that a restarted node still matches the numbers it stored; local use only."""
    return f"local-national-id-key-of-node-{code}-never-shared"


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    url: str | None = None
    _offset: int = 0
    """Where this run's lines start in the log (a restarted process appends to it)."""

    def start(self, timeout: float = 60) -> None:
        self.launch()
        self.wait_started(timeout)

    def launch(self) -> None:
        """Start the process; ``wait_started`` waits until it serves."""
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self.popen = subprocess.Popen(self.command, env=self.env, stdout=sink, stderr=sink)

    def wait_started(self, timeout: float = 60) -> None:
        assert self.popen is not None, f"{self.name} was not launched"
        offset = self._offset
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_bytes()[offset:].decode(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("event") == "service started":
                    self.url = record.get("http")
                    return
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=60)

    def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=30)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class LocalNode:
    code: str
    name: str
    database_url: str
    env: dict[str, str]
    logs: Path
    with_notify: bool = False
    with_console: bool = False
    registry: Process = field(init=False)
    relay: Process = field(init=False)
    sync: Process = field(init=False)
    notify: Process = field(init=False)
    console: Process = field(init=False)
    key: str = ""
    root_id: UUID | None = None
    http: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        py = sys.executable
        self.registry = Process(
            f"{self.code}-registry",
            [py, "-m", "yixian.registry"],
            {**self.env, "YIXIAN_RUN_RELAY": "false"},
            self.logs / f"{self.code}-registry.log",
        )
        self.relay = Process(
            f"{self.code}-relay",
            [py, "-m", "yixian.record", "relay"],
            {**self.env, "YIXIAN_RELAY_POLL_INTERVAL": "0.5"},
            self.logs / f"{self.code}-relay.log",
        )
        self.sync = Process(
            f"{self.code}-sync",
            [py, "-m", "yixian.sync"],
            self.env,
            self.logs / f"{self.code}-sync.log",
        )
        self.notify = Process(
            f"{self.code}-notify",
            [py, "-m", "yixian.notify"],
            self.env,
            self.logs / f"{self.code}-notify.log",
        )
        self.console = Process(
            f"{self.code}-console",
            [py, "-m", "yixian.console"],
            {**self.env, "YIXIAN_NODE_NAME": self.name},
            self.logs / f"{self.code}-console.log",
        )

    @property
    def processes(self) -> tuple[Process, ...]:
        """The node's processes in the order they start; the console last, as it is told
        where the others listen."""
        own: tuple[Process, ...] = (self.registry, self.relay, self.sync)
        own = (*own, self.notify) if self.with_notify else own
        return (*own, self.console) if self.with_console else own

    @property
    def secure(self) -> bool:
        return self.env.get("YIXIAN_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") != "PLAINTEXT"

    def ops(self, *args: str) -> str:
        """Run the operator's command line for this node; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "yixian.ops", *args],
            env=self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"yixian {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def init(self) -> None:
        """``yixian node init``: migrations, root organization, operator key (and, on a
        secure network, the node's topics, principal and ACLs)."""
        args = ["node", "init", "--root-name", self.name]
        printed = self.ops(*args, *([] if self.secure else ["--no-kafka"]))
        for line in printed.splitlines():
            if line.startswith("root organization"):
                self.root_id = UUID(line.rsplit(" ", 1)[-1])
            elif line.startswith("operator API key"):
                self.key = line.rsplit(" ", 1)[-1]

    def link(self, partner: str) -> None:
        """``yixian partner link``: the pair topics with ``partner`` and their ACLs."""
        self.ops("partner", "link", self.code, partner)

    def start(self) -> None:
        """Start the node's services side by side (the database is migrated by ``init``),
        then its console, told where they listen."""
        services = [p for p in self.processes if p is not self.console]
        for process in services:
            process.launch()
        for process in services:
            process.wait_started()
        if self.with_console:
            self.console.env |= {
                "YIXIAN_REGISTRY_URL": self.registry.url or "",
                "YIXIAN_SYNC_URL": self.sync.url or "",
                "YIXIAN_NOTIFY_URL": (self.notify.url or "") if self.with_notify else "",
            }
            self.console.start()
        assert self.registry.url is not None
        self.http = httpx.AsyncClient(
            base_url=self.registry.url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                process.stop()
            except subprocess.TimeoutExpired:
                process.kill()

    # -- HTTP -------------------------------------------------------------------------------

    async def post(self, path: str, body: Any = None, expect: int | None = None) -> Any:
        assert self.http is not None
        response = await self.http.post(path, json=body or {})
        if expect is not None:
            assert response.status_code == expect, f"{path}: {response.status_code} {response.text}"
        return response.json()

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A request to the registry as given (another caller's ``headers``), unchecked."""
        assert self.http is not None
        return await self.http.request(method, path, json=body, headers=headers, params=params)

    async def api_key(self, name: str, role: str, org: UUID) -> dict[str, str]:
        """A new API key of ``role`` for ``org``, as the headers that present it."""
        created = await self.post(
            "/v1/api-keys", {"name": name, "role": role, "org_id": str(org)}, 201
        )
        return {"Authorization": f"Bearer {created['api_key']}"}

    async def get(self, path: str) -> Any:
        assert self.http is not None
        response = await self.http.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def sync_get(self, path: str) -> Any:
        assert self.sync.url is not None
        async with httpx.AsyncClient(base_url=self.sync.url, timeout=30) as client:
            response = await client.get(path)
            response.raise_for_status()
            return response.json()

    async def sync_post(self, path: str) -> Any:
        assert self.sync.url is not None
        async with httpx.AsyncClient(base_url=self.sync.url, timeout=30) as client:
            response = await client.post(path)
            response.raise_for_status()
            return response.json()

    async def org(
        self, name: str, kind: str = "branch", parent: UUID | None = None, **contact: str
    ) -> UUID:
        body = {"name": name, "kind": kind, "parent_id": str(parent or self.root_id), **contact}
        return UUID((await self.post("/v1/organizations", body, 201))["org_id"])

    async def member(self, org: UUID, name: str) -> UUID:
        body = {"org_id": str(org), "name": name, "joined_on": "2008-07-01"}
        return UUID((await self.post("/v1/members", body, 201))["member_id"])

    async def import_members(self, org: UUID, count: int, *, phones: bool = False) -> list[UUID]:
        """``count`` new members of ``org`` through the bulk import; their ids."""
        header = "org_id,name,joined_on" + (",phone" if phones else "")
        rows = "".join(
            f"{org},党员{i},2008-07-01" + (f",+86 138 {i:08d}" if phones else "") + "\n"
            for i in range(count)
        )
        assert self.http is not None
        response = await self.http.post(
            "/v1/members/import",
            content=f"{header}\n{rows}".encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert response.json()["accepted"] == count, response.text
        found = await self.query(
            "SELECT member_id FROM members WHERE org_id = $1 ORDER BY name", org
        )
        return [r["member_id"] for r in found]

    # -- database ---------------------------------------------------------------------------

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def value(self, sql: str, *args: Any) -> Any:
        rows = await self.query(sql, *args)
        return rows[0][0] if rows else None

    async def replica(self, movement_id: UUID | str) -> tuple[Any, Any]:
        rows = await self.query(
            "SELECT origin_group, host_group FROM movements WHERE movement_id = $1",
            UUID(str(movement_id)),
        )
        if not rows:
            return (None, None)
        return (
            json.loads(rows[0][0]) if rows[0][0] else None,
            json.loads(rows[0][1]) if rows[0][1] else None,
        )


def node_env(
    stack: LocalStack,
    code: str,
    database_url: str,
    topics: TopicNames,
    partners: list[str],
    *,
    secure: bool = False,
) -> dict[str, str]:
    """The environment of a node's processes; ``secure``: as its own SASL principal."""
    security = {}
    if secure:
        password = f"{code}-local-secret"
        security = {
            "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": stack.config.sasl_bootstrap,
            "YIXIAN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "YIXIAN_KAFKA_USERNAME": principal(code, topics),
            "YIXIAN_KAFKA_PASSWORD": password,
            "YIXIAN_NODE_KAFKA_PASSWORD": password,
            "YIXIAN_ADMIN_KAFKA_BOOTSTRAP_SERVERS": stack.config.sasl_bootstrap,
            "YIXIAN_ADMIN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "YIXIAN_ADMIN_KAFKA_USERNAME": ADMIN_USER,
            "YIXIAN_ADMIN_KAFKA_PASSWORD": ADMIN_PASSWORD,
        }
    return {
        **os.environ,
        "YIXIAN_NODE": code,
        "YIXIAN_DATABASE_URL": database_url,
        "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": stack.config.kafka_bootstrap,
        "YIXIAN_KAFKA_TOPIC_NAMESPACE": topics.namespace,
        "YIXIAN_NATIONAL_ID_KEY": national_id_key(code),
        "YIXIAN_HTTP_PORT": "0",
        "YIXIAN_PARTNERS": ",".join(partners),
        "YIXIAN_HEARTBEAT_SECONDS": "1",
        "YIXIAN_SILENCE_SECONDS": "5",
        "YIXIAN_GAP_GRACE_SECONDS": "2",
        "YIXIAN_DIGEST_SECONDS": "3600",
        "YIXIAN_METADATA_REFRESH_SECONDS": "2",
        **security,
    }


async def commit_and_apply(
    origin: LocalNode, host: LocalNode, movements: Sequence[UUID]
) -> dict[UUID, tuple[datetime, datetime]]:
    """When each movement's registration committed at ``origin`` (its outbox row to
    ``host``) and when ``host`` applied it (its inbox row), by the two databases' clocks
    (one machine): what a movement's commit → apply latency is measured from. Movements
    ``host`` has not applied yet are left out."""
    commits = {
        r["movement_id"]: r["at"]
        for r in await origin.query(
            "SELECT movement_id, min(created_at) AS at FROM outbox WHERE destination = $1"
            " AND movement_id = ANY($2::uuid[]) GROUP BY movement_id",
            host.code,
            list(movements),
        )
    }
    applies = {
        r["movement_id"]: r["at"]
        for r in await host.query(
            "SELECT movement_id, min(received_at) AS at FROM inbox"
            " WHERE movement_id = ANY($1::uuid[]) GROUP BY movement_id",
            list(movements),
        )
    }
    return {m: (commits[m], applies[m]) for m in movements if m in commits and m in applies}


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 60, what: str = "condition"
) -> None:
    """Poll ``check`` until it holds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)
