"""Where each event type travels, who sends it, and its Kafka record key: one table.

:data:`ROUTES` is read by :func:`yixian.contracts.record_key` (the key a producer gives a
record), by the published JSON Schemas (``pairseq`` is required of a type that travels
only on pair topics) and by the AsyncAPI document (which channel carries which message,
with which key).

Keys keep what must stay in order on one partition: a movement's events share the
movement id, a visitor claim's its claim id, an activity's its activity id; events
about the link itself (heartbeats, digests, requests) share the key ``link`` (ADR 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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
from .movement import ActivityScheduled, HostGroupChanged, OriginGroupChanged, ParticipationRecorded
from .visitor import VisitorClaimAnswered, VisitorClaimAsked

LINK_KEY = b"link"
"""The record key of every event about the link itself."""


class Topic(StrEnum):
    """The kinds of topic an event travels on (``yixian.contracts.TopicNames``)."""

    PAIR = "pair"
    """``yixian.v1.<source>.to.<destination>``: to one partner; numbered (``pairseq``)."""
    LOCAL = "local"
    """``yixian.v1.<node>.local``: every change of the node's records, for its notify
    service and its auditors."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where one event type travels and how its records are keyed."""

    topics: frozenset[Topic]
    key: str | None
    """Dotted path, inside ``data``, of the id the record is keyed by; None: ``link``."""
    key_meaning: str
    sender: str
    """Who sends it, in a partner's words."""

    @property
    def pair_only(self) -> bool:
        """Travels only on pair topics: every record of it carries ``pairseq``."""
        return self.topics == {Topic.PAIR}

    def key_of(self, data: Any) -> bytes:
        """The record key of an event whose payload is ``data``."""
        if self.key is None:
            return LINK_KEY
        value = data
        for name in self.key.split("."):
            value = getattr(value, name)
        return str(value).encode()


PAIR = frozenset({Topic.PAIR})
LOCAL = frozenset({Topic.LOCAL})
BOTH = PAIR | LOCAL
_MOVEMENT = "the movement id (the event's `correlationid`)"
_LINK = "the literal `link`: an event about the link itself"

ROUTES: dict[str, Route] = {
    OriginGroupChanged.EVENT_TYPE: Route(
        BOTH,
        "group.movement_id",
        _MOVEMENT,
        "the movement's origin node; on a local topic, also a host node announcing the"
        " origin group it applied",
    ),
    HostGroupChanged.EVENT_TYPE: Route(
        BOTH,
        "group.movement_id",
        _MOVEMENT,
        "the movement's host node; on a local topic, also the origin node announcing the"
        " host group it applied",
    ),
    ParticipationRecorded.EVENT_TYPE: Route(
        BOTH,
        "movement_id",
        _MOVEMENT,
        "the movement's host node; on a local topic, also the origin node announcing the"
        " attendance it applied",
    ),
    ActivityScheduled.EVENT_TYPE: Route(
        LOCAL,
        "activity_id",
        "the activity id (`data.activity_id`)",
        "the node whose organization scheduled the activity; never sent to partners",
    ),
    LinkHeartbeat.EVENT_TYPE: Route(PAIR, None, _LINK, "either node of a link, when idle"),
    LinkDigest.EVENT_TYPE: Route(PAIR, None, _LINK, "either node of a link (anti-entropy)"),
    LinkDigestEntries.EVENT_TYPE: Route(
        PAIR, None, _LINK, "either node of a link, answering a digest that differs"
    ),
    ReplayRequested.EVENT_TYPE: Route(PAIR, None, _LINK, "either node of a link, missing numbers"),
    ResendRequested.EVENT_TYPE: Route(
        PAIR, None, _LINK, "either node of a link, wanting the owner's copy of groups"
    ),
    LinkStatusRequested.EVENT_TYPE: Route(PAIR, None, _LINK, "either node of a link"),
    LinkStatusReported.EVENT_TYPE: Route(
        PAIR, None, _LINK, "either node of a link, answering a status request"
    ),
    ReplicaReturned.EVENT_TYPE: Route(
        PAIR,
        "movement_id",
        _MOVEMENT,
        "either node of a link, giving back a copy of a group its owner lost",
    ),
    VisitorClaimAsked.EVENT_TYPE: Route(
        PAIR,
        "claim_id",
        "the claim id (`data.claim_id`, also the event's `correlationid`)",
        "the host node that met the visitor, to the claimed origin node",
    ),
    VisitorClaimAnswered.EVENT_TYPE: Route(
        PAIR,
        "claim_id",
        "the claim id (`data.claim_id`, also the event's `correlationid`)",
        "the claimed origin node, to the host node that asked",
    ),
}
"""Event type → where it travels, its key, its sender."""


class MisroutedEvent(ValueError):
    """An event about to be sent on a kind of topic its route does not list."""


def require_route(event_type: str, topic: Topic) -> None:
    """Refuse (:class:`MisroutedEvent`) to send ``event_type`` on a ``topic`` kind of topic
    unless :data:`ROUTES` lists it there: the published contract says where each type
    travels, and the outbox holds every producer to it."""
    route = ROUTES.get(event_type)
    if route is None:
        raise MisroutedEvent(f"{event_type} has no route (routes.ROUTES): it is sent nowhere")
    if topic not in route.topics:
        where = " and ".join(sorted(route.topics))
        raise MisroutedEvent(
            f"{event_type} travels on {where} topics only (routes.ROUTES), not on a {topic} topic"
        )
