"""The local HTTP sink receives like a real server: a request whose sender died
mid-body (its body shorter than Content-Length) is refused and not recorded. Over real
loopback sockets, so these are not unit tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from yixian.localstack.sinks import HttpSink

pytestmark = pytest.mark.integration
BODY = b'{"to": "13900000001", "text": "theme day"}'


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


def head(length: int | str) -> bytes:
    return (
        "POST /sms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def exchange(sink: HttpSink, data: bytes, *, then_read: bool = True) -> bytes:
    """Send ``data``, close the sending side, and return all the sink answers."""
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as conn:
        conn.sendall(data)
        if not then_read:
            return b""  # closed at once, as a killed sender's socket is
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        return answer


def test_a_complete_body_is_recorded(sink: HttpSink) -> None:
    answer = exchange(sink, head(len(BODY)) + BODY)
    assert answer.startswith(b"HTTP/1.1 202")
    assert [(r.path, r.json()) for r in sink.requests] == [
        ("/sms", {"to": "13900000001", "text": "theme day"})
    ]


def test_a_body_shorter_than_its_content_length_is_refused(sink: HttpSink) -> None:
    answer = exchange(sink, head(len(BODY)) + BODY[:10])
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.endswith(f"body has 10 of the {len(BODY)} bytes of Content-Length".encode())
    assert sink.requests == []


def test_bodies_cut_off_by_a_kill_are_not_recorded() -> None:
    sink = HttpSink().start()
    try:
        exchange(sink, head(len(BODY)), then_read=False)
        exchange(sink, head(len(BODY)) + BODY[:5], then_read=False)
        # The next sender's complete request is the only one recorded.
        assert exchange(sink, head(len(BODY)) + BODY).startswith(b"HTTP/1.1 202")
    finally:
        sink.stop()  # waits for every connection's handler to finish
    assert [r.body for r in sink.requests] == [BODY]


def test_a_content_length_that_is_no_number_is_refused(sink: HttpSink) -> None:
    answer = exchange(sink, head("-1") + BODY)
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.endswith(b"Content-Length must be a non-negative integer")
    assert sink.requests == []
