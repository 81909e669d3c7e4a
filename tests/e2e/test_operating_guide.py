"""The operator's guide is tested: every ``sh`` block of docs/operating.md's "Two nodes on
one machine" runs as written, in order, in one bash (``set -euo pipefail``), from an empty
database server's point of view: two new databases, a namespace and ports of the test's
own, set through the variables the guide's first block reads. The guide's own commands
start the services, register an outflow at Gushi with the key its ``node init`` printed,
see it arrive at Chaoyang, show the SMS notify sent, and stop everything; the test holds
each of those to what really happened. Whatever of the guide's processes still run at the
end are stopped with their process group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operating.md"
SECTION = "## Two nodes on one machine"
PHONE = "+86 138 0000 0001"


def guide_blocks() -> list[str]:
    """The ``sh`` blocks of the guide's section, in order."""
    text = GUIDE.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else None]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, taken: set[int]) -> int:
    """The first of ``count`` consecutive free ports none of which is in ``taken``."""
    for base in range(23000 + os.getpid() % 1000 * 10, 60000, 10):
        wanted = set(range(base, base + count))
        if not wanted & taken and all(_free(port) for port in wanted):
            taken |= wanted
            return base
    raise RuntimeError("no free ports")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def databases(local_stack: LocalStack) -> AsyncIterator[tuple[str, str]]:
    """Two database names no server has yet (the guide creates them); dropped after."""
    names = (f"guide_{uuid4().hex[:10]}_411525", f"guide_{uuid4().hex[:10]}_110105")
    yield names
    conn = await asyncpg.connect(local_stack.config.database_dsn("postgres"))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def test_the_guide_links_two_nodes_on_one_machine(
    local_stack: LocalStack,
    topic_names: TopicNames,
    databases: tuple[str, str],
    tmp_path: Path,
) -> None:
    blocks = guide_blocks()
    assert len(blocks) == 8, "the section's steps, each one sh block"
    taken: set[int] = set()
    gushi_db, chaoyang_db = databases
    config = local_stack.config
    ops = tmp_path / "nodes"
    choices = {
        "KAFKA": config.sasl_bootstrap,
        "POSTGRES": config.database_dsn("").rstrip("/"),
        "NAMESPACE": topic_names.namespace,
        "GUSHI_DB": gushi_db,
        "CHAOYANG_DB": chaoyang_db,
        "GUSHI_HTTP": str(free_ports(3, taken)),
        "CHAOYANG_HTTP": str(free_ports(3, taken)),
        "SMTP_PORT": str(free_ports(1, taken)),
        "SMS_PORT": str(free_ports(1, taken)),
        "OPS": str(ops),
    }
    # the guide's settings are all the services get: nothing of this process's YIXIAN_*
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIXIAN_")} | choices
    guide = await asyncio.create_subprocess_exec(
        "bash", "-c", "set -euo pipefail\n" + "\n".join(blocks),
        cwd=ROOT, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        printed, _ = await asyncio.wait_for(guide.communicate(), timeout=240)
        text = printed.decode(errors="replace")
        assert guide.returncode == 0, f"the guide failed:\n{text[-6000:]}"

        # its own stop block stopped every process it started
        for _ in range(300):
            if not _group_alive(guide.pid):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the guide's stop block left processes running")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(guide.pid, signal.SIGKILL)

    # Gushi registered a movement, and Chaoyang's registry answered with it, expected
    found = re.search(r"^movement ([0-9a-f-]{36}) registered at Gushi$", text, re.M)
    assert found, text[-3000:]
    movement = UUID(found.group(1))
    seen = [json.loads(line) for line in text.splitlines() if line.startswith('{"movement_id"')]
    assert seen == [{"movement_id": str(movement), "state": "awaiting_check_in"}]

    # ... because Chaoyang's database holds Gushi's group of it, applied by its sync
    conn = await asyncpg.connect(config.database_dsn(chaoyang_db))
    try:
        row = await conn.fetchrow(
            "SELECT origin, host, origin_group IS NOT NULL AS has_origin_group"
            " FROM movements WHERE movement_id = $1",
            movement,
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["origin"], row["host"], row["has_origin_group"]) == ("411525", "110105", True)

    # each node logged in as its own principal, made by node init with the node's password
    for code in ("411525", "110105"):
        settings = (ops / f"{code}.env").read_text()
        assert f"YIXIAN_KAFKA_USERNAME={topic_names.namespace}.node-{code}\n" in settings
        init = json.loads((ops / f"{code}-init.json").read_text())
        assert init["kafka"]["principal"] == f"{topic_names.namespace}.node-{code}"
        assert init["kafka"]["password"] is None  # the one in the node's settings
        assert init["database"]["created"] is True
        assert init["operator_api_key"].startswith("yx_")

    # notify sent the member the check-in instructions through the guide's SMS sink
    sms = [
        json.loads(line)
        for line in (ops / "logs" / "sinks.log").read_text().splitlines()
        if line.startswith("{")
    ]
    texts = [s["body"]["text"] for s in sms if s["path"] == "/sms/messages"]
    assert any("张建国" in t for t in texts), sms
    assert all(s["body"]["to"] == PHONE for s in sms if s["path"] == "/sms/messages")
