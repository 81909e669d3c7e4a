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
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import structlog
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .http import route_path, start_http
from .lifecycle import wait_for_stop_signal
from .logging import get_logger
from .settings import (
    DeadlineSettings,
    KafkaSettings,
    NodeSettings,
    invalid_setting,
    reading_node_file,
)

log = get_logger(__name__)

S = TypeVar("S", bound=NodeSettings)
ASGIApp = Callable[..., Awaitable[None]]
NODE_FILE_SUFFIX = ".env"
NODE_CODE = r"[0-9A-Za-z_-]{1,32}"
"""What a node's file may be named (before ``.env``), and its paths say: no dots, slashes or
spaces; the file's settings then say which node it is."""
_NODE_PATH = re.compile(rf"/nodes/({NODE_CODE})(/.*)?")


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
    restart_most_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="The longest wait before a failed node restarts: the wait doubles after"
        " each failure up to this, and starts again from YIXIAN_HOST_RESTART_SECONDS once the"
        " node ran that long. What failed a node is often mended within seconds (a partner's"
        " link made, a server back); a wait of minutes kept it down long after.",
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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
        raise ValueError(
            f"{path.name} sets YIXIAN_NODE={settings.node}: a node's file is named for its"
            f" code, {settings.node}{NODE_FILE_SUFFIX}"
        )
    return settings


def refusal(exc: Exception, settings_type: type[NodeSettings]) -> str:
    """Why a node's file is refused, in one line that names no more than the file: a
    validation error's names the setting (:func:`~yixian.runtime.settings.invalid_setting`)."""
    if isinstance(exc, ValidationError) and exc.errors():
        setting, why = invalid_setting(exc, (settings_type, KafkaSettings, DeadlineSettings))
        return why if setting == "configuration" else f"{setting}: {why}"
    if isinstance(exc, OSError):
        name = Path(exc.filename).name if exc.filename else "the file"
        return f"{name} cannot be read: {exc.strerror or type(exc).__name__}"
    return _short(exc)


def _database(url: str) -> tuple[str, str, str]:
    """Which database ``url`` names: its server and port, name and options, not its login
    (read as text: a port that is not one is no reason to fail here)."""
    parts = urlsplit(url)
    server = parts.netloc.rsplit("@", 1)[-1].lower()
    if ":" not in server.rsplit("]", 1)[-1]:
        server += ":5432"
    return (server, parts.path, parts.query)


def shared_with(settings: NodeSettings, others: Mapping[str, NodeSettings]) -> str | None:
    """Why ``settings`` may not run beside ``others`` (by code), or None: two nodes never
    share a database (the one would serve, relay and apply the other's record) nor a Kafka
    principal (the one would read and write the other's topics)."""
    for code, other in sorted(others.items()):
        if code == settings.node:
            continue
        if _database(other.database_url) == _database(settings.database_url):
            return f"YIXIAN_DATABASE_URL: the database of node {code}; each node has its own"
        name = settings.kafka.username
        if name is not None and name == other.kafka.username:
            return f"YIXIAN_KAFKA_USERNAME: the principal of node {code}; each node has its own"
    return None


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
    its ``root_path``), ``/healthz`` and ``/readyz`` are the host's own; anything else, and
    a code the host does not serve, is a 404."""

    def __init__(self, host: NodeHost[Any]) -> None:
        self.host = host

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        root: str = scope.get("root_path", "")
        path = route_path(scope)
        matched = _NODE_PATH.fullmatch(path)
        if matched is not None and (app := self.host.apps.get(matched.group(1))) is not None:
            code = matched.group(1)
            child = {**scope, "root_path": f"{root}/nodes/{code}"}
            with structlog.contextvars.bound_contextvars(node=code):
                await app(child, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if path == "/healthz":
            await _json(send, 200, {"status": "ok", "nodes": len(self.host.apps)})
        elif path == "/readyz":
            # one node that cannot run never takes the host (every other node) out of
            # rotation: it is listed as degraded; each node's own is /nodes/<code>/readyz
            states = self.host.states()
            degraded = [code for code, state in states.items() if state != "running"]
            body = {"ready": self.host.ready, "nodes": states, "degraded": degraded}
            await _json(send, 200 if self.host.ready else 503, body)
        else:
            detail = "no such node on this host" if matched else "not found"
            await _json(send, 404, {"detail": detail})


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
    """A node the host keeps: its file's fingerprint, the event that tells its keeper to
    stop it, the keeper's task, and what ``/readyz`` says of it."""

    fingerprint: str
    leave: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    state: str = "starting"


