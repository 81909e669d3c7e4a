"""Members and organizations of a node."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID

from yixian.contracts import OPEN_ORIGIN_STATUSES, REMOVED_STATUS, MemberCard, OriginStatus

from .errors import Invalid

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")  # ASCII digits only: one number, one form


def normalise_national_id(value: str) -> str:
    """An 18-character resident ID number (GB 11643), upper-cased, checksum verified."""
    number = value.strip().upper()
    if not _ID_PATTERN.match(number):
        raise Invalid(
            "must be 18 characters: 17 digits and a check digit or X", field="national_id"
        )
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        born = None
    if born is None or not 1900 <= born.year <= 2099:
        raise Invalid("digits 7 to 14 must be a real date of birth", field="national_id")
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17]:
        raise Invalid("check digit does not match", field="national_id")
    return number


def national_id_hash(key: bytes, national_id: str) -> str:
    """The keyed hash under which this node stores and matches a national ID number.

    ``key`` is the node's own secret (``YIXIAN_NATIONAL_ID_KEY``), shared with no other
    node: the numbers are few enough to try them all against an unkeyed hash, so without
    the key the hash tells nothing. It never leaves the node (ADR 14).
    """
    number = normalise_national_id(national_id)
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


def mask_national_id(national_id: str) -> str:
    """What a node keeps in the clear: region digits and the last four, for recognition."""
    number = normalise_national_id(national_id)
    return f"{number[:6]}********{number[-4:]}"


class OrgKind(StrEnum):
    COMMITTEE = "committee"
    GENERAL_BRANCH = "general_branch"
    BRANCH = "branch"
    WORKING_COMMITTEE = "working_committee"
    """A mobile-member organization an origin sets up inside a host's area."""


@dataclass(frozen=True, slots=True)
class Organization:
    org_id: UUID
    name: str
    kind: OrgKind
    parent_id: UUID | None
    path: str
    """Materialised path of org ids from the root, ``/id/id/``: a subtree is a prefix."""
    jurisdiction: str
    """Where the organization operates: its node's code, or the host area it serves."""

    def within(self, ancestor_path: str) -> bool:
        return self.path.startswith(ancestor_path)


def child_path(parent: Organization | None, org_id: UUID) -> str:
    return f"{parent.path if parent else '/'}{org_id}/"


@dataclass(frozen=True, slots=True)
class Member:
    member_id: UUID
    org_id: UUID
    name: str
    joined_on: date
    phone: str | None
    email: str | None
    national_id_hash: str | None
    national_id_masked: str | None
    address: str | None = None
    transferred_from: str | None = None
    """The origin jurisdiction whose member this was, for a member enrolled here after a
    transfer (ADR 19); None for a member registered here."""
    transfer_movement_id: UUID | None = None
    """The movement whose completed transfer brought the member here (one member per
    movement: a unique index decides)."""

    def contact(self) -> dict[str, str | None]:
        """How the member is reached (``domain.contact.CONTACT_FIELDS``)."""
        return {"phone": self.phone, "email": self.email, "address": self.address}

    def card(self) -> MemberCard:
        """What a partner receives of the member: nothing derived from the national ID."""
        return MemberCard(member_id=self.member_id, name=self.name, joined_on=self.joined_on)


class MemberStatus(StrEnum):
    """Where a member of this node stands, from the movements this node registered."""

    HOME = "home"
    """No open movement: the member is at the home organization."""
    AWAY = "away"
    """A movement is open (``OPEN_ORIGIN_STATUSES``): the member is away."""
    TRANSFERRED_OUT = "transferred_out"
    """A transfer completed and no movement is open: membership moved to a host. The record
    stays for history; it is not present here and no outflow can be registered for it."""
    REMOVED = "removed"
    """The origin removed the member (除名) after lost contact: kept for history, present
    nowhere, reached by no notice, and no outflow can be registered for it."""


def member_status(recorded: Iterable[str]) -> MemberStatus:
    """The status of a member from the recorded origin statuses (``recorded_status``) of the
    member's movements from this node (``adapters/postgres.py`` computes the same in SQL,
    with these values as arguments)."""
    statuses = set(recorded)
    if REMOVED_STATUS in statuses:
        return MemberStatus.REMOVED
    if statuses & {status.value for status in OPEN_ORIGIN_STATUSES}:
        return MemberStatus.AWAY
    if OriginStatus.TRANSFERRED.value in statuses:
        return MemberStatus.TRANSFERRED_OUT
    return MemberStatus.HOME


_PHONE_SEARCH = re.compile(r"^[0-9 +()\-]{4,50}$")


def phone_digits(value: str, *, field: str = "phone") -> str:
    """The digits a phone number is matched by; a search matches the numbers that end with
    them, so ``13800000000`` finds ``+86 138 0000 0000`` (migration 0008 indexes them)."""
    digits = re.sub(r"[^0-9]", "", value)
    if not _PHONE_SEARCH.match(value) or not 4 <= len(digits) <= 20:
        raise Invalid("must be 4 to 20 digits (spaces, +, - and brackets allowed)", field=field)
    return digits
