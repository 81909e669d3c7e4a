"""Each service starts as a real process against the real stack, logs JSON, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from yixian.localstack import LocalStack

pytestmark = pytest.mark.e2e


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be JSON


def _wait_for(
    path: Path, event: str, process: subprocess.Popen[bytes], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in _read_json_lines(path):
            if record.get("event") == event:
                return record
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {event!r} log line; output:\n{path.read_text()}")


@pytest.mark.parametrize("service", ["registry", "sync", "notify"])
def test_service_starts_logs_json_and_stops_cleanly(
    service: str, local_stack: LocalStack, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "YIXIAN_NODE": "110105",
        "YIXIAN_DATABASE_URL": database_url,
        "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": local_stack.config.kafka_bootstrap,
        "YIXIAN_HTTP_PORT": "0",
        "YIXIAN_NATIONAL_ID_KEY": "lifecycle-test-key-lifecycle-test-key-00",
    }
    output = tmp_path / f"{service}.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", f"yixian.{service}"], env=env, stdout=sink, stderr=sink
        )
    try:
        started = _wait_for(output, "service started", process, timeout=60)
        assert started["service"] == service
        assert started["node"] == "110105"
        assert started["level"] == "info"
        assert started["timestamp"].endswith("Z")
        if service == "registry":
            ready = httpx.get(f"{started['http']}/readyz", timeout=10).json()
            assert ready == {
                "ready": True,
                "node": "110105",
                "checks": {"database": "ok", "migrations": "ok", "kafka": "ok"},
                "degraded": [],  # no parked outbox rows
            }
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    records = _read_json_lines(output)
    assert [r["event"] for r in records if r["event"].startswith("service ")][
        -1
    ] == "service stopped"
    assert all(r.get("service") == service for r in records)
