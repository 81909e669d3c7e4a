"""Rebuilding a node's partner-owned data from the pair topic (``sync rebuild``) leaves
every row as live apply left it: the replicas, their history, the attendances, the inbox
with each event's outcome, the dead letters, the link's numbers and the digest. The topics
carry what a link may: the same records twice, an older version after a newer one, and
poison (not JSON, a forged source, an event the rules refuse), which the replay dead-letters
as live apply did, and goes on."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from yixian.contracts import (
    HostGroupChanged,
    OriginGroupChanged,
    TopicNames,
    decode,
    record_key,
)
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.records import read_records
from yixian.runtime import KafkaSettings
from yixian.runtime.kafka import consumer_lag
from yixian.runtime.resources import init_connection
from yixian.sync.adapters.store import SyncStore
from yixian.sync.domain import buckets

from .conftest import NetworkFactory
from .test_sync_resilience import _all_converged, _register
from .test_sync_scenarios import CHAOYANG, GUSHI

pytestmark = pytest.mark.e2e

CHANGPING = "110114"


def _run_rebuild(node: LocalNode, partner: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "yixian.sync", "rebuild", "--partner", partner],
            env=node.env, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"rebuild hung: {str(exc.stderr)[-4000:]}") from exc


def _rebuild(node: LocalNode, partner: str) -> str:
    done = _run_rebuild(node, partner)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "could not be written at once" not in done.stderr  # set-wise, as it should
    return done.stdout


async def _tables(node: LocalNode, partner: str) -> dict[str, Any]:
    """Every row the replay writes or reads, but the times of writing and serial ids; the
    numbers received from ``partner`` as one set; and the node's digest for it."""
    by_table = {
        "movements": "SELECT * FROM movements ORDER BY movement_id",
        "history": "SELECT movement_id, group_name, version, snapshot FROM movement_history"
        " ORDER BY movement_id, group_name, version",
        "participations": "SELECT * FROM participations ORDER BY participation_id",
        "inbox": 'SELECT source, event_id, event_type, topic, partition, "offset", pairseq,'
        " movement_id, outcome, trace_id, event_time FROM inbox ORDER BY source, event_id",
        "dead_letters": 'SELECT topic, partition, "offset", record_key, value, reason, errors,'
        ' retried_at FROM dead_letters ORDER BY topic, partition, "offset"',
        # announcements and dead letters: a replay adds none (it may answer again a
        # partner's request it finds on the topic, from what it has rebuilt by then)
        "outbox": "SELECT event_id, event_type, topic FROM outbox WHERE destination IS NULL"
        " ORDER BY id",
        "links": "SELECT partner, epoch, partner_sent, older_highest FROM links ORDER BY partner",
    }
    tables: dict[str, Any] = {}
    for name, sql in by_table.items():
        rows = [dict(r) for r in await node.query(sql)]
        for row in rows:
            row.pop("created_at", None)
            row.pop("updated_at", None)
        tables[name] = rows
    link = await node.query("SELECT epoch, contiguous FROM links WHERE partner = $1", partner)
    epoch, contiguous = link[0]
    later = await node.query(
        "SELECT seq FROM link_received WHERE partner = $1 AND epoch = $2", partner, epoch
    )
    tables["numbers received"] = set(range(1, contiguous + 1)) | {r["seq"] for r in later}
    conn = await asyncpg.connect(node.database_url)
    try:
        await init_connection(conn)
        entries = await SyncStore(conn, node.code, TopicNames()).entries(partner, 64)
    finally:
        await conn.close()
    tables["digest"] = buckets(entries, 64, content=True)
    return tables


