"""Topic names and record keys, in one place.

- ``yixian.v1.<source>.to.<destination>``: a pair topic, written only by ``source`` and
  read only by ``destination``;
- ``yixian.v1.<node>.local``: every change of a node's records, for its own notify
  service and its auditors;
- ``yixian.v1.<node>.dlq.<consumer>``: what one consumer of a node could not accept.

A namespace (e.g. one per test, or per environment sharing a cluster) prefixes every name.
Records are keyed by movement id so that one movement's events stay in order; a visitor
claim's by its claim id, an activity's by its activity id; events about the link itself
share the key ``link`` (``routes.ROUTES``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ._base import JurisdictionCode
from .envelope import Envelope
from .routes import ROUTES

CONTRACT_MAJOR = "v1"
CONTRACT_RELEASE = "1.1.0"
"""The release the current contract is, or will be published as (``contracts/schemas/
published/<release>``): the AsyncAPI document's version."""
DEAD_LETTER_TYPE = "yixian.dead_letter"
"""The ``ce_type`` header of a dead-letter record (its value is not a CloudEvent)."""
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
"""The ``content-type`` header of every event: CloudEvents' Kafka binding, structured mode."""
DEAD_LETTER_CONTENT_TYPE = "application/json"
"""The ``content-type`` header of a dead letter: its value is plain JSON, not a CloudEvent."""

_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CONSUMER = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_CODE = re.compile(r"^\d{6}$")

_PAIR = "{src}.to.{dst}"
_LOCAL = "{node}.local"
_DEAD_LETTER = "{node}.dlq.{consumer}"


def _code(value: str, what: str) -> str:
    if not _CODE.match(value):
        raise ValueError(f"{what} must be a 6-digit division code, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topic names of one namespace; the default namespace is empty."""

    namespace: str = ""

    def __post_init__(self) -> None:
        if self.namespace and not _NAMESPACE.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r}: lowercase letters, digits, - and _")

    @property
    def _prefix(self) -> str:
        base = f"yixian.{CONTRACT_MAJOR}"
        return f"{self.namespace}.{base}" if self.namespace else base

    def pair(self, source: JurisdictionCode, destination: JurisdictionCode) -> str:
        """The topic ``source`` writes and ``destination`` reads."""
        _code(source, "source")
        _code(destination, "destination")
        if source == destination:
            raise ValueError("a pair topic links two different nodes")
        return self._name(_PAIR, src=source, dst=destination)

    def local(self, node: JurisdictionCode) -> str:
        """The node's own stream of every change of its records."""
        return self._name(_LOCAL, node=_code(node, "node"))

    def dead_letter(self, node: JurisdictionCode, consumer: str) -> str:
        """Where a consumer of ``node`` puts what it could not accept, with the reason."""
        if not _CONSUMER.match(consumer):
            raise ValueError(f"consumer {consumer!r}: lowercase letters, digits, - and _")
        return self._name(_DEAD_LETTER, node=_code(node, "node"), consumer=consumer)

    def addresses(self) -> dict[str, str]:
        """Each kind of topic with its parameters in braces, as an AsyncAPI channel
        address: ``pair`` (``{src}``, ``{dst}``), ``local`` (``{node}``), ``dead_letter``
        (``{node}``, ``{consumer}``)."""
        return {
            "pair": self._name(_PAIR),
            "local": self._name(_LOCAL),
            "dead_letter": self._name(_DEAD_LETTER),
        }

    def _name(self, template: str, **parameters: str) -> str:
        """``template`` under this namespace's prefix; parameters not given stay in braces."""
        for name, value in parameters.items():
            template = template.replace("{" + name + "}", value)
        return f"{self._prefix}.{template}"

    def parse_pair(self, topic: str) -> tuple[str, str]:
        """(source, destination) of a pair topic name of this namespace."""
        match = re.fullmatch(re.escape(self._prefix) + r"\.(\d{6})\.to\.(\d{6})", topic)
        if match is None:
            raise ValueError(f"{topic!r} is not a pair topic of namespace {self.namespace!r}")
        return match.group(1), match.group(2)

    def incoming_pattern(self, node: JurisdictionCode) -> str:
        """A regular expression matching every pair topic addressed to ``node``."""
        # no braces: subscribers (FastStream) read {...} in a pattern as a path parameter
        return re.escape(self._prefix) + r"\.[0-9]+\.to\." + _code(node, "node") + "$"


def record_key(event: Envelope[Any]) -> bytes:
    """The Kafka key of an event: its movement id, claim id or activity id, or ``link``
    for an event about the link itself (``routes.ROUTES``)."""
    return ROUTES[event.type].key_of(event.data)


def record_headers(record_type: str, trace_id: str, content_type: str) -> list[tuple[str, bytes]]:
    """The headers of every record a node publishes: the content type of its value
    (:data:`STRUCTURED_CONTENT_TYPE` for an event, :data:`DEAD_LETTER_CONTENT_TYPE` for a
    dead letter), ``ce_type`` (the record's type, to route or skip a record without
    parsing it) and ``trace_id``."""
    return [
        ("content-type", content_type.encode()),
        ("ce_type", record_type.encode()),
        ("trace_id", trace_id.encode()),
    ]


def movement_key(movement_id: UUID) -> bytes:
    return str(movement_id).encode()
