"""Which pair topics this node's sync reads: exactly those of the partners it is linked
with, never a pattern (ADR 27)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from yixian.contracts import TopicNames

__all__ = ["incoming_topics", "resubscription"]


def incoming_topics(topics: TopicNames, node: str, partners: Iterable[str]) -> list[str]:
    """The pair topics ``partners`` send ``node`` on, sorted, each once."""
    return sorted({topics.pair(partner, node) for partner in partners if partner != node})


def resubscription(subscribed: Collection[str], wanted: Collection[str]) -> list[str] | None:
    """The topics to subscribe to when ``wanted`` differs from what the consumer reads now
    (sorted), else None: nothing to change."""
    if set(subscribed) == set(wanted):
        return None
    return sorted(set(wanted))
