"""How a member is reached, and how a contact changes field by field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .changes import field_changes
from .errors import Invalid

CONTACT_FIELDS = ("phone", "email", "address")
"""The ways to reach a member, in the order they are checked and reported."""

ContactValues = Mapping[str, str | None]
"""A contact as field -> value (None or absent: not known)."""


def merge_contact(
    current: ContactValues, changes: ContactValues, *, field: str = "contact"
) -> dict[str, str | None]:
    """``changes`` applied to ``current`` as a JSON merge patch (RFC 7396): a field sent with
    a value is set, a field sent as null is removed, a field not sent is kept.

    At least one way to reach the member must remain; otherwise Invalid, naming the field
    whose removal left none (``contact.email``), or ``field`` when nothing was removed.
    """
    for name in changes:
        if name not in CONTACT_FIELDS:
            raise Invalid(
                f"is not a contact field ({', '.join(CONTACT_FIELDS)})", field=f"{field}.{name}"
            )
    merged = {
        name: changes[name] if name in changes else current.get(name) for name in CONTACT_FIELDS
    }
    if not any(merged.values()):
        removed = [name for name in CONTACT_FIELDS if name in changes and not changes[name]]
        raise Invalid(
            "would leave no way to reach the member: keep or give a phone, email or address",
            field=f"{field}.{removed[0]}" if removed else field,
        )
    return merged


def contact_changes(
    before: ContactValues, after: ContactValues, *, field: str = "contact"
) -> dict[str, dict[str, Any]]:
    """Each field that differs, as ``{"contact.phone": {"before": ..., "after": ...}}``."""
    return field_changes(
        {name: before.get(name) for name in CONTACT_FIELDS},
        {name: after.get(name) for name in CONTACT_FIELDS},
        prefix=field,
    )
