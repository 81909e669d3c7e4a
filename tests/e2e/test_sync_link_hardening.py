"""The link under a newer partner, numbers lost for good and forged claims (issue #13):
no replay storm, unknown types counted as received, claims checked. Each ends with the
replicas identical, the other traffic applied, the link healthy and the extra records on
the pair topics counted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from yixian.contracts import LinkDigest, LinkHeartbeat, TopicNames, make_event
from yixian.contracts.examples import example_events
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_resilience import _all_converged, _produce, _register
from .test_sync_scenarios import CHAOYANG, GUSHI

pytestmark = pytest.mark.e2e

REPLAY = "yixian.link.replay_requested.v1"
DIGEST = "yixian.link.digest.v1"
QUIET = 6.0
"""Three gap-grace periods of the test network, six heartbeats: long enough for a storm."""


async def _events(stack: LocalStack, topic: str) -> list[dict[str, Any]]:
    """Every record on ``topic`` so far, decoded (the envelope without checks)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.config.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert partitions, f"{topic} has no partitions"
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp, offset in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(tp, offset)
        events: list[dict[str, Any]] = []
        left = {tp: end for tp, end in ends.items() if end > 0}
        while left:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                events.extend(json.loads(r.value) for r in records if r.offset < ends[tp])
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.pop(tp, None)
        return events
    finally:
        await consumer.stop()


def _resent(events: list[dict[str, Any]]) -> int:
    """Records that carry a pair number sent before (replays)."""
    numbers = Counter(e["pairseq"] for e in events)
    return sum(n - 1 for n in numbers.values())


async def _view(node: LocalNode, partner: str) -> dict[str, Any]:
    views = await node.sync_get("/v1/links")
    return next(v for v in views if v["partner"] == partner)


async def _healthy(node: LocalNode, partner: str) -> bool:
    view = await _view(node, partner)
    return view["state"] == "healthy" and not view["missing"]


async def _no_gap(node: LocalNode, partner: str) -> bool:
    """Healthy, or lagging a moment behind the partner's last heartbeat (events in flight)."""
    view = await _view(node, partner)
    return view["state"] in {"healthy", "lagging"}


async def _lose_numbers(gushi: LocalNode, count: int, movements: list[str]) -> int:
    """The next ``count`` numbers to Chaoyang are taken and never sent; each is a change
    to one of ``movements``, lost with it. The first lost number."""
    gushi.relay.stop()
    for movement in movements:
        await gushi.post(f"/v1/movements/{movement}/details", {"contact": {"phone": "137"}}, 200)
    await gushi.query(
        "DELETE FROM outbox WHERE published_at IS NULL AND destination = $1"
        " AND event_type = 'yixian.movement.origin_group.v1'",
        CHAOYANG,
    )
    last = await gushi.value(
        "UPDATE pair_sequences SET last_sequence = last_sequence + $2 WHERE destination = $1"
        " RETURNING last_sequence",
        CHAOYANG,
        count,
    )
    gushi.relay.start()
    return int(last) - count + 1


async def test_a_newer_partners_unknown_type_and_field_are_counted_not_replayed(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    first = await _register(gushi, 3)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="first convergence")

    # what a partner on a newer v1 sends: a type, and a field, this node does not know,
    # numbered by the partner's relay like any other pair event
    row = (
        await gushi.query(
            "SELECT record_key, value, trace_id FROM outbox WHERE destination = $1"
            " AND event_type = 'yixian.movement.origin_group.v1' LIMIT 1",
            CHAOYANG,
        )
    )[0]
    sample = json.loads(bytes(row["value"]))
    future_type = "yixian.movement.future_thing.v1"
    unknown = dict(
        sample, id=str(uuid4()), type=future_type, dataschema=f"urn:yixian:schema:{future_type}",
        data={"something": "new"},
    )  # fmt: skip
    group = dict(sample["data"]["group"], future_field="new")
    newer_field = dict(sample, id=str(uuid4()), data={"group": group})
    for event in (unknown, newer_field):
        await gushi.query(
            "INSERT INTO outbox (event_id, event_type, topic, destination, record_key, value,"
            " trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            event["id"], event["type"], topic_names.pair(GUSHI, CHAOYANG), CHAOYANG,
            row["record_key"], json.dumps(event).encode(), row["trace_id"],
        )  # fmt: skip
    then = await _register(gushi, 2)  # the other traffic goes on after them

    await eventually(lambda: _all_converged(gushi, chaoyang), what="the later movements")
    assert len(await chaoyang.query("SELECT 1 FROM movements")) == len(first + then)
    inbox = await chaoyang.query(
        "SELECT outcome, pairseq FROM inbox WHERE event_type = $1", future_type
    )
    assert [r["outcome"] for r in inbox] == ["skipped_unknown_type"]
    assert inbox[0]["pairseq"] is not None
    # a field this node does not know is left out; the rest of the event is applied
    assert await chaoyang.value("SELECT count(*) FROM dead_letters") == 0
    assert await chaoyang.value(
        "SELECT outcome FROM inbox WHERE event_id = $1", UUID(newer_field["id"])
    ) in {"applied", "stale"}

    # both numbers count as received: the link is healthy and asks for nothing, for good
    await eventually(lambda: _healthy(chaoyang, GUSHI), what="the link healthy")
    view = await _view(chaoyang, GUSHI)
    assert view["received_up_to"] >= inbox[0]["pairseq"]
    sent = await gushi.value(
        "SELECT last_sequence FROM pair_sequences WHERE destination = $1", CHAOYANG
    )
    await asyncio.sleep(QUIET)
    assert await _no_gap(chaoyang, GUSHI)
    assert await chaoyang.value("SELECT count(*) FROM outbox WHERE event_type = $1", REPLAY) == 0
    events = await _events(local_stack, topic_names.pair(GUSHI, CHAOYANG))
    assert _resent(events) == 0, "nothing was sent twice"
    assert max(e["pairseq"] for e in events) >= sent