async def _hostile_records(
    bootstrap: str, topics: TopicNames, source: str, destination: str, count: int
) -> list[tuple[bytes, bytes]]:
    """What a link may carry beside the partner's events (keys and values): three of its
    records again, an older version of a group sent after a newer one, and poison."""
    topic = topics.pair(source, destination)
    records = await read_records(bootstrap, topic, expected=count, settle=0)
    events = [(r, decode(r.value)) for r in records]
    groups = [
        (r, e) for r, e in events if isinstance(e.data, OriginGroupChanged | HostGroupChanged)
    ]
    hostile = [(r.key or b"", r.value) for r, _ in groups[:3]]  # the same records again
    older = next(e for _, e in groups if e.data.group.version == 1 and any(
        o.data.group.movement_id == e.data.group.movement_id and o.data.group.version > 1
        for _, o in groups
    ))  # fmt: skip
    again = older.model_copy(update={"id": uuid4()})  # a new event of the older version
    hostile.append((record_key(again), again.encode()))
    hostile.append((str(older.data.group.movement_id).encode(), b"{not json"))
    forged = older.model_copy(update={"id": uuid4(), "source": f"urn:yixian:node:{CHANGPING}"})
    hostile.append((record_key(forged), forged.encode()))
    data = older.data
    if isinstance(data, OriginGroupChanged):  # a group its sender does not own
        refused = data.model_copy(
            update={"group": data.group.model_copy(update={"origin": CHANGPING})}
        )
    else:  # a host group of a movement its origin does not know
        refused = data.model_copy(
            update={"group": data.group.model_copy(update={"movement_id": uuid4()})}
        )
    wrong = older.model_copy(update={"id": uuid4(), "data": refused})
    hostile.append((record_key(wrong), wrong.encode()))
    return hostile


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_both_sides_rebuild_what_live_apply_left(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    bootstrap = local_stack.config.kafka_bootstrap
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_namespace=topic_names.namespace)
    movements = await _register(gushi, 30)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="registrations arrive")
    committee = await chaoyang.org("工委", kind="working_committee")
    for movement in movements[:10]:
        await chaoyang.post(
            f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200
        )
        await chaoyang.post(
            f"/v1/movements/{movement}/participations",
            {
                "participation_id": str(uuid4()),
                "kind": "theme_day",
                "title": "主题党日",
                "attended_at": "2026-03-01T01:00:00Z",
            },
            201,
        )
    for movement in movements[10:15]:
        await gushi.post(f"/v1/movements/{movement}/cancel", None, 200)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="both sides settle")
    assert await gushi.value("SELECT count(*) FROM participations") == 10

    # while its sync service runs, a node refuses to rebuild, and says why
    refused = _run_rebuild(chaoyang, GUSHI)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("stop it before a rebuild"), refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr

    for source, destination, count in ((GUSHI, CHAOYANG, 35), (CHAOYANG, GUSHI, 30)):
        hostile = await _hostile_records(bootstrap, topic_names, source, destination, count)
        await _produce(bootstrap, topic_names.pair(source, destination), hostile)

    # Each side in turn: its partner's sync stopped (nothing more on the topic), its own
    # once it has applied the topic to its end; what live apply left, then the rebuild.
    for node, partner in ((chaoyang, gushi), (gushi, chaoyang)):
        partner.sync.stop()
        topic = topic_names.pair(partner.code, node.code)
        group = kafka.consumer_group(node.code, "sync")

        async def applied_to_the_end() -> bool:
            return (await consumer_lag(kafka, group, [topic])).get(topic) == 0  # noqa: B023

        await eventually(applied_to_the_end, what=f"{node.code} applies its topic")
        node.sync.stop()
        live = await _tables(node, partner.code)
        assert len(live["dead_letters"]) == 3, live["dead_letters"]
        outcomes = [row["outcome"] for row in live["inbox"] if row["source"] == partner.code]
        assert {"applied", "stale", "dead_letter"} <= set(outcomes)

        output = _rebuild(node, partner.code)
        assert "records in" in output, output
        rebuilt = await _tables(node, partner.code)
        for name, rows in live.items():
            assert rebuilt[name] == rows, f"{node.code} rebuilt {name} otherwise"
        node.sync.start()
        partner.sync.start()

    # the restarted consumers find nothing new to apply
    await eventually(lambda: _all_converged(gushi, chaoyang), what="still converged")
    assert await gushi.value("SELECT count(*) FROM participations") == 10
