"""The real channels behind one small interface: email (SMTP), SMS (an HTTP gateway),
signed webhooks, and a slot for a messaging app's template API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

import aiosmtplib
import httpx


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    key: str
    reason: str
    address: str
    subject: str
    body: str
    movement_id: str | None
    member_id: str | None


class Channel(Protocol):
    async def send(self, notice: Notice) -> Delivery: ...


def _http_outcome(response: httpx.Response) -> Delivery:
    if response.is_success:
        return Delivery(Outcome.SENT, str(response.status_code))
    if response.status_code in (408, 425, 429) or response.status_code >= 500:
        return Delivery(Outcome.RETRY, f"HTTP {response.status_code}")
    return Delivery(Outcome.FAILED, f"HTTP {response.status_code}: {response.text[:200]}")


class EmailChannel:
    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    async def send(self, notice: Notice) -> Delivery:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = notice.address
        message["Subject"] = notice.subject
        message["Message-ID"] = f"<{notice.key}@yixian>"  # the same on a retry
        message.set_content(notice.body)
        try:
            await aiosmtplib.send(message, hostname=self.host, port=self.port, timeout=15)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return Delivery(Outcome.FAILED, f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            outcome = Outcome.FAILED if 500 <= exc.code < 600 else Outcome.RETRY
            return Delivery(outcome, f"SMTP {exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Delivery(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        return Delivery(Outcome.SENT, "250")


class SmsChannel:
    """``POST {gateway}/messages`` with ``{"to", "text", "id"}``; the id is an idempotency key."""

    def __init__(self, client: httpx.AsyncClient, gateway: str) -> None:
        self.client, self.gateway = client, gateway.rstrip("/")

    async def send(self, notice: Notice) -> Delivery:
        try:
            response = await self.client.post(
                f"{self.gateway}/messages",
                json={
                    "to": notice.address,
                    "text": f"{notice.subject}：{notice.body}",
                    "id": notice.key,
                },
                headers={"Idempotency-Key": notice.key},
            )
        except httpx.TransportError as exc:
            return Delivery(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        return _http_outcome(response)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>``."""
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


def verify(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300
) -> bool:
    """What a receiver checks: the signature, and that the timestamp is recent."""
    fresh = abs(time.time() - float(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    """A JSON POST signed with the node's webhook secret (``X-Yixian-Signature``)."""

    def __init__(self, client: httpx.AsyncClient, secret: bytes) -> None:
        self.client, self.secret = client, secret

    async def send(self, notice: Notice) -> Delivery:
        document: dict[str, Any] = {
            "notice_id": notice.key,
            "reason": notice.reason,
            "subject": notice.subject,
            "body": notice.body,
            "movement_id": notice.movement_id,
            "member_id": notice.member_id,
        }
        body = json.dumps(document, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        try:
            response = await self.client.post(
                notice.address,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Yixian-Notice-Id": notice.key,
                    "X-Yixian-Timestamp": timestamp,
                    "X-Yixian-Signature": sign(self.secret, timestamp, body),
                },
            )
        except httpx.TransportError as exc:
            return Delivery(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        return _http_outcome(response)


class AppTemplateChannel:
    """The slot for a messaging app's template-message API (e.g. an official account).

    ``POST {endpoint}`` with the template id and the rendered fields; without an endpoint
    configured the channel refuses, and the notice falls back or is recorded as failed.
    """

    def __init__(self, client: httpx.AsyncClient, endpoint: str | None, template_id: str) -> None:
        self.client, self.endpoint, self.template_id = client, endpoint, template_id

    async def send(self, notice: Notice) -> Delivery:
        if not self.endpoint:
            return Delivery(
                Outcome.FAILED, "the messaging-app channel is not configured on this node"
            )
        try:
            response = await self.client.post(
                self.endpoint,
                json={
                    "touser": notice.address,
                    "template_id": self.template_id,
                    "data": {"title": notice.subject, "content": notice.body},
                    "client_msg_id": notice.key,
                },
            )
        except httpx.TransportError as exc:
            return Delivery(Outcome.RETRY, str(exc))
        return _http_outcome(response)
