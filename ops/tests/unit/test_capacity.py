"""The arithmetic of the national plan (docs/scale.md), and that the document is its output."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yixian.ops.capacity import (
    BEGIN,
    END,
    MEASURED,
    EventSizes,
    Figure,
    Inputs,
    Measured,
    Plan,
    Province,
    event_sizes,
    number,
    plan,
    provinces,
    region,
    render,
)
from yixian.ops.cli import app

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "scale.md"
# two provinces of ten counties each, events of round sizes
TINY = (Province("41", "河南省", 10), Province("11", "北京市", 10))
SIZES = EventSizes(business=1_000, heartbeat=500, digest_base=600, digest_bucket=100)


def tiny(measured: Measured = MEASURED) -> Plan:
    return Plan(Inputs(), measured, TINY, SIZES)


def test_the_country_is_the_current_division_list() -> None:
    found = {p.name: p.nodes for p in provinces()}
    assert len(found) == 31
    assert found["北京市"] == 16  # its 16 districts
    assert 2_800 < sum(found.values()) < 2_900  # the brief's ~2,850 counties


def test_the_pair_graph_counts_each_link_once_and_two_topics_per_link() -> None:
    p = tiny()
    # 3 capital + 2 prefecture + 5/2 neighbours + 4 × 3 hubs + 10 one-off, per node
    assert p.links() == pytest.approx(20 * 29.5)
    assert p.pair_topics == pytest.approx(2 * 590)
    assert p.partners == pytest.approx(59)
    # across a border: 15% of neighbours, 85% of hubs, half the one-off destinations
    assert p.cross_province_links == pytest.approx(20 * (2.5 * 0.15 + 12 * 0.85 + 10 * 0.5))
    assert p.busiest_hub_partners == pytest.approx(0.6 * 20 + 59)


def test_the_layouts_count_topics_partitions_and_grants() -> None:
    today, one_partition, provinces_, destination3, destination1 = tiny().layouts()
    # a topic per ordered pair: 1,180 pair topics and each node's local and dead-letter topics
    assert today.topics == pytest.approx(1_180 + 40)
    assert today.partitions == pytest.approx(3 * 1_220)
    assert today.acls == pytest.approx(4 * 20 + 4 * 590)  # 4 per node, 2 per pair topic
    assert today.brokers(3, 1_000) == math.ceil(3 * 3_660 / 1_000)
    assert today.brokers(3, 4_000) == 3  # never fewer than three
    assert one_partition.partitions == pytest.approx(1_180 + 3 * 40)
    # a cluster per province: a topic within one province once, one across a border twice
    within, cross = 590 - 311.5, 311.5
    assert provinces_.topics == pytest.approx(2 * within + 4 * cross + 40)
    assert provinces_.acls == pytest.approx(4 * 20 + 4 * within + 6 * cross + 2)
    assert provinces_.brokers(3, 4_000) == 6  # three in each of the two
    # a topic per destination: one inbound topic per node; a WRITE grant per link direction
    assert destination3.topics == destination1.topics == pytest.approx(20 + 40)
    assert destination3.partitions == pytest.approx(3 * 60)
    assert destination1.acls == pytest.approx(5 * 20 + 2 * 590)
    assert destination1.metadata_bytes() == pytest.approx(
        60 * 54 + 60 * 122 + (2 * 20 + 40) * 58 + 1_280 * 79 + 20 * (121 + 185)
    )


def test_traffic_and_link_upkeep() -> None:
    p = tiny()
    members = 2_000_000
    per_year = members / 3 * 8 + members * (10 * 2 + 4 + 1)
    assert sum(p.pair_events_per_year().values()) == pytest.approx(per_year)
    assert p.pair_events_per_second == pytest.approx(per_year / (365 * 86_400))
    today, proposed = p.inputs.upkeep
    assert p.upkeep_per_second(today) == pytest.approx((2 * 590 / 10, 2 * 590 / 300))
    beats, digests = p.upkeep_per_second(proposed)
    assert p.upkeep_bytes_per_day(proposed) == pytest.approx(
        (beats * 500 + digests * p.digest_bytes) * 86_400
    )
    # a digest has a bucket for each of its 256 that holds a movement
    shared = p.shared_per_link
    assert p.digest_bytes == pytest.approx(600 + 100 * 256 * (1 - (255 / 256) ** shared))


def test_event_sizes_are_the_contracts_own() -> None:
    sizes = event_sizes()
    assert 300 < sizes.heartbeat < sizes.business < 2_000
    assert 90 < sizes.digest_bucket < 130  # a bucket number, a count and a SHA-256 in hex


def test_a_figure_waits_for_its_measurement_as_a_formula() -> None:
    waiting = Figure.of(286) + Figure.of(150) * Figure.measured(
        Measured(), "idle_memory_per_node_mb"
    )
    assert waiting.value is None
    assert waiting.show() == "286 + 150 × ⟨measured: idle-memory-per-node⟩"
    assert (waiting * 2).show() == "(286 + 150 × ⟨measured: idle-memory-per-node⟩) × 2"
    known = Figure.of(286) + 150 * Figure.measured(
        Measured(idle_memory_per_node_mb=20), "idle_memory_per_node_mb"
    )
    assert known.value == 3_286
    assert known.show() == "3,286"


def test_a_measurement_replaces_its_token_everywhere() -> None:
    measured = Measured(
        idle_memory_per_node_mb=25,
        cpu_per_movement_ms=5,
        replay_events_per_second=30_000,
        sim_idle_cpu_per_link_ms=0.5,
        sim_connections_per_node=2,
    )
    assert "⟨measured:" not in render(plan(measured=measured)).split("Not yet measured")[1]
    assert "⟨measured: cpu-per-movement⟩" in render(plan(measured=Measured()))


def test_docs_scale_md_holds_this_module_s_tables() -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    assert region(document) == render(plan()), (
        "docs/scale.md is stale: python -m yixian.ops.capacity --write docs/scale.md"
    )


runner = CliRunner()


def test_the_command_refuses_a_measurement_that_is_not_a_positive_number() -> None:
    for bad in ("-1", "0", "inf", "nan", "many"):
        result = runner.invoke(app, ["capacity", "--replay-events-per-second", bad])
        assert result.exit_code == 2, result.output
        assert "--replay-events-per-second" in result.output
        assert "Traceback" not in result.output


def test_the_command_prints_with_a_measurement_given() -> None:
    result = runner.invoke(app, ["capacity", "--cpu-per-movement", "5"])
    assert result.exit_code == 0, result.output
    assert "⟨measured: cpu-per-movement⟩" not in result.output
    assert "cpu-per-movement 5 ms;" in result.output  # the given figure, not the recorded one
    assert f"idle-memory-per-node {number(MEASURED.idle_memory_per_node_mb or 0)} MB" in (
        result.output
    )


def test_write_replaces_the_region_between_the_markers_only(tmp_path: Path) -> None:
    document = tmp_path / "scale.md"
    document.write_text(f"# before\n{BEGIN}\nold tables\n{END}\nafter\n", encoding="utf-8")
    result = runner.invoke(app, ["capacity", "--write", str(document)])
    assert result.exit_code == 0, result.output
    written = document.read_text(encoding="utf-8")
    assert written.startswith(f"# before\n{BEGIN}\n")
    assert written.endswith(f"{END}\nafter\n")
    assert region(written) == render(plan())


def test_write_refuses_a_document_without_markers_or_with_a_figure_given(tmp_path: Path) -> None:
    document = tmp_path / "notes.md"
    document.write_text("no markers here\n", encoding="utf-8")
    result = runner.invoke(app, ["capacity", "--write", str(document)])
    assert result.exit_code == 1
    assert str(document) in result.output
    assert "capacity:begin" in result.output
    assert document.read_text(encoding="utf-8") == "no markers here\n"
    missing = runner.invoke(app, ["capacity", "--write", str(tmp_path / "absent.md")])
    assert missing.exit_code == 1
    assert "absent.md" in missing.output
    given = runner.invoke(app, ["capacity", "--write", str(document), "--cpu-per-movement", "5"])
    assert given.exit_code == 2
    assert "MEASURED" in given.output