class NodeHost(Generic[S]):
    """Keeps one service's part of every node of a directory running in this process.

    Each node has a keeper task of its own: nothing one node does (a start that hangs, a
    loop that fails, a close that never ends) holds up the scan, and so the others' adds,
    changes and removals. A node's paths answer 404 from the moment it is told to leave;
    a node put back (or changed) starts once its previous part has closed."""

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
        self.leaving: set[asyncio.Task[None]] = set()
        self.in_use: dict[str, NodeSettings] = {}
        """The settings of the nodes started or starting, by code (``shared_with``)."""
        self.ready = False
        """The directory was read at the last scan. A node's trouble is its own (its state,
        its ``/nodes/<code>/readyz``), never a reason to take the host out of rotation."""
        self.app = _HostApp(self)

    def states(self) -> dict[str, str]:
        return {code: kept.state for code, kept in sorted(self.kept.items())}

    async def scan(self) -> None:
        """Start the nodes whose file is new, restart those whose file changed, stop those
        whose file is gone."""
        found = node_files(self.host.dir)
        self.ready = True
        for code in [c for c in self.kept if c not in found]:
            self._leave(code, "its settings file was removed")
        for code, path in found.items():
            try:
                fingerprint = _fingerprint(path)
            except OSError:
                continue  # removed while being read: the next scan sees it gone
            kept = self.kept.get(code)
            if kept is not None and kept.fingerprint == fingerprint:
                continue
            previous = self._leave(code, "its settings file changed") if kept else None
            keeper = _Kept(fingerprint)
            keeper.task = asyncio.create_task(
                self._keep(code, path, keeper, previous), name=f"node-{code}"
            )
            self.kept[code] = keeper

    def _leave(self, code: str, why: str) -> asyncio.Task[None] | None:
        kept = self.kept.pop(code)
        log.info("node leaving", node=code, why=why)
        kept.leave.set()
        self.apps.pop(code, None)  # its paths answer 404 from now on
        if kept.task is not None:
            self.leaving.add(kept.task)
            kept.task.add_done_callback(self.leaving.discard)
        return kept.task

    async def _keep(
        self, code: str, path: Path, keeper: _Kept, previous: asyncio.Task[None] | None
    ) -> None:
        """Run ``code``'s part until told to leave; restart it (with a growing wait) when it
        cannot start or one of its loops ends. Every line it logs names the node."""
        structlog.contextvars.bind_contextvars(node=code)
        if previous is not None:
            await asyncio.wait([previous])  # the node's part before has closed
        wait = self.host.restart_seconds
        while not keeper.leave.is_set():
            try:
                settings = hosted(node_settings(self.settings_type, path), self.host)
            except (ValidationError, ValueError, OSError) as exc:
                # nothing to retry until the file changes, which starts a new keeper
                reason = refusal(exc, self.settings_type)
                log.error("node settings refused", file=path.name, error=reason)
                keeper.state = f"refused: {reason}"
                await keeper.leave.wait()
                break
            began = time.monotonic()
            try:
                await self._run(code, path, settings, keeper)
            except Exception as exc:  # the keeper outlives whatever its node does
                log.exception("node failed", error=_short(exc))
                keeper.state = "failed: see the log"
            finally:
                if self.in_use.get(code) is settings:
                    del self.in_use[code]
            if keeper.leave.is_set():
                break
            if time.monotonic() - began > self.host.restart_most_seconds:
                wait = self.host.restart_seconds  # it ran well a long while: a new trouble
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(keeper.leave.wait(), wait)
            wait = min(wait * 2, self.host.restart_most_seconds)
        log.info("node stopped")

    async def _run(self, code: str, path: Path, settings: S, keeper: _Kept) -> None:
        """Start the node's part and keep it until told to leave or one of its loops ends;
        then close it."""
        clash = shared_with(settings, self.in_use)
        if clash is not None:
            log.error("node settings refused", file=path.name, error=clash)
            keeper.state = f"refused: {clash}"
            return  # tried again after the wait: the other node may be gone by then
        self.in_use[code] = settings
        keeper.state = "starting"
        if _readable_by_others(path):
            log.warning("node settings readable by others", file=path.name, mode="chmod 600")
        runtime = await self._start(settings, keeper.leave)
        if runtime is None:
            keeper.state = "failed: see the log"
            return
        if keeper.leave.is_set():
            await self._close(runtime, settings)
            return
        self.apps[code] = runtime.app
        keeper.state = "running"
        log.info("node started", **runtime.started)
        leaving = asyncio.create_task(keeper.leave.wait())
        try:
            done, _ = await asyncio.wait(
                {leaving, *runtime.tasks}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            leaving.cancel()
            if self.apps.get(code) is runtime.app:
                del self.apps[code]
        for task in runtime.tasks:
            if task in done:
                failure = None if task.cancelled() else task.exception()
                log.error("node loop ended", loop=task.get_name(), error=repr(failure))
        keeper.state = "stopping"
        await self._close(runtime, settings)
        if not keeper.leave.is_set():
            keeper.state = "failed: a loop ended; restarting"

    async def _start(self, settings: S, leave: asyncio.Event) -> NodeRuntime | None:
        """Migrate and start the node's part; None if it could not start, or was told to
        leave first (a start that hangs, on a database or a broker that does not answer, is
        given up then)."""

        async def starting() -> NodeRuntime:
            log.info("schema ready", applied=await self.migrate(settings))
            return await self.start(settings)

        start = asyncio.create_task(starting())
        leaving = asyncio.create_task(leave.wait())
        try:
            await asyncio.wait({start, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            leaving.cancel()
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
            return None
        try:
            return start.result()
        except Exception as exc:
            log.exception("node could not start", error=_short(exc))
            return None

    async def _close(self, runtime: NodeRuntime, settings: S) -> None:
        """Close the node's part; one that fails or does not end in time is logged and left."""
        patience = settings.shutdown_timeout
        try:
            async with asyncio.timeout(patience * 2):
                await runtime.close(patience)
        except Exception as exc:
            log.exception("node did not close cleanly", error=_short(exc))

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
            await self.leave_all("the host stops")
        log.info("service stopped")

    async def leave_all(self, why: str) -> None:
        """Stop every node and wait until each has closed."""
        for code in list(self.kept):
            self._leave(code, why)
        await asyncio.gather(*self.leaving, return_exceptions=True)

    async def _scan_every(self) -> None:
        while True:
            try:
                await self.scan()
            except OSError as exc:
                self.ready = False
                log.error("host directory unreadable", dir=str(self.host.dir), error=str(exc))
            await asyncio.sleep(self.host.scan_seconds)


def _short(exc: BaseException) -> str:
    """One line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
