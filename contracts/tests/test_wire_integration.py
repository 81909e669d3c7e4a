"""Contract events through the real Kafka broker with FastStream, byte for byte."""

from __future__ import annotations

import asyncio

import pytest
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from yixian.contracts import TopicNames, decode, record_key
from yixian.contracts.examples import CHAOYANG, GUSHI, example_events

pytestmark = pytest.mark.integration


async def test_every_event_type_round_trips_through_kafka(
    kafka_bootstrap: str, topic_names: TopicNames
) -> None:
    topic = topic_names.pair(GUSHI, CHAOYANG)
    sent = example_events()
    received: list[KafkaMessage] = []
    all_arrived = asyncio.Event()

    broker = KafkaBroker(kafka_bootstrap, client_id="round-trip-test")

    @broker.subscriber(
        topic,
        group_id=f"{topic}.test",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,
    )
    async def collect(body: bytes, message: KafkaMessage) -> None:
        received.append(message)
        if len(received) == len(sent):
            all_arrived.set()

    async with broker:
        await broker.start()
        for event in sent:
            await broker.publish(
                event.encode(),
                topic=topic,
                key=record_key(event),
                headers={"content-type": "application/cloudevents+json"},
            )
        await asyncio.wait_for(all_arrived.wait(), timeout=60)

    by_id = {m.body: m for m in received}
    assert len(by_id) == len(sent)
    for event in sent:
        message = by_id[event.encode()]  # the exact bytes came back
        assert message.raw_message.key == record_key(event)  # type: ignore[union-attr]
        assert decode(message.body) == event
