"""What notify plans, and what it reads of the node to plan it: plain values, no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from .rules import Channel


def notice_key(recipient: str, reason: str, occurrence: str) -> str:
    """The key that makes a notice happen once per recipient, reason and occurrence."""
    return hashlib.sha256(f"{recipient}|{reason}|{occurrence}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Address:
    """Where one recipient is reached: the channel and its address (None: none known)."""

    channel: Channel
    address: str | None
    member_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One planned notice, rendered; a row of ``notices``."""

    key: str
    reason: str
    recipient: str
    channel: str
    address: str | None
    member_id: UUID | None
    movement_id: UUID | None
    language: str
    subject: str
    body: str
    urgent: bool
    mandatory: bool
    trace_id: str | None
    status: str
    """``pending``, or ``suppressed`` when the recipient has no address on the channel."""
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Seen:
    """The last version of a movement's group notify planned from, and its status then."""

    version: int
    status: str


@dataclass(frozen=True, slots=True)
class Contacts:
    """How an organization's secretary is reached."""

    contact_email: str | None
    webhook_url: str | None
    contact_sms: str | None = None
    """A mobile number, the last resort when the organization has no mail or webhook."""


@dataclass(frozen=True, slots=True)
class Person:
    """A member as notify reaches them (an invitation's or a greeting's recipient)."""

    member_id: UUID
    name: str
    phone: str | None
    email: str | None
    joined_on: date | None = None
