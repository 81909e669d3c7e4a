"""A national ID hash a partner still sends is never stored or passed on (ADR 14).

A node before ADR 14 put a hash of the member's national ID in every origin-group event.
The host applies such an event like any other, but keeps and announces the group without
the hash: in its replica, in the group's history, and in the local event notify reads.
"""

from __future__ import annotations

import json
from uuid import uuid4

import asyncpg
import pytest

from yixian.contracts import OriginGroup, OriginGroupChanged, TopicNames, decode, make_event
from yixian.contracts.examples import AT, TRACEPARENT, origin_group
from yixian.record import schema
from yixian.record.schema import NODE_SCHEMA
from yixian.runtime import create_pool
from yixian.sync.bootstrap import MIGRATIONS, SERVICE, build_applier
from yixian.sync.service_layer.applier import SyncConfig
from yixian.sync.service_layer.links import LinkPolicy
from yixian.sync.service_layer.repositories import Inbound

pytestmark = pytest.mark.integration

GUSHI, CHAOYANG = "411525", "110105"
OLD_HASH = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"


def _from_an_older_origin() -> bytes:
    group = origin_group()
    assert group.destination.jurisdiction == CHAOYANG
    event = make_event(
        OriginGroupChanged(group=group),
        node=GUSHI,
        time=AT,
        traceparent=TRACEPARENT,
        subject=str(group.movement_id),
        correlationid=group.movement_id,
    ).with_pairseq(1)
    doc = json.loads(event.encode())
    doc["data"]["group"]["member"]["national_id_hash"] = OLD_HASH
    return json.dumps(doc).encode()


async def test_a_received_national_id_hash_is_not_stored(
    database_url: str, topic_names: TopicNames
) -> None:
    await schema.migrate(database_url, SERVICE, MIGRATIONS)
    pool = await create_pool(database_url, size=2)
    try:
        applier = build_applier(pool, SyncConfig(CHAOYANG, topic_names, LinkPolicy()), lambda: AT)
        value = _from_an_older_origin()
        assert OLD_HASH.encode() in value
        record = Inbound(topic_names.pair(GUSHI, CHAOYANG), 0, 0, b"key", value)
        assert await applier.handle(record) == "applied"

        async with pool.acquire() as conn:
            replica = await conn.fetchval("SELECT origin_group::text FROM movements")
            history = await conn.fetch("SELECT snapshot::text AS s FROM movement_history")
            announced = await conn.fetch("SELECT value FROM outbox")
            dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
        assert dead == 0
        assert replica is not None
        assert str(origin_group().member.member_id) in replica
        assert OLD_HASH not in replica
        assert history
        assert all(OLD_HASH not in row["s"] for row in history)
        assert announced  # the local event that tells notify of the new group
        assert all(OLD_HASH.encode() not in bytes(row["value"]) for row in announced)
    finally:
        await pool.close()


async def test_hashes_stored_before_are_dropped_by_the_node_schema(database_url: str) -> None:
    """Node schema 0002 removes the hash an older node sent from what was stored then:
    the replica, its history and the outbox's events, which still decode."""
    await schema.migrate(database_url, SERVICE, MIGRATIONS)
    group = origin_group()
    old = group.model_dump(mode="json")
    old["member"]["national_id_hash"] = OLD_HASH
    wire = _from_an_older_origin()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
            " origin_status, origin_group) VALUES ($1, $2, $3, $4, 1, 'registered', $5)",
            group.movement_id, GUSHI, CHAOYANG, group.member.member_id, json.dumps(old),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO movement_history (movement_id, group_name, version, snapshot)"
            " VALUES ($1, 'origin', 1, $2)",
            group.movement_id,
            json.dumps(old),
        )
        await conn.execute(
            "INSERT INTO outbox (event_id, event_type, topic, record_key, value, trace_id)"
            " VALUES ($1, 'yixian.movement.origin_group.v1', 'local', $2, $3, $4)",
            uuid4(), b"key", wire, "0" * 32,
        )  # fmt: skip
        await conn.execute((NODE_SCHEMA / "0002_no_national_id_hash.sql").read_text())

        replica = await conn.fetchval("SELECT origin_group::text FROM movements")
        snapshot = await conn.fetchval("SELECT snapshot::text FROM movement_history")
        value = bytes(await conn.fetchval("SELECT value FROM outbox"))
    finally:
        await conn.close()
    for stored in (replica, snapshot, value.decode()):
        assert OLD_HASH not in stored
        assert "national_id_hash" not in stored
    assert OriginGroup.model_validate_json(replica) == group
    assert decode(value) == decode(wire)
