"""What the simulation costs, read from ``/proc`` and PostgreSQL: CPU seconds of the node
hosts' processes, of PostgreSQL and of the Kafka broker over the day (across the restarts
the faults make), resident memory of the hosts' processes, and the database connections the
nodes hold."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from yixian.localstack.stack import LocalStack

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int | None, *, children: bool = False) -> float:
    """User + system CPU of ``pid`` so far (with its reaped children's: ``children``)."""
    fields = _stat(pid) if pid is not None else None
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(pid):
                found.append(int(entry.name))
    return found


def postmaster_pid(stack: LocalStack) -> int | None:
    try:
        return int((stack.postgres.data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def postgres_cpu(stack: LocalStack) -> float:
    """The server's CPU: the postmaster, its backends that ended (reaped, in its children's
    time) and those still running."""
    pid = postmaster_pid(stack)
    if pid is None:
        return 0.0
    return cpu_seconds(pid, children=True) + sum(cpu_seconds(c) for c in _children(pid))


def memory_mib(pid: int | None) -> tuple[float, float]:
    """(resident now, peak resident) of ``pid``, MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return 0.0, 0.0
    rss = re.search(r"VmRSS:\s+(\d+) kB", status)
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
    return (
        int(rss.group(1)) / 1024 if rss else 0.0,
        int(hwm.group(1)) / 1024 if hwm else 0.0,
    )


@dataclass
class CpuMeter:
    """CPU seconds of named processes over a window. A process that goes away (killed,
    restarted) is read just before: what it used so far is kept, and its successor counts
    from its own start."""

    readers: dict[str, Callable[[], float]]
    used: dict[str, float] = field(default_factory=dict)
    since: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.used = dict.fromkeys(self.readers, 0.0)
        self.since = {name: read() for name, read in self.readers.items()}

    def going(self, name: str) -> None:
        """``name``'s process is about to end."""
        if name in self.since:
            self.used[name] += max(0.0, self.readers[name]() - self.since[name])
            self.since[name] = 0.0  # its successor, from its start

    def totals(self) -> dict[str, float]:
        return {
            name: self.used[name] + max(0.0, read() - self.since[name])
            for name, read in self.readers.items()
        }


@dataclass
class Connections:
    """The database connections of the simulation's nodes, sampled from
    ``pg_stat_activity``: idle (before the day), peak, and at the end."""

    stack: LocalStack
    databases: dict[str, str]
    """The node of each database name."""
    peak_total: int = 0
    peak_node: int = 0
    samples: list[int] = field(default_factory=list)

    async def count(self) -> dict[str, int]:
        """Connections per node now."""
        conn = await asyncpg.connect(self.stack.config.database_dsn("postgres"), timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT datname, count(*) AS n FROM pg_stat_activity"
                " WHERE datname = ANY($1::text[]) GROUP BY datname",
                list(self.databases),
            )
        finally:
            await conn.close()
        return {self.databases[r["datname"]]: int(r["n"]) for r in rows}

    async def sample(self, stop: asyncio.Event, every: float = 2.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                counts = await self.count()
                total = sum(counts.values())
                self.samples.append(total)
                self.peak_total = max(self.peak_total, total)
                self.peak_node = max(self.peak_node, max(counts.values(), default=0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
