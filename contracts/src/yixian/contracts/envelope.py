"""The CloudEvents 1.0 envelope every Yixian event travels in (structured JSON mode).

Extension attributes:

- ``traceparent``: W3C trace context of the change that produced the event;
- ``correlationid``: the movement (or visitor claim) the event concerns, when it concerns one;
- ``pairseq``: the per-pair sequence number on a pair topic, so the receiver sees a gap at once;
- ``pairepoch``: the link epoch that number belongs to (ADR 16): microseconds since 1970
  when the sender's numbering started, so a rebuilt sender's new numbers never name its
  old events; absent: epoch 0, numbers from before epochs.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from ._base import ContractModel, JurisdictionCode, UtcDateTime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
SOURCE_PREFIX = "urn:yixian:node:"
SCHEMA_PREFIX = "urn:yixian:schema:"

TRACEPARENT_PATTERN = r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
"""A W3C traceparent of version 00, trace and parent ids not all zeros (also a JSON Schema
and ECMA-262 pattern: the published schemas carry it)."""
_TRACEPARENT = re.compile(TRACEPARENT_PATTERN)
_SOURCE = re.compile(r"urn:yixian:node:([0-9]{6})")
# Matched whole (``fullmatch``), as a JSON Schema validator matches the published patterns:
# Python's ``$`` also matches before a final newline, and its ``\d`` any Unicode digit.


class Payload(Protocol):
    EVENT_TYPE: ClassVar[str]


P = TypeVar("P", bound=ContractModel)


def node_source(node: str) -> str:
    """The CloudEvents ``source`` of events produced by a node."""
    return f"{SOURCE_PREFIX}{node}"


def source_node(source: str) -> str:
    """The node code inside a ``source`` attribute."""
    match = _SOURCE.fullmatch(source)
    if match is None:
        raise ValueError(f"source {source!r} is not of the form {SOURCE_PREFIX}<6-digit code>")
    return match.group(1)


def schema_uri(event_type: str) -> str:
    """The ``dataschema`` of an event type; also the ``$id`` of its published JSON Schema."""
    return f"{SCHEMA_PREFIX}{event_type}"


def new_traceparent() -> str:
    """A fresh W3C traceparent for a change that does not continue an existing trace."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id(traceparent: str) -> str:
    """The 32-hex trace id inside a traceparent."""
    return traceparent.split("-")[1]


def _as_producers_send(schema: dict[str, Any]) -> None:
    """The published schema states what every producer sends: ``specversion`` always
    (CloudEvents requires it). Reading stays tolerant (ADR 3): the model takes an event
    without it as 1.0."""
    schema["properties"]["specversion"].pop("default", None)
    schema["required"] = ["specversion", *schema["required"]]


