"""OpenTelemetry spans join up across nodes through the events' traceparent: the caller's
span → Gushi's registry command → Chaoyang's sync apply → the local event Chaoyang's
notify reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from yixian.contracts import TopicNames, decode, numbered
from yixian.runtime import KafkaSettings, create_pool
from yixian.runtime.tracing import configure_tracing
from yixian.sync.bootstrap import build_applier, sync_config
from yixian.sync.bootstrap import migrate as migrate_sync
from yixian.sync.config import SyncSettings
from yixian.sync.service_layer.repositories import Inbound

from .conftest import CHAOYANG, Node, outflow

pytestmark = pytest.mark.integration

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    configure_tracing("test", "000000", processors=[processor])
    yield exporter
    processor.shutdown()


def _parts(traceparent: str) -> tuple[str, str]:
    _, trace, span, _ = traceparent.split("-")
    return trace, span


async def test_spans_continue_the_trace_from_http_call_to_partner_apply(
    gushi: Node,
    make_database: Callable[[], Awaitable[str]],
    topic_names: TopicNames,
    kafka_bootstrap: str,
    spans: InMemorySpanExporter,
) -> None:
    member = await gushi.member(await gushi.org("第一支部"))
    await gushi.post("/v1/movements", outflow(member), expect=201, headers={"traceparent": CALLER})

    command = next(s for s in spans.get_finished_spans() if s.name == "registry movement.register")
    assert command.parent is not None
    assert f"{command.context.trace_id:032x}" == CALLER_TRACE
    assert f"{command.parent.span_id:016x}" == "00f067aa0ba902b7"  # the caller's span

    pair = next(r for r in await gushi.outbox() if r["destination"] == CHAOYANG)
    sent = decode(bytes(pair["value"]))
    assert _parts(sent.traceparent) == (CALLER_TRACE, f"{command.context.span_id:016x}")

    # Chaoyang's sync applies it
    settings = SyncSettings(
        node=CHAOYANG,
        database_url=await make_database(),
        kafka=KafkaSettings(
            bootstrap_servers=kafka_bootstrap, topic_namespace=topic_names.namespace
        ),
    )
    await migrate_sync(settings)
    pool = await create_pool(settings.database_url, size=2)
    try:
        applier = build_applier(pool, sync_config(settings), lambda: datetime.now(UTC))
        wire = numbered(bytes(pair["value"]), 1)  # as the relay publishes it
        record = Inbound(pair["topic"], 0, 0, bytes(pair["record_key"]), wire)
        assert await applier.handle(record) == "applied"
        local = await pool.fetchrow("SELECT value FROM outbox WHERE topic LIKE '%.local'")
    finally:
        await pool.close()

    apply = next(s for s in spans.get_finished_spans() if s.name.startswith("sync apply"))
    assert f"{apply.context.trace_id:032x}" == CALLER_TRACE
    assert apply.parent is not None
    assert apply.parent.span_id == command.context.span_id  # across the nodes
    assert dict(apply.attributes or {})["yixian.partner"] == gushi.code

    assert local is not None
    announced = decode(bytes(local["value"]))  # what Chaoyang's notify will continue
    assert _parts(announced.traceparent) == (CALLER_TRACE, f"{apply.context.span_id:016x}")
