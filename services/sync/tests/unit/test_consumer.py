"""The consumer's wiring on FastStream's in-memory Kafka broker (``TestKafkaBroker``): a
partner's record on a pair topic addressed to this node reaches the ``Applier`` and is
applied in a committed unit of work; a pair topic to another node is not this node's; a
failing database is retried, never acknowledged as applied. No broker, no database."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from yixian.contracts import OriginGroupChanged, TopicNames, make_event
from yixian.contracts.examples import AT, MOVEMENT, TRACEPARENT, origin_group
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.config import SyncSettings
from yixian.sync.entrypoints import consumer
from yixian.sync.entrypoints.consumer import build_consumer
from yixian.sync.service_layer.applier import Applier, SyncConfig
from yixian.sync.service_layer.links import LinkPolicy

from .fakes import DatabaseLost, FakeStore, FakeTransactions, NodeTables

GUSHI, CHAOYANG, CHANGPING = "411525", "110105", "110114"


def _record(version: int, *, to: str = CHAOYANG, seq: int | None = None) -> bytes:
    event = make_event(
        OriginGroupChanged(group=origin_group(version)),
        node=GUSHI,
        time=AT,
        traceparent=TRACEPARENT,
        subject=str(MOVEMENT),
        correlationid=MOVEMENT,
    ).with_pairseq(seq or version, 0)
    return event.encode()


async def test_a_partners_records_reach_the_applier_through_its_pair_topic() -> None:
    settings = SyncSettings(node=CHAOYANG, partners=GUSHI)
    topics: TopicNames = settings.kafka.topics
    tables = NodeTables(CHAOYANG, clock=lambda: AT)
    transactions = FakeTransactions(tables, topics)
    applier = Applier(transactions, SyncConfig(CHAOYANG, topics, LinkPolicy()), lambda: AT)
    metrics = SyncMetrics()
    batches: list[int] = []  # the link keeper is told after each batch, once committed
    broker = build_consumer(
        settings, applier, metrics, [topics.pair(GUSHI, CHAOYANG)],
        applied=lambda: batches.append(transactions.committed),
    )  # fmt: skip
    key = str(MOVEMENT).encode()

    second = _record(2)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(_record(1), topics.pair(GUSHI, CHAOYANG), key=key)
        await test_broker.publish(second, topics.pair(GUSHI, CHAOYANG), key=key)
        await test_broker.publish(second, topics.pair(GUSHI, CHAOYANG), key=key)  # redelivered
        # another node's pair topic: not addressed to Chaoyang, never consumed here
        await test_broker.publish(_record(3), topics.pair(GUSHI, CHANGPING), key=key)

    stored = tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica.origin == origin_group(2)
    outcomes = sorted(row.outcome for row in tables.inbox.values())
    assert outcomes == ["applied", "applied"]  # the repeat was absorbed by the inbox
    assert [e.data.group.version for e in tables.announced(topics)] == [1, 2]
    assert transactions.committed == 3
    assert transactions.rolled_back == 0
    applied = metrics.events.labels(partner=GUSHI, outcome="applied")._value.get()
    assert applied == 2
    assert batches == [1, 2, 3]


async def test_a_passing_database_failure_is_retried_and_the_record_applied_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = SyncSettings(node=CHAOYANG, partners=GUSHI)
    topics: TopicNames = settings.kafka.topics
    tables = NodeTables(CHAOYANG, clock=lambda: AT)
    transactions = FakeTransactions(tables, topics)
    applier = Applier(transactions, SyncConfig(CHAOYANG, topics, LinkPolicy()), lambda: AT)
    broker = build_consumer(settings, applier, SyncMetrics(), [topics.pair(GUSHI, CHAOYANG)])
    announce = FakeStore.publish_local
    failures = iter([True, True])

    async def flaky(self: FakeStore, event: Any) -> None:
        if next(failures, False):
            raise DatabaseLost("connection reset")
        await announce(self, event)

    monkeypatch.setattr(FakeStore, "publish_local", flaky)
    monkeypatch.setattr(consumer, "_pause", lambda attempt: 0.0)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(_record(1), topics.pair(GUSHI, CHAOYANG))

    [row] = tables.inbox.values()
    assert row.outcome == "applied"
    assert not tables.dead_letters
    assert (transactions.rolled_back, transactions.committed) == (2, 1)


async def test_a_record_naming_a_reply_topic_makes_this_node_write_nothing() -> None:
    """FastStream answers a record that carries a ``reply_to`` header on the topic it names:
    a partner could have made this node write to its own topics. It is applied, unanswered."""
    settings = SyncSettings(node=CHAOYANG, partners=GUSHI)
    topics: TopicNames = settings.kafka.topics
    tables = NodeTables(CHAOYANG, clock=lambda: AT)
    transactions = FakeTransactions(tables, topics)
    applier = Applier(transactions, SyncConfig(CHAOYANG, topics, LinkPolicy()), lambda: AT)
    broker = build_consumer(settings, applier, SyncMetrics(), [topics.pair(GUSHI, CHAOYANG)])
    victim = topics.pair(CHAOYANG, CHANGPING)  # a topic Chaoyang's principal may write
    written: list[bytes] = []

    @broker.subscriber(victim)
    async def watch(body: bytes) -> None:
        written.append(body)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            _record(1), topics.pair(GUSHI, CHAOYANG), key=b"k", headers={"reply_to": victim}
        )
    assert written == []
    assert [row.outcome for row in tables.inbox.values()] == ["applied"]