class Envelope(ContractModel, Generic[P]):
    """One event: the CloudEvents context attributes around a versioned payload."""

    model_config = ConfigDict(json_schema_extra=_as_producers_send, str_strip_whitespace=False)
    """Attributes are read as sent, unstripped: what the published schemas refuse (a
    padded ``traceparent``), the model refuses too."""

    specversion: Literal["1.0"] = "1.0"
    id: UUID = Field(description="Unique per source; the receiver's inbox deduplicates on it.")
    source: str = Field(pattern=r"^urn:yixian:node:\d{6}$", description="The producing node.")
    type: str = Field(pattern=r"^yixian\.[a-z_]+\.[a-z_]+\.v\d+$")
    subject: str | None = Field(default=None, max_length=200)
    time: UtcDateTime
    dataschema: str = Field(pattern=r"^urn:yixian:schema:")
    datacontenttype: Literal["application/json"] = "application/json"
    traceparent: str = Field(
        description="W3C trace context, version 00.",
        json_schema_extra={"pattern": TRACEPARENT_PATTERN},
    )
    correlationid: UUID | None = Field(
        default=None, description="The movement (or visitor claim) this event concerns, if any."
    )
    pairseq: int | None = Field(
        default=None, ge=1, description="Per-pair sequence number; set on pair topics only."
    )
    pairepoch: int | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="The link epoch of pairseq (microseconds since 1970 when the sender's"
        " numbering started); absent: epoch 0.",
    )
    data: P

    @field_validator("traceparent")
    @classmethod
    def _valid_traceparent(cls, value: str) -> str:
        if not _TRACEPARENT.fullmatch(value):
            raise ValueError("must be a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>, not zeros")
        return value

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: str) -> str:
        source_node(value)  # its digits ASCII, as the schema's pattern reads them
        return value

    @model_validator(mode="after")
    def _type_matches_data(self) -> Envelope[P]:
        expected = type(self.data).EVENT_TYPE  # type: ignore[attr-defined]
        if self.type != expected:
            raise ValueError(
                f"type {self.type!r} does not match the payload, expected {expected!r}"
            )
        if self.dataschema != schema_uri(self.type):
            raise ValueError(f"dataschema must be {schema_uri(self.type)!r}")
        return self

    @property
    def source_node(self) -> str:
        return source_node(self.source)

    @property
    def trace_id(self) -> str:
        return trace_id(self.traceparent)

    def with_pairseq(self, pairseq: int, pairepoch: int | None = None) -> Envelope[P]:
        """The same event numbered for one pair topic (in link epoch ``pairepoch``)."""
        return self.model_copy(update={"pairseq": pairseq, "pairepoch": pairepoch or None})

    @property
    def epoch(self) -> int:
        """The link epoch of ``pairseq``: 0 for an event numbered before epochs."""
        return self.pairepoch or 0

    def encode(self) -> bytes:
        """The wire form: compact JSON, absent optionals left out."""
        return self.model_dump_json(exclude_none=True).encode()


_PAIRSEQ = b'"pairseq":'


def numbered(encoded: bytes, pairseq: int, pairepoch: int = 0) -> bytes:
    """An encoded event numbered for its pair topic, without decoding it: the same bytes
    as ``decode(encoded).with_pairseq(pairseq, pairepoch).encode()`` up to the members'
    order (epoch 0 is left out, as before epochs).

    An event already numbered is returned as it is (a number is given once). The check is
    sound on encoded JSON: inside a string, a quote is escaped, so ``"pairseq":`` can only
    be a member name.
    """
    if _PAIRSEQ in encoded:
        return encoded
    body = encoded.rstrip()
    if not body.endswith(b"}"):
        raise MalformedEvent("an encoded event is a JSON object")
    epoch = b',"pairepoch":' + str(pairepoch).encode() if pairepoch else b""
    return body[:-1] + b"," + _PAIRSEQ + str(pairseq).encode() + epoch + b"}"


def make_event(
    data: P,
    *,
    node: JurisdictionCode,
    time: datetime,
    traceparent: str | None = None,
    subject: str | None = None,
    correlationid: UUID | None = None,
    event_id: UUID | None = None,
) -> Envelope[P]:
    """Wrap a payload in a new envelope produced by ``node``."""
    event_type: str = type(data).EVENT_TYPE  # type: ignore[attr-defined]
    model: type[Envelope[P]] = parametrized(type(data))
    return model(
        id=event_id or uuid4(),
        source=node_source(node),
        type=event_type,
        subject=subject,
        time=time,
        dataschema=schema_uri(event_type),
        traceparent=traceparent or new_traceparent(),
        correlationid=correlationid,
        data=data,
    )


def parametrized(payload_type: type[P]) -> type[Envelope[P]]:
    """The envelope model for one payload type (so it validates and dumps that payload)."""
    generic: Any = Envelope
    model: type[Envelope[P]] = generic[payload_type]
    return model


class UnknownEventType(ValueError):
    """The envelope is well formed but its type is not in this version's catalogue."""

    def __init__(self, event_type: str, envelope: dict[str, Any]) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type
        self.envelope = envelope


class MalformedEvent(ValueError):
    """The bytes are not a valid event; ``errors`` name each offending field."""

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []


def decode_raw(raw: bytes) -> dict[str, Any]:
    """Parse the JSON of an event without validating it."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedEvent("an event must be a JSON object")
    return document


def describe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as plain dicts naming the field path and the reason."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(root)", "reason": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
