"""Property-based fuzzing of the published OpenAPI: whatever the input, never a 5xx.

The registry runs as a real process on the real database; schemathesis generates
requests from ``/openapi.json`` for every operation, authenticated as the node's operator.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from uuid import uuid4

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from yixian.localstack import LocalStack

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry_process(local_stack: LocalStack) -> Iterator[tuple[str, str]]:
    name = f"test_{uuid4().hex[:16]}"
    admin = local_stack.config.database_dsn("postgres")

    async def database(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(database(f'CREATE DATABASE "{name}"'))
    port = _free_port()
    env = {
        **os.environ,
        "YIXIAN_NODE": "411525",
        "YIXIAN_PARTNERS": "110105,350300",
        "YIXIAN_DATABASE_URL": local_stack.config.database_dsn(name),
        "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": local_stack.config.kafka_bootstrap,
        "YIXIAN_KAFKA_TOPIC_NAMESPACE": f"t{uuid4().hex[:12]}",
        "YIXIAN_NATIONAL_ID_KEY": "fuzz-key-fuzz-key-fuzz-key-fuzz-key-0000",
        "YIXIAN_HTTP_PORT": str(port),
        "YIXIAN_LOG_LEVEL": "WARNING",
    }
    init = subprocess.run(
        [sys.executable, "-m", "yixian.registry", "init", "--root-name", "固始县委组织部"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = init.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    process = subprocess.Popen(
        [sys.executable, "-m", "yixian.registry"], env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, key
    finally:
        process.terminate()
        process.wait(timeout=30)
        asyncio.run(database(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    assert process.returncode == 0


def test_no_input_gives_a_server_error(registry_process: tuple[str, str]) -> None:
    url, key = registry_process
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, "every endpoint is published"
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {key}"},
                checks=[not_a_server_error],
                timeout=30,
            )
            statuses[response.status_code] += 1

        try:
            fuzz()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert failures == []
    print(f"fuzzed {len(operations)} operations: {dict(sorted(statuses.items()))}")
    assert statuses[401] < statuses.total() / 10, "the generated calls were authenticated"
    assert statuses[200] + statuses[201] > 0, "some generated calls succeeded"
