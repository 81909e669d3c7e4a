"""The figures of a run, each beside what it is compared with, as JSON and as a table."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    how: str
    target: str = ""
    against: str | None = None
    """The ceiling or peer this figure is compared with (a key of ``Report.figures``)."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    smoke: bool
    figures: dict[str, Figure] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def add(self, key: str, figure: Figure) -> Figure:
        self.figures[key] = figure
        return figure

    def ratio(self, key: str) -> float | None:
        figure = self.figures[key]
        other = self.figures.get(figure.against or "")
        if other is None or not other.value:
            return None
        return figure.value / other.value

    def as_json(self) -> dict[str, Any]:
        return {
            "smoke": self.smoke,
            "started_at": self.started_at,
            "machine": machine(),
            "figures": {
                key: asdict(f) | {"ratio": self.ratio(key)} for key, f in self.figures.items()
            },
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n")

    def table(self) -> Table:
        table = Table(title="Yixian benchmark" + (" (smoke)" if self.smoke else ""))
        for column in ("figure", "value", "compared with", "ratio", "target"):
            table.add_column(column, justify="right" if column in {"value", "ratio"} else "left")
        for key, figure in self.figures.items():
            ratio = self.ratio(key)
            other = self.figures.get(figure.against or "")
            table.add_row(
                figure.name,
                f"{figure.value:,.1f} {figure.unit}",
                f"{other.name}: {other.value:,.1f} {other.unit}" if other else "",
                f"{ratio:.2f}×" if ratio is not None else "",
                figure.target,
            )
        return table

    def print(self, console: Console | None = None) -> None:
        (console or Console(width=160)).print(self.table())


def machine() -> dict[str, Any]:
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    model = ""
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_mib": memory,
        "python": platform.python_version(),
        "system": platform.platform(),
    }
