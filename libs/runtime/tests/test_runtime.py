"""Logging and settings shared by the services."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import structlog
from asyncpg.exceptions import InternalClientError
from pydantic import ValidationError

from yixian.runtime import NodeSettings, bind_trace, configure_logging, get_logger, make_broker
from yixian.runtime.http import start_http
from yixian.runtime.lifecycle import BackgroundTaskEnded, wait_for_stop_signal
from yixian.runtime.settings import KafkaSettings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Logging as a fresh process has it (another test in this process may have quieted
    the client libraries, as the operator's command does), and as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = {logger.name: logger.level for logger in named}
    for logger in named:
        logger.setLevel(logging.NOTSET)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for logger in named:
        logger.setLevel(levels[logger.name])
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("restore_logging")
def test_log_lines_are_json_with_service_node_and_trace(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(service="sync", node="110105")
    log = get_logger("yixian.test")
    with bind_trace("4bf92f3577b34da6a3ce929d0e0e4736", movement_id="m-1"):
        log.info("event applied", version=3)
    logging.getLogger("aiokafka").warning("library line")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    applied, library = lines
    assert applied["event"] == "event applied"
    assert applied["service"] == "sync"
    assert applied["node"] == "110105"
    assert applied["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert applied["movement_id"] == "m-1"
    assert applied["version"] == 3
    assert library["event"] == "library line"
    assert library["service"] == "sync"
    assert "trace_id" not in library


def test_node_code_is_required_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIXIAN_NODE", "12345")
    with pytest.raises(ValidationError, match="node"):
        NodeSettings()
    monkeypatch.setenv("YIXIAN_NODE", "110105")
    monkeypatch.setenv("YIXIAN_KAFKA_TOPIC_NAMESPACE", "demo")
    settings = NodeSettings()
    assert settings.node == "110105"
    assert settings.kafka.topics.local("110105") == "demo.yixian.v1.110105.local"


def test_sasl_needs_credentials() -> None:
    settings = KafkaSettings(security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="YIXIAN_KAFKA_USERNAME"):
        make_broker(settings, client_id="x")


def test_broker_is_built_without_connecting() -> None:
    broker = make_broker(KafkaSettings(bootstrap_servers="127.0.0.1:1"), client_id="x")
    assert broker is not None


async def test_a_background_loop_that_ends_stops_the_service() -> None:
    async def loop_that_dies() -> None:
        raise InternalClientError("cannot switch to state 12")

    task = asyncio.create_task(loop_that_dies(), name="dispatch")
    with pytest.raises(BackgroundTaskEnded, match="dispatch ended") as ended:
        await asyncio.wait_for(wait_for_stop_signal(task), 5)
    assert isinstance(ended.value.__cause__, InternalClientError)


async def test_sigterm_ends_the_wait_while_the_loops_run() -> None:
    forever = asyncio.create_task(asyncio.Event().wait(), name="forever")
    waiting = asyncio.create_task(wait_for_stop_signal(forever))
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(waiting, 5)
    assert not forever.done()
    forever.cancel()


async def test_the_http_server_ticks_once_a_second_and_stops_at_once() -> None:
    async def app(scope: dict[str, object], receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    http = await start_http(app, "127.0.0.1", 0)
    ticks = 0
    tick = http.server.on_tick

    async def counted(counter: int) -> bool:
        nonlocal ticks
        ticks += 1
        return await tick(counter)

    http.server.on_tick = counted  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    counting = loop.time()
    try:
        async with httpx.AsyncClient(base_url=http.url) as client:
            first = (await client.get("/")).headers["date"]
            await asyncio.sleep(1.2)
            second = (await client.get("/")).headers["date"]
        assert parsedate_to_datetime(second) > parsedate_to_datetime(first)  # kept current
        # once a second (uvicorn's own loop ticks ten times a second)
        assert 1 <= ticks <= loop.time() - counting + 1
    finally:
        started = loop.time()
        await http.stop()
        assert loop.time() - started < 0.5
