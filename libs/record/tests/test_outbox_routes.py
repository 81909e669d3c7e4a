"""The outbox sends each event type only where ``routes.ROUTES`` says it travels: a
producer that puts one on another kind of topic is refused before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from yixian.contracts import ROUTES, MisroutedEvent, Topic, TopicNames
from yixian.contracts.examples import example_events
from yixian.record.outbox import Outbox

GUSHI, CHAOYANG = "411525", "110105"
TOPICS = TopicNames()
LOCAL = TOPICS.local(GUSHI)
PAIR = (TOPICS.pair(GUSHI, CHAOYANG), CHAOYANG)
EVENTS = {event.type: event for event in example_events()}


class _NoDatabase:
    """A connection the outbox must not use: refusals come before any write, and a
    deferred outbox writes only when flushed."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the outbox used its connection ({name})")


def _outbox() -> Outbox:
    return Outbox(_NoDatabase(), deferred=True)  # type: ignore[arg-type]


def _targets(topics: frozenset[Topic]) -> dict[str, Any]:
    return {
        "local_topic": LOCAL if Topic.LOCAL in topics else None,
        "pair": PAIR if Topic.PAIR in topics else None,
    }


@pytest.mark.parametrize("event_type", sorted(ROUTES))
async def test_every_type_is_queued_where_it_travels(event_type: str) -> None:
    outbox = _outbox()
    route = ROUTES[event_type]
    await outbox.add(EVENTS[event_type], **_targets(route.topics))
    assert len(outbox._queued) == len(route.topics)


@pytest.mark.parametrize(
    ("event_type", "wrong"),
    [
        ("yixian.activity.scheduled.v1", {"local_topic": None, "pair": PAIR}),
        ("yixian.activity.scheduled.v1", {"local_topic": LOCAL, "pair": PAIR}),
        ("yixian.link.heartbeat.v1", {"local_topic": LOCAL, "pair": None}),
        ("yixian.link.replica_returned.v1", {"local_topic": LOCAL, "pair": PAIR}),
        ("yixian.visitor.claim_asked.v1", {"local_topic": LOCAL, "pair": None}),
    ],
    ids=lambda v: v if isinstance(v, str) else "pair" if v["local_topic"] is None else "local",
)
async def test_an_event_on_a_topic_its_route_does_not_list_is_refused(
    event_type: str, wrong: dict[str, Any]
) -> None:
    outbox = _outbox()
    with pytest.raises(MisroutedEvent, match=event_type):
        await outbox.add(EVENTS[event_type], **wrong)
    assert outbox._queued == []
