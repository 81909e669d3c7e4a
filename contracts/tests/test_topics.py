"""Topic names and record keys."""

from __future__ import annotations

import re

import pytest

from yixian.contracts import CATALOGUE, LINK_KEY, ROUTES, TopicNames, record_key
from yixian.contracts.examples import CLAIM, MOVEMENT, example_events


def test_pair_local_and_dead_letter_names() -> None:
    topics = TopicNames()
    assert topics.pair("411525", "110105") == "yixian.v1.411525.to.110105"
    assert topics.local("411525") == "yixian.v1.411525.local"
    assert topics.dead_letter("110105", "sync") == "yixian.v1.110105.dlq.sync"


def test_namespace_prefixes_every_name() -> None:
    topics = TopicNames("t1a2b")
    assert topics.pair("411525", "110105") == "t1a2b.yixian.v1.411525.to.110105"
    assert topics.local("110105") == "t1a2b.yixian.v1.110105.local"
    assert topics.parse_pair("t1a2b.yixian.v1.411525.to.110105") == ("411525", "110105")


def test_incoming_pattern_matches_only_topics_to_the_node() -> None:
    topics = TopicNames("ns")
    pattern = re.compile(topics.incoming_pattern("110105"))
    assert pattern.fullmatch(topics.pair("411525", "110105"))
    assert pattern.fullmatch(topics.pair("350300", "110105"))
    assert not pattern.fullmatch(topics.pair("110105", "411525"))
    assert not pattern.fullmatch(TopicNames("other").pair("411525", "110105"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.pair("411525", "411525"), "two different nodes"),
        (lambda t: t.pair("4115", "110105"), "source"),
        (lambda t: t.local("abcdef"), "node"),
        (lambda t: t.dead_letter("110105", "Sync Service"), "consumer"),
        (lambda t: t.parse_pair("yixian.v1.411525.local"), "not a pair topic"),
    ],
)
def test_bad_names_are_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(TopicNames())  # type: ignore[operator]


def test_bad_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="namespace"):
        TopicNames("Has Spaces")


def test_records_are_keyed_by_movement_or_link() -> None:
    events = {e.type: e for e in example_events()}
    assert record_key(events["yixian.movement.origin_group.v1"]) == str(MOVEMENT).encode()
    assert record_key(events["yixian.link.heartbeat.v1"]) == LINK_KEY


def test_every_event_type_has_a_route() -> None:
    assert set(ROUTES) == set(CATALOGUE)


def test_an_activity_is_keyed_by_its_id_and_a_claim_by_its_claim() -> None:
    events = {e.type: e for e in example_events()}
    activity = events["yixian.activity.scheduled.v1"]
    assert record_key(activity) == str(activity.data.activity_id).encode() != LINK_KEY
    asked = events["yixian.visitor.claim_asked.v1"]
    answered = events["yixian.visitor.claim_answered.v1"]
    assert record_key(asked) == record_key(answered) == str(CLAIM).encode()
    assert record_key(events["yixian.link.replica_returned.v1"]) == str(MOVEMENT).encode()


def test_channel_addresses_carry_their_parameters() -> None:
    assert TopicNames().addresses() == {
        "pair": "yixian.v1.{src}.to.{dst}",
        "local": "yixian.v1.{node}.local",
        "dead_letter": "yixian.v1.{node}.dlq.{consumer}",
    }
    assert TopicNames("ns").addresses()["local"] == "ns.yixian.v1.{node}.local"
