"""The timeline's and the charts' geometry, and how values are shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from yixian.console.domain.charts import PLOT_WIDTH, bar_chart
from yixian.console.domain.display import beijing, flatten
from yixian.console.domain.timeline import BAR_WIDTH, bar_width, latency_text, lay_out


@dataclass(frozen=True)
class Hop:
    at: datetime
    node: str
    latency_ms: float | None


def test_latency_reads_in_the_unit_that_fits() -> None:
    assert latency_text(None) == ""
    assert latency_text(12.4) == "+12 ms"
    assert latency_text(1500) == "+1.5 s"
    assert latency_text(4 * 60_000) == "+4 min"
    assert latency_text(2.5 * 3_600_000) == "+2.5 h"
    assert latency_text(3 * 86_400_000) == "+3.0 d"


def test_a_longer_wait_draws_a_longer_bar_up_to_a_week() -> None:
    widths = [bar_width(ms) for ms in (1, 10, 1000, 60_000, 3_600_000, 86_400_000)]
    assert widths == sorted(widths)
    assert len(set(widths)) == len(widths)
    assert bar_width(None) == 0
    assert bar_width(0) == 0
    assert bar_width(30 * 86_400_000) == BAR_WIDTH


def test_each_node_has_its_lane_and_a_hop_to_another_node_crosses() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    hops = [
        Hop(start, "411525", None),
        Hop(start + timedelta(milliseconds=40), "411525", 40),
        Hop(start + timedelta(seconds=2), "110105", 1960),
    ]
    drawn = lay_out(hops)
    assert [node for node, _ in drawn.lanes] == ["411525", "110105"]
    lanes = dict(drawn.lanes)
    assert [r.x for r in drawn.rows] == [lanes["411525"], lanes["411525"], lanes["110105"]]
    assert drawn.rows[2].previous_x == lanes["411525"]
    assert drawn.rows[0].previous_x is None
    assert drawn.rows[2].latency == "+2.0 s"
    assert drawn.total == "2.0 s"
    assert drawn.rows[0].y < drawn.rows[1].y < drawn.rows[2].y <= drawn.height


def test_bars_scale_to_the_largest_and_open_is_a_part() -> None:
    chart = bar_chart("按状态", [("已报到", 10, 10), ("已返回", 5, 0), ("待报到", 0, 0)])
    assert [b.width for b in chart.bars] == [PLOT_WIDTH, PLOT_WIDTH // 2, 0]
    assert [b.open_width for b in chart.bars] == [PLOT_WIDTH, 0, 0]
    assert chart.bars[0].y < chart.bars[1].y
    assert bar_chart("空", []).empty


def test_records_flatten_and_times_show_in_beijing() -> None:
    record = {"member": {"name": "张建国", "national_id_hash": None}, "dues_paid": ["2026-03"],
              "dues": [{"receipt": "A1"}], "note": ""}  # fmt: skip
    assert flatten(record) == [
        ("member.name", "张建国"),
        ("dues_paid", "2026-03"),
        ("dues[0].receipt", "A1"),
    ]
    assert beijing("2026-03-01T01:30:00Z") == "2026-03-01 09:30:00"
    assert beijing("2026-03-01") == "2026-03-01"
    assert beijing(None) == ""
    assert beijing("not a timeT") == "not a timeT"
