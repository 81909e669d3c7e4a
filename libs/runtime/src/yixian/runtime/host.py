"""A node host: one process of a service serving the many nodes whose settings files are in
a directory (ADR 30); and the single node's process, which is the same parts for one node.

A service says how to start one node's part (:data:`StartNode`): its HTTP app and the loops
it runs, on that node's own database pool and Kafka clients, built from that node's own
settings. The host then

- reads each ``<code>.env`` of ``YIXIAN_HOST_DIR`` *alone* (never the process's
  environment: one node's settings cannot leak into another's),
- starts, restarts and stops each node on its own: a node whose loop fails is restarted
  after a back-off while the others run on; a file added, changed or removed is noticed
  within ``YIXIAN_HOST_SCAN_SECONDS``,
- answers ``/nodes/<code>/…`` with that node's app (its API keys, its database): a path
  of one node never reaches another's, and a code the host does not serve is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import stat
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .http import start_http
from .lifecycle import wait_for_stop_signal
from .logging import get_logger
from .settings import NodeSettings, reading_node_file

log = get_logger(__name__)

S = TypeVar("S", bound=NodeSettings)
ASGIApp = Callable[..., Awaitable[None]]
NODE_FILE_SUFFIX = ".env"
MAX_RESTART_WAIT = 30.0
"""The longest wait before a node that failed is started again: what failed it is often
mended within seconds (a partner's link made, a server back), and a wait that doubled to
minutes kept the node down long after."""
_NODE_PATH = re.compile(r"/nodes/([0-9A-Za-z_-]{1,32})(/.*)?")


@dataclass
class NodeRuntime:
    """One node's part of a service, running: its HTTP app, the loops that must run for its
    life, and what closes its connections once they stopped."""

    node: str
    app: ASGIApp
    tasks: list[asyncio.Task[Any]]
    stop: asyncio.Event
    closing: Callable[[], Awaitable[None]]
    started: dict[str, Any] = field(default_factory=dict)
    """What the ``service started`` line says besides the address."""

    async def close(self, patience: float = 15.0) -> None:
        """Tell the loops to stop, wait for them (cancel what does not stop in time), then
        close the node's connections."""
        self.stop.set()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=patience)
            for task in late:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.closing()


StartNode = Callable[[S], Coroutine[Any, Any, NodeRuntime]]
Migrate = Callable[[S], Coroutine[Any, Any, list[str]]]


async def serve_node(
    settings: S,
    migrate: Migrate[S],
    start: StartNode[S],
    *,
    http_host: str,
    http_port: int,
) -> None:
    """The single node's process: migrate, start the node's part, serve its app on
    ``http_host:http_port`` until SIGTERM or SIGINT (or until one of its loops ends, which
    is an error: the supervisor restarts the process)."""
    log.info("schema ready", applied=await migrate(settings))
    runtime = await start(settings)
    try:
        http = await start_http(runtime.app, http_host, http_port)
        log.info("service started", http=http.url, **runtime.started)
        try:
            await wait_for_stop_signal(*runtime.tasks)
            log.info("service stopping")
        finally:
            await http.stop()
    finally:
        await runtime.close(settings.shutdown_timeout)
    log.info("service stopped")


class HostSettings(BaseSettings):
    """Where a node host finds its nodes and where it listens (``YIXIAN_HOST_*``)."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_HOST_", extra="ignore")

    dir: Path = Field(description="The directory of the nodes' settings files, <code>.env each.")
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(
        default=None, ge=0, le=65535, description="Default: the service's own port."
    )
    scan_seconds: float = Field(default=2.0, gt=0, le=3600)
    restart_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="The first wait before a failed node restarts."
    )
    pool_size: int = Field(
        default=3,
        ge=2,
        le=100,
        description="The most database connections each node keeps per service, unless its"
        " file says (YIXIAN_DATABASE_POOL_SIZE): one server holds many nodes' pools.",
    )
    pool_idle_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A node's pooled connection unused this long is closed, unless its file"
        " says (YIXIAN_DATABASE_IDLE_SECONDS).",
    )
    log_level: str = "INFO"


def node_files(directory: Path) -> dict[str, Path]:
    """The nodes' settings files in ``directory``, by the code their name gives."""
    return {
        path.name.removesuffix(NODE_FILE_SUFFIX): path
        for path in sorted(directory.glob(f"*{NODE_FILE_SUFFIX}"))
        if path.is_file() and not path.name.startswith(".")
    }


def node_settings(settings_type: type[S], path: Path) -> S:
    """The settings of the node of ``path``, read from that file only; its name must be the
    node's code."""
    with reading_node_file(path):
        settings = settings_type()
    code = path.name.removesuffix(NODE_FILE_SUFFIX)
    if settings.node != code:
        raise ValueError(f"{path} sets YIXIAN_NODE={settings.node}; the file must be {code}.env")
    return settings


def hosted(settings: S, host: HostSettings) -> S:
    """A node's settings as its host runs it: lean database pools (``YIXIAN_HOST_POOL_*``)
    where its file does not size them itself."""
    lean = {
        "database_pool_size": host.pool_size,
        "database_idle_seconds": host.pool_idle_seconds,
    }
    update = {name: value for name, value in lean.items() if name not in settings.model_fields_set}
    return settings.model_copy(update=update)


