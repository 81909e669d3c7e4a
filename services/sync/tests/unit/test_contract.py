"""What the sync service publishes about the node's Kafka traffic: the AsyncAPI document at
``/asyncapi.json``, the committed one, and dead letters as the document describes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from jsonschema import Draft7Validator, FormatChecker

from yixian.contracts import DEAD_LETTER_TYPE, TopicNames
from yixian.contracts.examples import AT
from yixian.contracts.schemas import ASYNCAPI_FILE, current_dir
from yixian.record.outbox import MAX_RECORD_BYTES
from yixian.sync.adapters.metrics import SyncMetrics
from yixian.sync.adapters.store import Inbound, dead_letter_document
from yixian.sync.entrypoints.http import create_app
from yixian.sync.service_layer.links import LinkKeeper, LinkPolicy

from .fakes import FakeTransactions, NodeTables

CHAOYANG, GUSHI = "110105", "411525"
COMMITTED = json.loads((current_dir() / ASYNCAPI_FILE).read_text())


async def _ready() -> dict[str, str]:
    return {}


async def test_the_node_serves_the_committed_asyncapi_document() -> None:
    topics = TopicNames()
    keeper = LinkKeeper(
        FakeTransactions(NodeTables(CHAOYANG, clock=lambda: AT), topics),
        node=CHAOYANG,
        partners=frozenset({GUSHI}),
        topics=topics,
        policy=LinkPolicy(),
        clock=lambda: AT,
    )
    app = create_app(
        node=CHAOYANG,
        pool=None,  # type: ignore[arg-type]  # the document needs no database
        keeper=keeper,
        metrics=SyncMetrics(),
        readiness=_ready,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sync"
    ) as client:
        response = await client.get("/asyncapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == COMMITTED
        assert (await client.post("/asyncapi.json")).status_code == 405


def _dead_letter_errors(document: bytes) -> list[str]:
    schema = {"$ref": "#/components/schemas/DeadLetter", "components": COMMITTED["components"]}
    validator = Draft7Validator(schema, format_checker=FormatChecker())
    return [e.message for e in validator.iter_errors(json.loads(document))]


def test_a_dead_letter_is_what_the_document_says_whole_or_cut_short() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    small = Inbound("yixian.v1.411525.to.110105", 0, 7, b"link", b"not json")
    keyless = Inbound("yixian.v1.411525.to.110105", 0, 9, None, b"{}")
    large = Inbound("yixian.v1.411525.to.110105", 1, 8, b"k" * 100_000, b"x" * MAX_RECORD_BYTES)
    errors: list[dict[str, Any]] = [{"field": "data", "reason": "r" * 1000}] * 200
    assert _dead_letter_errors(dead_letter_document(small, "not an event", [], now)) == []
    assert _dead_letter_errors(dead_letter_document(keyless, "no key", [], now)) == []
    assert _dead_letter_errors(dead_letter_document(large, "too big", errors, now)) == []
    message = COMMITTED["channels"]["deadLetter"]["messages"][DEAD_LETTER_TYPE]
    assert message["payload"] == {"$ref": "#/components/schemas/DeadLetter"}
