"""A dead letter as a partner's operator reads it from Kafka: written by sync, published by
the relay to the real broker, and what the AsyncAPI document says of it (plain JSON, not a
CloudEvent: ``content-type: application/json``), headers, value and key."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from jsonschema import Draft7Validator, FormatChecker

from yixian.contracts import DEAD_LETTER_TYPE, TopicNames
from yixian.contracts.examples import AT
from yixian.contracts.schemas import ASYNCAPI_FILE, current_dir
from yixian.record import schema
from yixian.record.relay import OutboxRelay, RelaySettings
from yixian.runtime import KafkaSettings, create_pool
from yixian.runtime.kafka import client_options, read_topics
from yixian.sync.bootstrap import MIGRATIONS, SERVICE, build_applier
from yixian.sync.service_layer.applier import SyncConfig
from yixian.sync.service_layer.links import LinkPolicy
from yixian.sync.service_layer.repositories import Inbound

pytestmark = pytest.mark.integration

GUSHI, CHAOYANG = "411525", "110105"
DOCUMENT = json.loads((current_dir() / ASYNCAPI_FILE).read_text())
MESSAGE = DOCUMENT["channels"]["deadLetter"]["messages"][DEAD_LETTER_TYPE]


def _errors(schema: dict[str, Any], instance: Any) -> list[str]:
    rooted = {**schema, "components": DOCUMENT["components"]}
    validator = Draft7Validator(rooted, format_checker=FormatChecker())
    return [e.message for e in validator.iter_errors(instance)]


async def _create(kafka: KafkaSettings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


async def test_a_dead_letter_goes_out_as_plain_json_as_the_document_says(
    database_url: str, topic_names: TopicNames, kafka_bootstrap: str
) -> None:
    await schema.migrate(database_url, SERVICE, MIGRATIONS)
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_namespace=topic_names.namespace)
    topic = topic_names.dead_letter(CHAOYANG, "sync")
    await _create(kafka, topic)
    key = b"\xff\x00 not UTF-8"  # a partner's key, any bytes: the dead letter keeps it
    pool = await create_pool(database_url, size=3)
    stop = asyncio.Event()
    relay = OutboxRelay(
        pool, kafka, client_id="dead-letter-test", settings=RelaySettings(poll_interval=0.05)
    )
    running = asyncio.create_task(relay.run(stop))
    try:
        applier = build_applier(pool, SyncConfig(CHAOYANG, topic_names, LinkPolicy()), lambda: AT)
        record = Inbound(topic_names.pair(GUSHI, CHAOYANG), 0, 3, key, b"not an event")
        assert await applier.handle(record) == "dead_letter"
        async with asyncio.timeout(30):
            while relay.published < 1:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
        await pool.close()

    received = []
    async with read_topics(kafka, [topic]) as reading:
        async for records in reading.batches():
            received += records
    [dead_letter] = received
    headers = {name: value.decode() for name, value in dead_letter.headers}
    assert headers["content-type"] == "application/json" == MESSAGE["contentType"]
    assert headers["ce_type"] == DEAD_LETTER_TYPE
    assert _errors(MESSAGE["headers"], headers) == []
    value = json.loads(dead_letter.value)
    assert _errors(MESSAGE["payload"], value) == []
    assert (value["topic"], value["offset"]) == (record.topic, 3)
    assert base64.b64decode(value["key"]) == dead_letter.key == key