def _readable_by_others(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _HostApp:
    """The host's one ASGI app: ``/nodes/<code>/…`` goes to that node's app (the prefix as
    its ``root_path``), ``/healthz`` and ``/readyz`` are the host's own."""

    def __init__(self, host: NodeHost[Any]) -> None:
        self.host = host

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        path: str = scope["path"]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok", "nodes": len(self.host.apps)})
            return
        if path == "/readyz":
            states = self.host.states()
            ready = all(state == "running" for state in states.values())
            await _json(send, 200 if ready else 503, {"ready": ready, "nodes": states})
            return
        matched = _NODE_PATH.fullmatch(path)
        app = self.host.apps.get(matched.group(1)) if matched else None
        if matched is None or app is None:
            detail = "no such node on this host" if matched else "not found"
            await _json(send, 404, {"detail": detail})
            return
        code = matched.group(1)
        child = {**scope, "root_path": scope.get("root_path", "") + f"/nodes/{code}"}
        with structlog.contextvars.bound_contextvars(node=code):
            await app(child, receive, send)


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@dataclass
class _Kept:
    """A node the host keeps running: its file's fingerprint, the task that keeps it, and
    the event that tells that task to stop it."""

    fingerprint: str
    task: asyncio.Task[None]
    leave: asyncio.Event
    state: str = "starting"


class NodeHost(Generic[S]):
    """Keeps one service's part of every node of a directory running in this process."""

    def __init__(
        self,
        service: str,
        settings_type: type[S],
        migrate: Migrate[S],
        start: StartNode[S],
        host: HostSettings,
    ) -> None:
        self.service = service
        self.settings_type = settings_type
        self.migrate = migrate
        self.start = start
        self.host = host
        self.apps: dict[str, ASGIApp] = {}
        self.kept: dict[str, _Kept] = {}
        self.app = _HostApp(self)

    def states(self) -> dict[str, str]:
        return {code: kept.state for code, kept in sorted(self.kept.items())}

    async def scan(self) -> None:
        """Start the nodes whose file is new, restart those whose file changed, stop those
        whose file is gone."""
        found = node_files(self.host.dir)
        for code in [c for c in self.kept if c not in found]:
            await self._leave(code, "its settings file was removed")
        for code, path in found.items():
            try:
                fingerprint = _fingerprint(path)
            except OSError:
                continue  # removed while being read: the next scan sees it gone
            kept = self.kept.get(code)
            if kept is not None and kept.fingerprint == fingerprint:
                continue
            if kept is not None:
                await self._leave(code, "its settings file changed")
            leave = asyncio.Event()
            task = asyncio.create_task(self._keep(code, path, leave), name=f"node-{code}")
            self.kept[code] = _Kept(fingerprint, task, leave)

    async def _leave(self, code: str, why: str) -> None:
        kept = self.kept.pop(code)
        log.info("node leaving", node=code, why=why)
        kept.leave.set()
        await kept.task

    async def _keep(self, code: str, path: Path, leave: asyncio.Event) -> None:
        """Run ``code``'s part until told to leave; restart it (with a growing wait) when it
        cannot start or one of its loops ends. Every line it logs names the node."""
        structlog.contextvars.bind_contextvars(node=code)
        wait = self.host.restart_seconds
        while not leave.is_set():
            try:
                settings = hosted(node_settings(self.settings_type, path), self.host)
            except (ValidationError, ValueError, OSError) as exc:
                # nothing to retry until the file changes, which starts a new keeper
                log.error("node settings refused", file=str(path), error=_short(exc))
                self._state(code, f"refused: {_short(exc)}")
                await leave.wait()
                break
            runtime = await self._start(settings, path)
            if runtime is None:
                self._state(code, "failed: see the log")
            else:
                self.apps[code] = runtime.app
                self._state(code, "running")
                log.info("node started", **runtime.started)
                leaving = asyncio.create_task(leave.wait())
                done, _ = await asyncio.wait(
                    {leaving, *runtime.tasks}, return_when=asyncio.FIRST_COMPLETED
                )
                leaving.cancel()
                self.apps.pop(code, None)
                ended = [t for t in runtime.tasks if t in done]
                for task in ended:
                    failure = None if task.cancelled() else task.exception()
                    log.error("node loop ended", loop=task.get_name(), error=repr(failure))
                self._state(code, "stopping")
                await runtime.close()
                if leave.is_set():
                    break
                self._state(code, "failed: a loop ended; restarting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leave.wait(), wait)
            wait = min(wait * 2, MAX_RESTART_WAIT)
        log.info("node stopped")

    async def _start(self, settings: S, path: Path) -> NodeRuntime | None:
        if _readable_by_others(path):
            log.warning("node settings readable by others", file=str(path), mode="chmod 600")
        try:
            log.info("schema ready", applied=await self.migrate(settings))
            return await self.start(settings)
        except Exception as exc:
            log.exception("node could not start", error=_short(exc))
            return None

    def _state(self, code: str, state: str) -> None:
        if code in self.kept:
            self.kept[code].state = state

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT: scan the directory, serve the nodes' apps."""
        if not self.host.dir.is_dir():
            raise FileNotFoundError(f"YIXIAN_HOST_DIR: {self.host.dir} is not a directory")
        http = await start_http(self.app, self.host.http_host, self.host.http_port or 0)
        scanning = asyncio.create_task(self._scan_every(), name="scan")
        log.info("service started", http=http.url, role="host", dir=str(self.host.dir))
        try:
            await wait_for_stop_signal(scanning)
            log.info("service stopping")
        finally:
            scanning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scanning
            await http.stop()
            for kept in self.kept.values():
                kept.leave.set()
            await asyncio.gather(*(kept.task for kept in self.kept.values()))
        log.info("service stopped")

    async def _scan_every(self) -> None:
        while True:
            try:
                await self.scan()
            except OSError as exc:
                log.error("host directory unreadable", dir=str(self.host.dir), error=str(exc))
            await asyncio.sleep(self.host.scan_seconds)


def _short(exc: Exception) -> str:
    """One line; a validation error's names the setting."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = "_".join(str(part) for part in first["loc"]).upper()
        return f"YIXIAN_{where}: {first['msg']}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
