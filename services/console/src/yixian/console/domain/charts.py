"""Statistics as horizontal bar charts, drawn on the server as SVG: the geometry here, the
drawing in the template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LABEL_WIDTH = 220
PLOT_WIDTH = 420
BAR_HEIGHT = 20
GAP = 8
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    open: int
    """Of ``value``, those still open (drawn darker)."""
    y: int
    width: int
    open_width: int


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(title: str, groups: Sequence[tuple[str, int, int]]) -> Chart:
    """``groups``: (label, movements, of which open), drawn in the order given, scaled to
    the largest."""
    largest = max((value for _, value, _ in groups), default=0)
    bars = []
    for index, (label, value, still_open) in enumerate(groups):
        width = round(PLOT_WIDTH * value / largest) if largest else 0
        open_width = round(PLOT_WIDTH * min(still_open, value) / largest) if largest else 0
        y = TOP + index * (BAR_HEIGHT + GAP)
        bars.append(Bar(label, value, still_open, y, width, open_width))
    height = TOP * 2 + len(bars) * (BAR_HEIGHT + GAP)
    return Chart(title, tuple(bars), LABEL_WIDTH + PLOT_WIDTH + 60, height, LABEL_WIDTH)
