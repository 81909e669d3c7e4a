"""The timeline's and the charts' geometry, how values are shown, and how events page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from yixian.console.domain.charts import PLOT_WIDTH, bar_chart
from yixian.console.domain.display import beijing, flatten
from yixian.console.domain.events import cursor, first_page, parse_cursor
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


def test_a_time_beijing_cannot_show_is_shown_in_utc_or_as_it_came() -> None:
    assert beijing("9999-12-31T20:00:00Z") == "9999-12-31 20:00:00 UTC"  # past 9999 in Beijing
    assert beijing(datetime.max.replace(tzinfo=UTC), seconds=False) == "9999-12-31 23:59 UTC"
    assert beijing("0001-01-01T00:30:00+08:00") == "0001-01-01 00:30:00+08:00"
    assert beijing("9999-12-31T15:59:59Z") == "9999-12-31 23:59:59"


def test_events_sharing_a_millisecond_page_by_their_whole_position() -> None:
    same_ms = [(1000, "t.local", 0, offset) for offset in range(5)]
    shuffled = [same_ms[i] for i in (3, 0, 4, 1, 2)]
    page = first_page(shuffled, lambda p: p, 2, None)
    assert page == same_ms[:2]
    after = parse_cursor(cursor(page[-1]))
    assert after == (1000, "t.local", 0, 1)
    rest = first_page([p for p in shuffled if p > after], lambda p: p, 2, None)
    assert rest == same_ms[2:4]  # the next page starts within the same millisecond
    unread_from = (1000, "t.local", 0, 2)  # a partition read up to here, not to its end
    assert first_page(shuffled, lambda p: p, 10, unread_from) == same_ms[:3]
    assert parse_cursor("1000.0.1.yixian.v1.411525.local") == (1000, "yixian.v1.411525.local", 0, 1)
    for bad in ("", "99999999999999999999", "1.2.3", "1.2.x.t", "1.2.3.t/..", "１.2.3.t"):
        assert parse_cursor(bad) is None, bad
