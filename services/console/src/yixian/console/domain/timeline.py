"""A trace drawn as a timeline: one row per hop, a lane per node, and each hop's latency
since the one before as a bar on a logarithmic scale (a millisecond and a week both fit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

ROW_HEIGHT = 30
TOP = 34
LANE_WIDTH = 110
LANE_LEFT = 70
BAR_WIDTH = 220
_LONGEST = 7 * 24 * 3600 * 1000.0
"""A week, in milliseconds: the full width of a latency bar."""


class HopLike(Protocol):
    @property
    def at(self) -> datetime: ...
    @property
    def node(self) -> str: ...
    @property
    def latency_ms(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Row:
    hop: HopLike
    y: int
    x: int
    """Where the hop's dot is: its node's lane."""
    previous_x: int | None
    """The dot of the hop before it (a hop to another node draws across lanes)."""
    bar: int
    """The latency bar's width."""
    latency: str


@dataclass(frozen=True, slots=True)
class Timeline:
    lanes: tuple[tuple[str, int], ...]
    """Each node and the x of its lane, in order of first appearance."""
    rows: tuple[Row, ...]
    bar_left: int
    text_left: int
    width: int
    height: int
    total: str
    """From the first hop to the last."""


def latency_text(ms: float | None) -> str:
    """``+12 ms``, ``+1.5 s``, ``+4 min``, ``+2.5 h``, ``+3.0 d``; empty for the first hop."""
    if ms is None:
        return ""
    seconds = ms / 1000
    if seconds < 1:
        return f"+{ms:.0f} ms"
    if seconds < 60:
        return f"+{seconds:.1f} s"
    if seconds < 3600:
        return f"+{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"+{seconds / 3600:.1f} h"
    return f"+{seconds / 86400:.1f} d"


def bar_width(ms: float | None) -> int:
    if not ms or ms <= 0:
        return 0
    return max(1, min(BAR_WIDTH, round(BAR_WIDTH * math.log10(1 + ms) / math.log10(1 + _LONGEST))))


def lay_out(hops: Sequence[HopLike]) -> Timeline:
    """The geometry of the timeline of ``hops`` (in time order, latencies set)."""
    lanes: dict[str, int] = {}
    for hop in hops:
        lanes.setdefault(hop.node, LANE_LEFT + len(lanes) * LANE_WIDTH)
    bar_left = LANE_LEFT + max(len(lanes) - 1, 0) * LANE_WIDTH + 60
    rows = []
    previous: int | None = None
    for index, hop in enumerate(hops):
        x = lanes[hop.node]
        rows.append(
            Row(hop, TOP + index * ROW_HEIGHT, x, previous, bar_width(hop.latency_ms),
                latency_text(hop.latency_ms))
        )  # fmt: skip
        previous = x
    total = (hops[-1].at - hops[0].at).total_seconds() * 1000 if len(hops) > 1 else None
    return Timeline(
        lanes=tuple(lanes.items()),
        rows=tuple(rows),
        bar_left=bar_left,
        text_left=bar_left + BAR_WIDTH + 80,
        width=bar_left + BAR_WIDTH + 80 + 640,
        height=TOP + len(rows) * ROW_HEIGHT,
        total=latency_text(total).removeprefix("+"),
    )
