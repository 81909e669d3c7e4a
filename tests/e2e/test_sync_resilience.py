"""Sync under failure: lost, duplicated and reordered events, a killed consumer, a partner
offline for a long batch, and bad input. Each ends with both replicas identical."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from yixian.contracts import TopicNames, make_event
from yixian.contracts.examples import example_events, host_group, origin_group_stream
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.records import read_records
from yixian.record.relay import take_batch

from .conftest import NetworkFactory, drill_size
from .test_sync_scenarios import CHAOYANG, GUSHI, converged, outflow

pytestmark = pytest.mark.e2e


async def _register(
    node: LocalNode, count: int, host: str = CHAOYANG, concurrency: int = 8
) -> list[str]:
    members = await node.import_members(await node.org(f"支部{count}"), count)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(member: UUID) -> str:
        async with semaphore:
            return str(
                (await node.post("/v1/movements", outflow(member, host), 201))["movement_id"]
            )

    return list(await asyncio.gather(*(one(m) for m in members)))


async def _all_converged(a: LocalNode, b: LocalNode) -> bool:
    query = "SELECT movement_id, origin_version, host_version FROM movements ORDER BY movement_id"
    return [tuple(r) for r in await a.query(query)] == [tuple(r) for r in await b.query(query)]


async def test_scenario_5_lost_duplicated_and_reordered_events_converge(
    network: NetworkFactory,
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    movements = await _register(gushi, 20)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="first convergence")

    # duplicates: everything already sent is sent again
    await gushi.query("UPDATE outbox SET published_at = NULL WHERE destination = $1", CHAOYANG)

    async def sent_again() -> bool:
        return (
            await gushi.value(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND destination = $1",
                CHAOYANG,
            )
            == 0
        )

    await eventually(sent_again, what="the duplicates sent")
    # lost with a trace: the relay is stopped; new events are numbered as the relay numbers
    # them (ADR 12) and marked sent, but never leave: the next heartbeat claims their
    # numbers, the partner sees the gap and asks for them again
    gushi.relay.stop()
    for movement in movements[:5]:
        await gushi.post(f"/v1/movements/{movement}/details", {"contact": {"phone": "139"}}, 200)
    conn = await asyncpg.connect(gushi.database_url)
    try:
        unsent = await conn.fetch(
            "SELECT id, destination, pairseq, pairepoch FROM outbox WHERE published_at IS NULL"
            " AND destination = $1 AND event_type = 'yixian.movement.origin_group.v1'"
            " ORDER BY id",
            CHAOYANG,
        )
        assert len(unsent) == 5
        await take_batch(conn, 500, [])  # numbered as the relay numbers what waits
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
            [r["id"] for r in unsent],
        )
    finally:
        await conn.close()
    # lost without a trace: rows gone from the outbox (only anti-entropy can find them)
    for movement in movements[5:10]:
        await gushi.post(f"/v1/movements/{movement}/cancel", None, 200)
    await gushi.query(
        "DELETE FROM outbox WHERE published_at IS NULL AND destination = $1", CHAOYANG
    )
    gushi.relay.start()

    # the heartbeat shows the gap; the replay request brings back what was marked sent
    async def replayed() -> bool:
        versions = [(await chaoyang.replica(m))[0]["version"] for m in movements[:5]]
        return versions == [2] * 5

    await eventually(replayed, what="gap detected and replayed", within=60)
    # the deleted ones only anti-entropy repairs, asked for on demand
    await chaoyang.sync_post(f"/v1/links/{GUSHI}/anti-entropy")
    await eventually(lambda: _all_converged(gushi, chaoyang), what="anti-entropy repair", within=60)
    for movement in movements:
        assert await converged(gushi, chaoyang, movement)
    duplicates = await chaoyang.value("SELECT count(*) FROM inbox WHERE outcome = 'applied'")
    assert duplicates == len(
        await chaoyang.query("SELECT 1 FROM movement_history WHERE group_name = 'origin'")
    )

    # numbers lost for good stay missing until a digest from the sender matches
    await gushi.sync_post(f"/v1/links/{CHAOYANG}/anti-entropy")

    async def links_healthy() -> bool:
        views = await chaoyang.sync_get("/v1/links")
        return all(v["state"] == "healthy" for v in views)

    await eventually(links_healthy, what="the link heals", within=30)


async def _produce(
    stack: LocalStack, topic: str, records: list[tuple[bytes | None, bytes]]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.config.kafka_bootstrap, enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_kill_9_in_the_middle_of_a_batch_applies_each_event_once(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    # Gushi is a partner whose events this test writes itself: sync reads linked partners only
    nodes = await network([CHAOYANG], env_of={CHAOYANG: {"YIXIAN_PARTNERS": GUSHI}})
    chaoyang = nodes[CHAOYANG]
    batch = origin_group_stream(GUSHI, movements=2500, versions=4)  # 10,000 events
    await _produce(local_stack, topic_names.pair(GUSHI, CHAOYANG), batch)

    async def partly() -> bool:
        return int(await chaoyang.value("SELECT count(*) FROM inbox")) >= 2500

    await eventually(partly, what="a quarter of the batch applied", within=120)
    chaoyang.sync.kill()
    killed_at = await chaoyang.value("SELECT count(*) FROM inbox")
    assert killed_at < len(batch), "the kill came after the batch"
    chaoyang.sync.start()

    async def complete() -> bool:
        return int(await chaoyang.value("SELECT count(*) FROM inbox")) == len(batch)

    await eventually(complete, what="the whole batch applied", within=300)
    outcomes = Counter(r["outcome"] for r in await chaoyang.query("SELECT outcome FROM inbox"))
    assert outcomes == {"applied": len(batch)}, outcomes
    assert await chaoyang.value("SELECT count(*) FROM movements WHERE origin_version = 4") == 2500
    history = await chaoyang.value("SELECT count(*) FROM movement_history")
    announced = await chaoyang.value(
        "SELECT count(*) FROM outbox WHERE event_type = 'yixian.movement.origin_group.v1'"
    )
    assert history == announced == len(batch), "each event applied and announced once"
    print(f"killed after {killed_at} of {len(batch)}; recovered with each applied once")


async def test_partner_offline_while_origin_registers_thousands_catches_up(
    network: NetworkFactory,
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    chaoyang.sync.stop()
    registered = drill_size(smoke=1000, full=5000)
    movements = await _register(gushi, registered, concurrency=16)
    for movement in movements[:200]:  # a second version for some, to check order
        await gushi.post(f"/v1/movements/{movement}/details", {"contact": {"phone": "139"}}, 200)
    chaoyang.sync.start()
    await eventually(
        lambda: _all_converged(gushi, chaoyang), what="the host catches up", within=300
    )
    applied = await chaoyang.value(
        "SELECT count(*) FROM inbox WHERE event_type = 'yixian.movement.origin_group.v1' AND outcome = 'applied'"
    )
    assert applied == registered + 200, "each event once"
    out_of_order = await chaoyang.value(
        "SELECT count(*) FROM (SELECT movement_id, array_agg(version ORDER BY id) AS v"
        " FROM movement_history GROUP BY movement_id) h WHERE h.v <> (SELECT array_agg(x ORDER BY x) FROM unnest(h.v) x)"
    )
    assert out_of_order == 0, "a movement's versions arrived out of order"


async def test_bad_events_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    # Gushi is a partner whose events this test writes itself: sync reads linked partners only
    nodes = await network([CHAOYANG], env_of={CHAOYANG: {"YIXIAN_PARTNERS": GUSHI}})
    chaoyang = nodes[CHAOYANG]
    topic = topic_names.pair(GUSHI, CHAOYANG)
    good = example_events()[0]
    document = json.loads(good.encode())
    wrong_schema = dict(document, data={"group": {"movement_id": "not-a-uuid"}}, id=str(uuid4()))
    forged = dict(document, source="urn:yixian:node:350300", id=str(uuid4()))
    others_group = make_event(
        example_events()[1].data, node=GUSHI, time=datetime.now(UTC) - timedelta(minutes=1),
        correlationid=host_group().movement_id,
    ).with_pairseq(3)  # fmt: skip
    records: list[tuple[bytes | None, bytes]] = [
        (b"x", b"\x00\xffnot json at all"),
        (b"x", json.dumps(wrong_schema).encode()),
        (b"x", json.dumps(forged).encode()),
        (b"x", others_group.encode()),
        (b"x", good.encode()),  # and a good one after them
    ]
    await _produce(local_stack, topic, records)

    async def handled() -> bool:
        return int(await chaoyang.value("SELECT count(*) FROM dead_letters")) == 4 and bool(
            await chaoyang.value("SELECT count(*) FROM movements")
        )

    await eventually(handled, what="four dead letters and the good event applied")
    reasons = [
        r["reason"]
        for r in await chaoyang.query('SELECT reason FROM dead_letters ORDER BY "offset"')
    ]
    assert reasons[0].startswith("not JSON")
    assert "data.group.movement_id" in reasons[1]
    assert reasons[2].startswith("forged source")
    assert "only the host writes the host group" in reasons[3]
    dlq = await read_records(
        local_stack.config.kafka_bootstrap, topic_names.dead_letter(CHAOYANG, "sync"), expected=4
    )
    assert len(dlq) == 4
    letters = [json.loads(r.value) for r in dlq]
    assert {letter["topic"] for letter in letters} == {topic}
    assert sorted(letter["offset"] for letter in letters) == [0, 1, 2, 3]

    async def no_lag() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=local_stack.config.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(
                f"{topic_names.namespace}.yixian.{CHAOYANG}.sync"
            )
        finally:
            await admin.close()
        return sum(o.offset for tp, o in offsets.items() if tp.topic == topic) == len(records)

    await eventually(no_lag, what="the consumer's lag back to zero")
