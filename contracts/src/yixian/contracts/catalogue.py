"""Every event type of contracts v1, and decoding bytes into the right model."""

from __future__ import annotations

import re
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


_ENVELOPES: dict[bytes, type[Envelope[Any]]] = {
    event_type.encode(): envelope_model(event_type) for event_type in CATALOGUE
}
_TYPE = re.compile(rb'"type":\s*"([a-z_.0-9]{1,100})"')
"""The first ``"type"`` member of an encoded event: the envelope's, as every producer writes
it before ``data`` (a wrong guess only fails validation and takes the careful way)."""


def decode(raw: bytes) -> Envelope[Any]:
    """Bytes from the wire to a validated event.

    Raises :class:`MalformedEvent` (with the offending fields) for anything invalid and
    :class:`UnknownEventType` for a well-formed envelope of a type this version lacks.
    Fields and attributes this version does not know are ignored (a newer v1 writer's).

    The bytes are first validated as JSON by the model of the type they name (pydantic
    parses and validates in one pass, about half the time); whatever that does not take —
    an unknown type or field, invalid JSON or values, a document it would read otherwise —
    is read the careful way below, which says why. What both take, they read alike (a
    contract test holds them to it).
    """
    named = _TYPE.search(raw)
    if named is not None:
        model = _ENVELOPES.get(named.group(1))
        if model is not None:
            try:
                return model.model_validate_json(raw)
            except ValidationError:
                pass
    return _decode_carefully(raw)


def _decode_carefully(raw: bytes) -> Envelope[Any]:
    """``decode`` parsing first, then validating the document; unknown fields dropped."""
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