async def test_numbers_lost_for_good_are_settled_by_a_digest_without_a_storm(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    movements = await _register(gushi, 6)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="first convergence")

    lost = 3
    hole = await _lose_numbers(gushi, lost, movements[:lost])
    later = await _register(gushi, 4)  # the other traffic goes on past the hole

    # the replicas end identical (the lost changes repaired by anti-entropy) and the link
    # heals, each well before the 300 s digest of old
    await eventually(lambda: _all_converged(gushi, chaoyang), what="repair", within=60)
    await eventually(lambda: _healthy(chaoyang, GUSHI), what="the link settles", within=60)
    for movement in movements[:lost]:
        assert (await chaoyang.replica(movement))[0]["version"] == 2
    assert len(await chaoyang.query("SELECT 1 FROM movements")) == len(movements + later)

    # the requests named exactly the lost numbers, and there were few of them
    requests = [
        json.loads(bytes(r["value"]))["data"]
        for r in await chaoyang.query("SELECT value FROM outbox WHERE event_type = $1", REPLAY)
    ]
    assert 1 <= len(requests) <= 4, requests
    for request in requests:
        assert (request["from_sequence"], request["to_sequence"]) == (hole, hole + lost - 1)
        assert "ranges" not in request  # one run
    # nothing could be replayed, so nothing was sent twice; a digest per request at most
    sent = await _events(local_stack, topic_names.pair(GUSHI, CHAOYANG))
    assert _resent(sent) == 0
    assert sum(e["type"] == DIGEST for e in sent) <= len(requests) + 1
    asked = await _events(local_stack, topic_names.pair(CHAOYANG, GUSHI))
    assert sum(e["type"] == REPLAY for e in asked) == len(requests)
    await asyncio.sleep(QUIET)
    assert await _no_gap(chaoyang, GUSHI)
    assert await chaoyang.value("SELECT count(*) FROM outbox WHERE event_type = $1", REPLAY) == len(
        requests
    ), "no request after the link settled"


async def test_forged_claims_are_refused_and_gap_detection_stays_on(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    now = datetime.now(UTC)
    far = 2**62
    heartbeat = make_event(
        LinkHeartbeat(source=GUSHI, destination=CHAOYANG, last_sequence=far, sent_at=now),
        node=GUSHI, time=now,
    ).with_pairseq(far + 1)  # fmt: skip
    digest = make_event(  # matches a node that shares nothing yet, were it believed
        LinkDigest(
            digest_id=uuid4(), bucket_count=256, buckets=(), as_of_sequence=far, computed_at=now
        ),
        node=GUSHI, time=now,
    ).with_pairseq(1)  # fmt: skip
    ahead = example_events()[0].with_pairseq(1_000_000)
    await _produce(
        local_stack,
        topic_names.pair(GUSHI, CHAOYANG),
        [(b"k", e.encode()) for e in (heartbeat, digest, ahead)],
    )

    async def refused() -> bool:
        return int(await chaoyang.value("SELECT count(*) FROM dead_letters")) == 3

    await eventually(refused, what="three claims refused")
    reasons = sorted(r["reason"] for r in await chaoyang.query("SELECT reason FROM dead_letters"))
    assert sum("beyond reach" in r for r in reasons) == 2, reasons
    assert sum("digest claims" in r for r in reasons) == 1, reasons
    assert await chaoyang.value("SELECT count(*) FROM movements") == 0

    movements = await _register(gushi, 4)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="convergence")
    await eventually(lambda: _healthy(chaoyang, GUSHI), what="healthy after the claims")
    view = await _view(chaoyang, GUSHI)
    assert view["received_up_to"] < 1000, view
    assert view["partner_says_sent"] < 1000, view

    # five numbers skipped afterwards are noticed, asked for exactly, and settled
    hole = await _lose_numbers(gushi, 5, [])
    await eventually(
        lambda: _asked_for(chaoyang, hole, hole + 4), what="the hole noticed", within=30
    )
    await eventually(lambda: _healthy(chaoyang, GUSHI), what="the hole settled", within=60)
    more = await _register(gushi, 2)
    await eventually(lambda: _all_converged(gushi, chaoyang), what="traffic after the hole")
    assert len(await chaoyang.query("SELECT 1 FROM movements")) == len(movements + more)
    view = await _view(chaoyang, GUSHI)
    sent = await gushi.value(
        "SELECT last_sequence FROM pair_sequences WHERE destination = $1", CHAOYANG
    )
    assert view["received_up_to"] <= sent, view


async def _asked_for(node: LocalNode, first: int, last: int) -> bool:
    rows = await node.query("SELECT value FROM outbox WHERE event_type = $1", REPLAY)
    wanted = [json.loads(bytes(r["value"]))["data"] for r in rows]
    return any((w["from_sequence"], w["to_sequence"]) == (first, last) for w in wanted)
