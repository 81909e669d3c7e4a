"""The benchmark at tiny sizes, so that its code cannot rot: every figure, ceiling and peer
is measured on the real stack and lands in the report with its ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yixian.bench.figures import Sizes, run_bench
from yixian.localstack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


async def test_the_benchmark_measures_every_figure(local_stack: LocalStack, tmp_path: Path) -> None:
    said: list[str] = []
    report = await run_bench(local_stack, Sizes.smoke(), said.append)
    figures = report.figures
    for key in ("import", "relay", "peer_relay", "apply", "replay", "e2e_throughput",
                "latency_50", "latency_half", "notify", "kafka_producer", "kafka_consumer",
                "postgres", "trace", "trace_full_read"):  # fmt: skip
        assert figures[key].value > 0, key
    assert sum(key.startswith("rss_") for key in figures) == 8  # four services × two nodes
    # CPU per movement: eight service processes, PostgreSQL, Kafka, the load generator
    assert sum(key.startswith("cpu_") for key in figures) == 11
    assert figures["cpu_postgresql"].value > 0
    offered = figures["latency_50"].detail
    assert offered["offered"] == 50
    assert offered["achieved"] > 0
    assert {"shed", "failed", "p50_ms", "p95_ms"} <= offered.keys()
    # the trace read the movement's records and the unread tail, not the topic's history
    trace = figures["trace"].detail
    assert trace["records_on_topics"] >= Sizes.smoke().trace_events
    assert 0 < trace["read"] <= trace["recorded"] + trace["tail"]
    assert figures["trace_full_read"].detail["read"] >= Sizes.smoke().trace_events
    for key in ("relay", "apply", "replay", "e2e_throughput", "trace"):
        ratio = report.ratio(key)
        assert ratio is not None, key
        assert ratio > 0, key
    assert figures["notify"].detail["distinct"] == Sizes.smoke().notices
    # the node host: idle nodes on a host beside an empty host and a single node's
    # processes, and movements between two nodes of one host, each with the CPU they took
    for key in ("host_node_memory", "host_node_pss", "single_node_memory", "single_node_pss",
                "host_empty_memory", "host_node_pg_connections", "single_node_pg_connections",
                "single_node_kafka_connections", "host_e2e_throughput",
                "host_cpu_per_movement", "e2e_cpu_per_movement"):  # fmt: skip
        assert figures[key].value > 0, key
    for key in ("host_node_cpu", "host_empty_cpu", "single_node_cpu", "host_node_pg_cpu"):
        assert figures[key].value >= 0, key
    for key in ("host_node_memory", "host_node_pg_connections", "host_e2e_throughput",
                "host_cpu_per_movement"):  # fmt: skip
        assert report.ratio(key) is not None, key
    # a node on a host costs a part of what a node's own four processes cost
    assert figures["host_node_memory"].value < figures["single_node_memory"].value / 4
    per_service = figures["host_node_memory"].detail["per_service"]
    assert set(per_service) == {"registry", "sync", "notify"}
    assert figures["host_e2e_throughput"].detail["failed"] == 0
    # the console's screens on a filled node, and the registry's answers behind them
    assert figures["console_fill"].value > 0
    floors = ("console_pk_select", "console_queue_scan", "console_report_scan")
    screens = [k for k in figures if k.startswith("console_") and k not in
               ("console_fill", *floors)]  # fmt: skip
    behind = [k for k in figures if k.startswith("registry_")]
    assert {"console_queues", "console_statistics", "console_secretary_queues"} <= set(screens)
    assert {"registry_queue_counts", "registry_statistics_4_breakdowns"} <= set(behind)
    for key in screens + behind:
        assert figures[key].against in floors, key
        assert report.ratio(key) is not None, key
        assert 0 < figures[key].detail["p50_ms"] <= figures[key].detail["p95_ms"], key
    out = tmp_path / "results.json"
    report.write(out)
    written = json.loads(out.read_text())
    assert written["smoke"] is True
    assert written["machine"]["cpus"] >= 1
    assert written["figures"]["relay"]["ratio"] == report.ratio("relay")
    rendered = report.table()
    assert rendered.row_count == len(figures)
