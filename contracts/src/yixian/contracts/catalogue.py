"""Every event type of contracts v1, and decoding bytes into the right model."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ._base import ContractModel
from .envelope import (
    Envelope,
    MalformedEvent,
    UnknownEventType,
    decode_raw,
    describe_errors,
    parametrized,
)
from .link import (
    LinkDigest,
    LinkDigestEntries,
    LinkHeartbeat,
    LinkStatusReported,
    LinkStatusRequested,
    ReplayRequested,
    ResendRequested,
)
from .movement import (
    ActivityScheduled,
    HostGroupChanged,
    OriginGroupChanged,
    ParticipationRecorded,
)

PAYLOADS: tuple[type[ContractModel], ...] = (
    OriginGroupChanged,
    HostGroupChanged,
    ParticipationRecorded,
    ActivityScheduled,
    LinkHeartbeat,
    LinkDigest,
    LinkDigestEntries,
    ReplayRequested,
    ResendRequested,
    LinkStatusRequested,
    LinkStatusReported,
)

CATALOGUE: dict[str, type[ContractModel]] = {
    p.EVENT_TYPE: p  # type: ignore[attr-defined]
    for p in PAYLOADS
}
"""Event type → payload model."""


def envelope_model(event_type: str) -> type[Envelope[Any]]:
    """The concrete envelope model of an event type."""
    return parametrized(CATALOGUE[event_type])


def decode(raw: bytes) -> Envelope[Any]:
    """Bytes from the wire to a validated event.

    Raises :class:`MalformedEvent` (with the offending fields) for anything invalid and
    :class:`UnknownEventType` for a well-formed envelope of a type this version lacks.
    """
    document = decode_raw(raw)
    event_type = document.get("type")
    if not isinstance(event_type, str):
        raise MalformedEvent(
            "type: missing or not a string", [{"field": "type", "reason": "required"}]
        )
    if event_type not in CATALOGUE:
        raise UnknownEventType(event_type, document)
    try:
        return envelope_model(event_type).model_validate(document)
    except ValidationError as exc:
        errors = describe_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        raise MalformedEvent(f"invalid {event_type}: {summary}", errors) from exc
