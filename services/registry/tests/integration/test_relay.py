"""The outbox relay against the real broker: delivery, Kafka outages, two relays at once."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import pytest

from yixian.contracts import Envelope, decode
from yixian.localstack import LocalStack
from yixian.localstack.records import Record, read_records
from yixian.record.outbox import MAX_RECORD_BYTES
from yixian.record.parked import parked_rows
from yixian.record.process import build_relay
from yixian.record.relay import OutboxRelay, take_batch
from yixian.registry.adapters.parked import discard_parked, retry_parked

from .conftest import CHAOYANG, GUSHI, Node, outflow

pytestmark = pytest.mark.integration


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _pending(node: Node) -> int:
    async with node.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def _drained(node: Node, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await _pending(node):
            await asyncio.sleep(0.1)


def _by_movement(records: list[Record]) -> dict[UUID, list[Envelope]]:
    """Events per movement in the order the partition holds them."""
    out: dict[UUID, list[Envelope]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode(record.value)
        assert event.correlationid is not None
        out[event.correlationid].append(event)
    return out


async def _members(node: Node, count: int) -> list[UUID]:
    branch = await node.org("支部")
    return [await node.member(branch, name=f"党员{i}") for i in range(count)]


async def test_registered_outflow_reaches_the_pair_and_local_topics(
    gushi: Node, kafka_bootstrap: str
) -> None:
    (member,) = await _members(gushi, 1)
    movement = await gushi.post("/v1/movements", outflow(member), expect=201)
    topics = gushi.settings.kafka.topics
    async with running(build_relay(gushi.settings, gushi.pool)):
        await _drained(gushi)
        pair = await read_records(kafka_bootstrap, topics.pair(GUSHI, CHAOYANG), expected=1)
        local = await read_records(kafka_bootstrap, topics.local(GUSHI), expected=1)
    assert len(pair) == 1
    assert len(local) == 1
    event = decode(pair[0].value)
    assert pair[0].key == movement["movement_id"].encode()
    assert event.type == "yixian.movement.origin_group.v1"
    assert event.source == "urn:yixian:node:411525"
    assert event.pairseq == 1
    async with gushi.pool.acquire() as conn:  # the partner's link epoch, stamped beside it
        epoch = await conn.fetchval(
            "SELECT epoch FROM pair_sequences WHERE destination = $1", CHAOYANG
        )
    assert event.pairepoch == epoch > 0
    assert str(event.correlationid) == movement["movement_id"]
    assert event.data.group.version == 1  # type: ignore[attr-defined]
    assert dict(pair[0].headers)["content-type"].startswith(b"application/cloudevents+json")
    local_event = decode(local[0].value)
    assert local_event.id == event.id
    assert local_event.pairseq is None


async def _write_1000(node: Node) -> int:
    """250 registrations, each updated three times: 1,000 events on the pair topic."""
    members = await _members(node, 250)
    ids = []
    for member in members:
        ids.append((await node.post("/v1/movements", outflow(member), expect=201))["movement_id"])
    for round_ in range(3):
        for movement_id in ids:
            await node.post(
                f"/v1/movements/{movement_id}/details",
                {"contact": {"phone": f"139-{round_}"}},
                expect=200,
            )
    return 1000


def _assert_once_and_in_order(records: list[Record], expected: int) -> None:
    ids = [decode(r.value).id for r in records]
    assert len(ids) == expected, f"{len(ids)} records for {expected} events"
    assert len(set(ids)) == expected, "an event was published twice"
    for movement_id, events in _by_movement(records).items():
        versions = [e.data.group.version for e in events]  # type: ignore[attr-defined]
        assert versions == sorted(versions), f"movement {movement_id} out of order: {versions}"
        assert versions == list(range(1, len(versions) + 1))
    seqs = sorted(decode(r.value).pairseq or 0 for r in records)
    assert seqs == list(range(1, expected + 1)), "per-pair sequence has gaps or repeats"


@pytest.mark.serial
async def test_writes_while_kafka_is_down_arrive_once_in_order_after_it_returns(
    gushi: Node, local_stack: LocalStack, kafka_bootstrap: str
) -> None:
    topics = gushi.settings.kafka.topics
    relay = build_relay(gushi.settings, gushi.pool)
    local_stack.kafka.stop()
    try:
        async with running(relay):
            written = await _write_1000(gushi)  # the API keeps accepting writes
            await asyncio.sleep(2)
            assert relay.published == 0
            assert await _pending(gushi) == 2 * written  # pair + local topic rows, all kept
            await asyncio.to_thread(local_stack.kafka.start)
            await _drained(gushi, timeout=120)
    finally:
        await asyncio.to_thread(local_stack.kafka.start)  # idempotent: leave the broker up
    records = await read_records(kafka_bootstrap, topics.pair(GUSHI, CHAOYANG), expected=written)
    _assert_once_and_in_order(records, written)


async def test_two_relays_neither_duplicate_nor_reorder(gushi: Node, kafka_bootstrap: str) -> None:
    topics = gushi.settings.kafka.topics
    first = build_relay(gushi.settings, gushi.pool)
    second = build_relay(gushi.settings, gushi.pool)
    async with running(first), running(second):
        written = await _write_1000(gushi)
        await _drained(gushi)
        assert first.is_leader != second.is_leader  # one leads, the other stands by
    records = await read_records(kafka_bootstrap, topics.pair(GUSHI, CHAOYANG), expected=written)
    _assert_once_and_in_order(records, written)


async def test_standby_relay_takes_over(gushi: Node, kafka_bootstrap: str) -> None:
    topics = gushi.settings.kafka.topics
    (member,) = await _members(gushi, 1)
    first = build_relay(gushi.settings, gushi.pool)
    second = build_relay(gushi.settings, gushi.pool)
    async with running(second):
        async with running(first):
            await gushi.post("/v1/movements", outflow(member), expect=201)
            await _drained(gushi)
        # the leader stopped; the standby leads and publishes what comes next
        movement = (await gushi.get("/v1/members/away"))[0]["movement_id"]
        await gushi.post(f"/v1/movements/{movement}/cancel", expect=200)
        await _drained(gushi, timeout=30)
    records = await read_records(kafka_bootstrap, topics.pair(GUSHI, CHAOYANG), expected=2)
    _assert_once_and_in_order(records, 2)


async def test_pair_numbers_are_given_once_and_kept_for_a_resend(gushi: Node) -> None:
    """The relay numbers a batch before sending it: a batch sent again (the broker did not
    acknowledge, the relay crashed) keeps its numbers; each partner counts on its own."""
    members = await _members(gushi, 3)
    for member in members:
        await gushi.post("/v1/movements", outflow(member), expect=201)
    async with gushi.pool.acquire() as conn:
        await conn.execute(  # an event for a second partner, queued by hand
            "INSERT INTO outbox (event_id, event_type, topic, destination, record_key, value,"
            " trace_id) SELECT gen_random_uuid(), event_type, 'other', '320106', record_key,"
            " value, trace_id FROM outbox WHERE destination = $1 LIMIT 1",
            CHAOYANG,
        )
        pending = "SELECT * FROM outbox WHERE published_at IS NULL ORDER BY id"
        first = (await take_batch(conn, 100, []))[1]
        again = (await take_batch(conn, 100, []))[1]
        stored = {
            r["id"]: (r["destination"], (r["pairepoch"], r["pairseq"]))
            for r in await conn.fetch(pending)
            if r["destination"] is not None
        }
        last = {
            r["destination"]: (r["epoch"], r["last_sequence"])
            for r in await conn.fetch("SELECT * FROM pair_sequences")
        }
    assert again == first
    assert {i: number for i, (_, number) in stored.items()} == first
    to_chaoyang = [first[i] for i in sorted(first) if stored[i][0] == CHAOYANG]
    epoch = last[CHAOYANG][0]
    assert to_chaoyang == [(epoch, 1), (epoch, 2), (epoch, 3)]
    assert [first[i] for i in first if stored[i][0] == "320106"] == [(last["320106"][0], 1)]
    assert last == {CHAOYANG: (epoch, 3), "320106": (last["320106"][0], 1)}


async def test_a_rebuilt_numbering_starts_a_later_epoch(gushi: Node) -> None:
    """A database without a partner's ``pair_sequences`` row (rebuilt, recreated) numbers
    from 1 again, in a new, later link epoch: no (epoch, number) names two events (ADR 16)."""
    members = await _members(gushi, 2)
    await gushi.post("/v1/movements", outflow(members[0]), expect=201)
    async with gushi.pool.acquire() as conn:
        before = set((await take_batch(conn, 100, []))[1].values())
        await conn.execute("UPDATE outbox SET published_at = now()")
        await conn.execute("DELETE FROM pair_sequences")  # the numbering lost
        await gushi.post("/v1/movements", outflow(members[1]), expect=201)
        after = set((await take_batch(conn, 100, []))[1].values())
    ((old_epoch, old_seq),) = before
    ((new_epoch, new_seq),) = after
    assert old_seq == new_seq == 1
    assert new_epoch > old_epoch > 0


async def test_a_restored_database_numbers_in_a_later_epoch(gushi: Node) -> None:
    """A database restored from a backup or loaded from a dump still has its partners'
    ``pair_sequences`` rows, from another database: numbers given after the backup must not
    be given again, so the numbering starts a new, later epoch (ADR 16)."""
    members = await _members(gushi, 3)
    numbers = []
    async with gushi.pool.acquire() as conn:
        for member in members:
            await gushi.post("/v1/movements", outflow(member), expect=201)
            numbers += (await take_batch(conn, 100, []))[1].values()
            await conn.execute("UPDATE outbox SET published_at = now()")
            if member == members[1]:  # as if the rows came from the database backed up
                await conn.execute("UPDATE pair_sequences SET numbered_in = 'another/1'")
    (first_epoch, first), (same_epoch, second), (new_epoch, third) = numbers
    assert (first, second, third) == (1, 2, 1)
    assert same_epoch == first_epoch
    assert new_epoch > first_epoch
    async with gushi.pool.acquire() as conn:  # and numbering goes on in the new epoch
        assert await conn.fetchval("SELECT numbered_in <> 'another/1' FROM pair_sequences")


async def _waiting(node: Node) -> int:
    async with node.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
            )
        )


async def _queue(node: Node, topic: str, value: bytes, destination: str | None = None) -> int:
    async with node.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "INSERT INTO outbox (event_id, event_type, topic, destination, record_key, value,"
                " trace_id) VALUES (gen_random_uuid(), 'yixian.test', $1, $2, 'k', $3, $4)"
                " RETURNING id",
                topic,
                destination,
                value,
                "0" * 32,
            )
        )


async def test_rows_the_broker_will_never_take_are_parked_and_the_rest_flows(
    gushi: Node, kafka_bootstrap: str
) -> None:
    """A record over the size limit (to the pair topic and to the local one) and one to a
    topic that cannot exist come first in the outbox; each is parked with its reason, and
    every event after them, on every topic, is published."""
    topics = gushi.settings.kafka.topics
    pair, local = topics.pair(GUSHI, CHAOYANG), topics.local(GUSHI)
    oversize = b'{"data": "' + b"x" * (MAX_RECORD_BYTES + 1) + b'"}'
    too_large_pair = await _queue(gushi, pair, oversize, CHAOYANG)
    too_large_local = await _queue(gushi, local, oversize)
    nowhere = await _queue(gushi, f"{topics.namespace}.no such topic!", b"{}")
    members = await _members(gushi, 2)
    movements = [await gushi.post("/v1/movements", outflow(m), expect=201) for m in members]
    async with running(build_relay(gushi.settings, gushi.pool)):
        async with asyncio.timeout(60):
            while await _waiting(gushi):
                await asyncio.sleep(0.2)
        published = await read_records(kafka_bootstrap, pair, expected=2)
        on_local = await read_records(kafka_bootstrap, local, expected=2)
    assert {decode(r.value).correlationid for r in published} == {
        UUID(m["movement_id"]) for m in movements
    }
    assert len(on_local) == 2
    rows = {r["id"]: r for r in await gushi.outbox()}
    assert {i: rows[i]["park_reason"] for i in (too_large_pair, too_large_local, nowhere)} == {
        too_large_pair: "too_large",
        too_large_local: "too_large",
        nowhere: "unknown_topic",
    }
    # the parked pair row keeps its number: the partner sees a gap the digest settles
    assert rows[too_large_pair]["pairseq"] == 1
    assert sorted(decode(r.value).pairseq or 0 for r in published) == [2, 3]

    ready = await gushi.get("/readyz")
    assert ready["ready"] is True
    assert sorted(ready["degraded"]) == sorted(
        [
            f"1 outbox rows to {pair} parked: too_large",
            f"1 outbox rows to {local} parked: too_large",
            f"1 outbox rows to {topics.namespace}.no such topic! parked: unknown_topic",
        ]
    )
    metrics = (await gushi.call("GET", "/metrics", expect=200)).text
    assert f'yixian_outbox_parked{{reason="too_large",topic="{pair}"}} 1.0' in metrics
    assert "yixian_outbox_backlog 0.0" in metrics


async def test_an_operator_retries_or_discards_a_parked_row_and_both_are_audited(
    gushi: Node, kafka_bootstrap: str
) -> None:
    topics = gushi.settings.kafka.topics
    local = topics.local(GUSHI)
    small, large = b'{"n": 1}', b'{"data": "' + b"x" * (MAX_RECORD_BYTES + 1) + b'"}'
    fixed = await _queue(gushi, local, small)
    refused = await _queue(gushi, local, large)
    async with gushi.pool.acquire() as conn:  # as the relay left them: parked
        await conn.execute(
            "UPDATE outbox SET parked_at = now(), park_reason = 'not_authorized' WHERE id = $1",
            fixed,
        )
        await conn.execute(
            "UPDATE outbox SET parked_at = now(), park_reason = 'too_large' WHERE id = $1",
            refused,
        )
        assert [r["id"] for r in await parked_rows(conn)] == [fixed, refused]
        assert await retry_parked(conn, None, actor="cli:ops") == [fixed, refused]
    async with running(build_relay(gushi.settings, gushi.pool)):
        await _drained_or_parked(gushi)
        (record,) = await read_records(kafka_bootstrap, local, expected=1)
    assert record.value == small
    async with gushi.pool.acquire() as conn:
        state = {r["id"]: r for r in await conn.fetch("SELECT * FROM outbox")}
        assert state[fixed]["published_at"] is not None
        assert state[refused]["park_reason"] == "too_large"  # refused again: parked again
        assert await discard_parked(conn, [refused, fixed], actor="cli:ops", note="too big") == [
            refused
        ]
        assert await parked_rows(conn) == []
        audit = await conn.fetch(
            "SELECT actor, role, action, detail FROM audit_log WHERE action LIKE 'outbox.%'"
            " ORDER BY id"
        )
        backlog = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND discarded_at IS NULL"
        )
    assert [(a["actor"], a["action"], a["detail"]["outbox_id"]) for a in audit] == [
        ("cli:ops", "outbox.retry", fixed),
        ("cli:ops", "outbox.retry", refused),
        ("cli:ops", "outbox.discard", refused),
    ]
    assert audit[0]["detail"]["park_reason"] == "not_authorized"
    assert audit[2]["detail"]["note"] == "too big"
    assert audit[2]["detail"]["bytes"] == len(large)
    assert backlog == 0
    assert (await gushi.get("/readyz"))["degraded"] == []


async def _drained_or_parked(node: Node, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await _waiting(node):
            await asyncio.sleep(0.1)
