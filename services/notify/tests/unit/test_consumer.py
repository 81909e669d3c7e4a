"""The consumer's wiring on FastStream's in-memory Kafka broker (``TestKafkaBroker``): an
event published on the node's local topic reaches the planner in a unit of work that is
committed; other topics do not reach it. No broker, no database."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from yixian.contracts import MovementStep, OriginGroupChanged, TopicNames, make_event
from yixian.contracts.examples import AT, CHAOYANG, GUSHI, origin_group
from yixian.notify.bootstrap import TEMPLATES
from yixian.notify.config import NotifySettings
from yixian.notify.domain.templates import Templates
from yixian.notify.entrypoints.consumer import build_consumer
from yixian.notify.service_layer.planner import Planner

from .fakes import FakeTransactions, NodeTables


async def test_an_event_on_the_local_topic_is_planned_once_in_a_committed_unit_of_work() -> None:
    settings = NotifySettings(node=GUSHI)
    tables = NodeTables(GUSHI)
    transactions = FakeTransactions(tables)
    planner = Planner(GUSHI, Templates(TEMPLATES))
    woken: list[int] = []  # the dispatcher is told once the planned notice is committed
    broker = build_consumer(
        settings, transactions, planner, lambda: woken.append(transactions.committed)
    )
    group = origin_group()
    tables.keep(group)
    event = make_event(
        OriginGroupChanged(group=group, step=MovementStep.REGISTERED), node=GUSHI, time=AT
    )
    topics: TopicNames = settings.kafka.topics

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(event.encode(), topics.local(GUSHI), key=b"m")
        # a partner's pair topic is sync's, never notify's
        await test_broker.publish(event.encode(), topics.pair(GUSHI, CHAOYANG))
        await test_broker.publish(event.encode(), topics.local(GUSHI))  # redelivered
        await test_broker.publish(b"{not json", topics.local(GUSHI))  # skipped, not fatal

    (notice,) = tables.notices.values()
    assert (notice.reason, notice.recipient, notice.address) == (
        "outflow_registered",
        "member",
        group.contact.phone,
    )
    assert notice.trace_id == event.trace_id
    assert (transactions.committed, transactions.rolled_back) == (3, 0)
    assert woken == [1]  # after the first batch's commit; the repeat planned nothing
