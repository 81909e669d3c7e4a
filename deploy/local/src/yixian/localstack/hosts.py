"""Node hosts on the local stack: three processes (registry, sync, notify, each
``python -m yixian.<service> host``) serving every node of a directory (ADR 30); for the
isolation tests, the benchmark's per-node figures and the network simulation.

A :class:`HostedNode` is a :class:`~yixian.localstack.network.LocalNode` whose services are
its host's: it is put on the host with ``yixian host add`` (its settings in a file of the
host's directory, nothing in the host's environment) and reached at
``<host>/nodes/<code>/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from .network import LocalNode, Process

HOSTED_SERVICES = ("registry", "sync", "notify")
_NOT_NODE_SETTINGS = (
    "YIXIAN_ADMIN_KAFKA_",
    "YIXIAN_NODE_KAFKA_PASSWORD",
    "YIXIAN_HTTP_PORT",
    "YIXIAN_STACK_",
    "YIXIAN_HOST_",
)


def node_file_text(env: dict[str, str]) -> str:
    """A node's settings file: its ``YIXIAN_*`` settings (not the cluster admin's login,
    which stays with the operator, nor a port: the host listens for all its nodes, nor the
    local stack's or a host's own)."""
    lines = [
        f"{name}={value}"
        for name, value in sorted(env.items())
        if name.startswith("YIXIAN_") and not name.startswith(_NOT_NODE_SETTINGS)
    ]
    return "\n".join(lines) + "\n"


@dataclass
class LocalHost:
    """A node host: its directory of node settings files and its three processes."""

    name: str
    root: Path
    """Where the host keeps its directory (``nodes/``) and logs."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of the host's processes (host settings only: ``YIXIAN_HOST_*``)."""
    processes: dict[str, Process] = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        base = {name: value for name, value in os.environ.items() if not name.startswith("YIXIAN_")}
        host_env = {
            **base,
            "YIXIAN_HOST_DIR": str(self.directory),
            "YIXIAN_HOST_HTTP_PORT": "0",
            "YIXIAN_HOST_SCAN_SECONDS": "0.5",
            "YIXIAN_HOST_RESTART_SECONDS": "1",
            "YIXIAN_HOST_RESTART_MOST_SECONDS": "2",
            **self.env,
        }
        self.processes = {
            service: Process(
                f"{self.name}-{service}",
                [sys.executable, "-m", f"yixian.{service}", "host"],
                host_env,
                self.root / f"{self.name}-{service}.log",
            )
            for service in HOSTED_SERVICES
        }

    @property
    def directory(self) -> Path:
        return self.root / "nodes"

    def url(self, service: str) -> str:
        url = self.processes[service].url
        assert url is not None, f"{self.name}-{service} is not running"
        return url

    def start(self) -> None:
        self.launch()
        self.wait_started()

    def launch(self) -> None:
        for process in self.processes.values():
            process.launch()

    def wait_started(self) -> None:
        for process in self.processes.values():
            process.wait_started()

    def pids(self) -> dict[str, int]:
        """The host's processes, by service."""
        return {
            service: process.popen.pid
            for service, process in self.processes.items()
            if process.popen is not None
        }

    def stop(self) -> None:
        """SIGTERM to every process of the host at once, then wait for each (kill -9 one
        that does not end in time)."""
        for process in self.processes.values():
            if process.running:
                assert process.popen is not None
                process.popen.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.stop()
            except subprocess.TimeoutExpired:
                process.kill()

    def states(self, service: str) -> dict[str, str]:
        """What the service's host says of each node (``/readyz``)."""
        response = httpx.get(f"{self.url(service)}/readyz", timeout=10)
        nodes: dict[str, str] = response.json()["nodes"]
        return nodes

    def _state(self, service: str, code: str) -> str:
        """What the service's host says of the node, or why it says nothing (a process that
        is restarting, or too busy to answer in time, is asked again)."""
        if not self.processes[service].running:
            return "the process is not running"
        try:
            return self.states(service).get(code, "absent")
        except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
            return f"no answer ({type(exc).__name__})"

    def wait_for_all(self, codes: list[str], state: str = "running", timeout: float = 90) -> None:
        """Until every service of the host says ``state`` of each of ``codes`` (one question
        per service a round, however many nodes)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {service: self._states(service) for service in HOSTED_SERVICES}
            late = {
                code: {s: states.get(code, "absent") for s, states in seen.items()}
                for code in codes
                if any(states.get(code, "absent") != state for states in seen.values())
            }
            if not late:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes on {self.name} not {state}: {late}")
            time.sleep(0.5)

    def _states(self, service: str) -> dict[str, str]:
        if not self.processes[service].running:
            return {}
        try:
            return self.states(service)
        except (httpx.HTTPError, AssertionError, KeyError, ValueError):
            return {}

    def wait_for(
        self,
        code: str,
        state: str = "running",
        timeout: float = 90,
        services: tuple[str, ...] = HOSTED_SERVICES,
    ) -> dict[str, str]:
        """Until each of ``services`` of the host says of node ``code`` a state that starts
        with ``state`` (``"absent"``: the host no longer serves it); what they said."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {service: self._state(service, code) for service in services}
            if all(found.startswith(state) for found in seen.values()):
                return seen
            if time.monotonic() > deadline:
                logs = "\n".join(
                    p.log.read_text()[-1500:] for p in self.processes.values() if p.log.exists()
                )
                raise AssertionError(f"node {code} on {self.name}: {seen}, not {state}\n{logs}")
            time.sleep(0.2)

    def ops(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "yixian.ops", *args],
            env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"yixian {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout


@dataclass
class HostedNode(LocalNode):
    """A node served by a :class:`LocalHost` (``host`` set before ``init``)."""

    host: LocalHost | None = None

    @property
    def processes(self) -> tuple[Process, ...]:
        return ()

    @property
    def settings_file(self) -> Path:
        assert self.host is not None
        return self.host.root / f"{self.code}.env"

    def _admin_env(self) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k.startswith("YIXIAN_ADMIN_KAFKA_")}

    def init(self) -> None:
        """``yixian host add``: the node set up as ``node init`` does, then put on the host."""
        assert self.host is not None
        self.settings_file.write_text(node_file_text(self.env))
        args = ["host", "add", str(self.settings_file), "--dir", str(self.host.directory)]
        args += ["--root-name", self.name, *([] if self.secure else ["--no-kafka"])]
        printed = self.host.ops(*args, env=self._admin_env())
        for line in printed.splitlines():
            if line.startswith("root organization"):
                self.root_id = UUID(line.rsplit(" ", 1)[-1])
            elif line.startswith("operator API key"):
                self.key = line.rsplit(" ", 1)[-1]

    def ops(self, *args: str) -> str:
        """The operator's command line for this node, its settings from its host file."""
        assert self.host is not None
        file = str(self.host.directory / f"{self.code}.env")
        return self.host.ops("--node-file", file, *args, env=self._admin_env())

    def url(self, service: str) -> str:
        assert self.host is not None
        return f"{self.host.url(service)}/nodes/{self.code}"

    def start(self) -> None:
        """Wait until the host serves the node, then open its registry client."""
        assert self.host is not None
        self.host.wait_for(self.code)
        self.registry.url = self.url("registry")
        self.sync.url = self.url("sync")
        self.notify.url = self.url("notify")
        self.http = httpx.AsyncClient(
            base_url=self.url("registry"),
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )

    def stop(self) -> None:
        """Nothing of its own to stop: ``remove`` takes it off the host."""

    def remove(self) -> None:
        assert self.host is not None
        self.host.ops("host", "remove", self.code, "--dir", str(self.host.directory))
        self.host.wait_for(self.code, "absent")

    def add_again(self, timeout: float = 90) -> None:
        """``yixian host add`` with the node's settings file again (after ``remove``), as an
        operator brings a node back; until its host serves it."""
        assert self.host is not None
        args = ["host", "add", str(self.settings_file), "--dir", str(self.host.directory)]
        self.host.ops(*args, env=self._admin_env())
        self.host.wait_for(self.code, timeout=timeout)

    def restore(self) -> None:
        """Put it back on the host (as ``host add`` with the same file does)."""
        assert self.host is not None
        target = self.host.directory / f"{self.code}.env"
        target.write_text(self.settings_file.read_text())
        target.chmod(0o600)
        self.host.wait_for(self.code)

    def describe(self) -> dict[str, Any]:
        return {"code": self.code, "host": self.host.name if self.host else None}
