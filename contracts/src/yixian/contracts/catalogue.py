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
    ReplicaReturned,
    ResendRequested,
)
from .movement import (
    ActivityScheduled,
    HostGroupChanged,
    OriginGroupChanged,
    ParticipationRecorded,
)
from .visitor import VisitorClaimAnswered, VisitorClaimAsked

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
    ReplicaReturned,
    VisitorClaimAsked,
    VisitorClaimAnswered,
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
    Fields and attributes this version does not know are ignored (a newer v1 writer's).
    """
    document = decode_raw(raw)
    event_type = document.get("type")
    if not isinstance(event_type, str):
        raise MalformedEvent(
            "type: missing or not a string", [{"field": "type", "reason": "required"}]
        )
    if event_type not in CATALOGUE:
        raise UnknownEventType(event_type, document)
    model = envelope_model(event_type)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        failure = exc
    # A reader is tolerant (ADR 3): within v1 a newer writer may add optional fields and
    # attributes anywhere; they are left out and the rest is read. The models stay closed,
    # so what this node writes, and the published schemas, stay strict.
    if _drop_unknown_fields(document, failure):
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            failure = exc
    errors = describe_errors(failure)
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    raise MalformedEvent(f"invalid {event_type}: {summary}", errors) from failure


def _drop_unknown_fields(document: dict[str, Any], exc: ValidationError) -> bool:
    """Remove, in place, every member ``exc`` names as an unknown field; whether any was.

    An error's location is the path of keys and indexes to the member, with the name of
    a union's branch where the value had to choose one (not a key of the document:
    skipped)."""
    dropped = False
    for error in exc.errors(include_url=False):
        if error["type"] != "extra_forbidden" or not error["loc"]:
            continue
        *path, name = error["loc"]
        node: Any = document
        for part in path:
            found = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            if found:
                node = node[part]
        if isinstance(node, dict) and name in node:
            del node[name]
            dropped = True
    return dropped
