"""Local receivers for the notify service's channels: a real SMTP server and an HTTP
endpoint (SMS gateway and webhooks) that record what arrived, when, and can fail on
purpose. For tests and the demo; they listen on loopback only."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Mail:
    sender: str
    to: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    at: float


@dataclass
class MailSink:
    """An SMTP server; addresses in ``refuse`` are rejected permanently (550)."""

    refuse: set[str] = field(default_factory=set)
    mails: list[Mail] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    on_arrival: Callable[[Mail], None] | None = None

    def __post_init__(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        message = message_from_bytes(raw, policy=policy.default)
        body = message.get_body(("plain",))
        mail = Mail(
            sender=str(envelope.mail_from),
            to=tuple(envelope.rcpt_tos),
            subject=str(message["Subject"]),
            body=body.get_content().strip() if body else "",
            message_id=str(message["Message-ID"]),
            at=time.time(),
        )
        self.mails.append(mail)
        if self.on_arrival is not None:
            self.on_arrival(mail)
        return "250 Message accepted"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    """A sender that went away mid-request (killed, or its host restarted) is no error of
    the receiver's: it is not printed as one."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class HttpSink:
    """Records every complete POST; ``fail_first[path] = n`` answers 503 to the first n for
    a path, and paths in ``reject`` get 400. Like a real receiver, it refuses (400, nothing
    recorded) a body shorter than its Content-Length: what a sender killed mid-request
    leaves behind."""

    fail_first: dict[str, int] = field(default_factory=dict)
    reject: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    on_arrival: Callable[[Request], None] | None = None

    def __post_init__(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver offers

            def do_POST(self) -> None:
                announced = self.headers.get("Content-Length", "0").strip()
                if not announced.isdecimal():
                    self.close_connection = True  # where the body ends is unknown
                    self.answer(400, "Content-Length must be a non-negative integer")
                    return
                try:
                    body = self.rfile.read(int(announced))
                except OSError:  # reset by a sender that died: nothing to answer
                    self.close_connection = True
                    return
                if len(body) < int(announced):
                    self.close_connection = True  # the sender closed mid-body
                    self.answer(
                        400, f"body has {len(body)} of the {announced} bytes of Content-Length"
                    )
                elif sink.fail_first.get(self.path, 0) > 0:
                    sink.fail_first[self.path] -= 1
                    self.answer(503)
                elif self.path in sink.reject:
                    self.answer(400)
                else:
                    request = Request(self.path, dict(self.headers), body, time.time())
                    sink.requests.append(request)
                    if sink.on_arrival is not None:
                        sink.on_arrival(request)
                    self.answer(202)

            def answer(self, status: int, reason: str = "") -> None:
                text = reason.encode()
                with contextlib.suppress(OSError):  # a sender that died is not listening
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
