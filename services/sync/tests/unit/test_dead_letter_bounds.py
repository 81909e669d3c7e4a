"""A dead letter's record stays publishable whatever a partner sent (issue 13)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from yixian.record.outbox import MAX_RECORD_BYTES
from yixian.sync.adapters.store import (
    DEAD_LETTER_MAX_BYTES,
    EXCERPT_BYTES,
    Inbound,
    dead_letter_document,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_small_record_is_copied_whole() -> None:
    record = Inbound("t", 0, 7, b"key", b'{"id": 1}')
    document = json.loads(dead_letter_document(record, "not an event", [{"loc": "id"}], NOW))
    assert base64.b64decode(document["value"]) == b'{"id": 1}'
    assert base64.b64decode(document["key"]) == b"key"
    assert document["errors"] == [{"loc": "id"}]


def test_a_record_near_the_broker_limit_leaves_its_digest_and_an_excerpt() -> None:
    value = b"\xe5" * (MAX_RECORD_BYTES - 100)  # base64 alone would be a third larger
    key = b"k" * 100_000
    errors = [{"loc": ["data", i], "input": "x" * 1000} for i in range(500)]
    record = Inbound("t", 2, 9, key, value)
    encoded = dead_letter_document(record, "refused: " + "r" * 100_000, errors, NOW)
    assert len(encoded) < DEAD_LETTER_MAX_BYTES < MAX_RECORD_BYTES
    document = json.loads(encoded)
    assert document["value"] is None
    assert document["value_excerpt"]["sha256"] == hashlib.sha256(value).hexdigest()
    assert document["value_excerpt"]["bytes"] == len(value)
    assert base64.b64decode(document["value_excerpt"]["head"]) == value[:EXCERPT_BYTES]
    assert document["key_excerpt"]["sha256"] == hashlib.sha256(key).hexdigest()
    assert document["errors"] == []
    assert document["errors_excerpt"] == json.dumps(errors, ensure_ascii=False)[:EXCERPT_BYTES]
    assert len(document["reason"]) == EXCERPT_BYTES
    assert (document["topic"], document["partition"], document["offset"]) == ("t", 2, 9)
