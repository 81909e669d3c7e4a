"""Sessions end at sign-out, when idle, when too old; a key's own oldest gives way to its
newest; a full table refuses a new one rather than end someone else's. Sign-in tries are
throttled per name."""

from __future__ import annotations

from uuid import uuid4

import pytest

from yixian.console.adapters.sessions import Sessions, SessionsFull
from yixian.console.adapters.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_while_used_and_ends_when_idle_or_old() -> None:
    clock = Clock()
    sessions = Sessions(idle=60, lifetime=300, clock=clock)
    token, session = sessions.start("yx_key", uuid4())
    assert sessions.find(token) is session
    assert session.key == "yx_key"
    assert sessions.find("another token") is None
    assert sessions.find(None) is None
    for _ in range(4):  # used every 50 s: alive, until the lifetime is over
        clock.now += 50
        assert sessions.find(token) is session
    clock.now += 101
    assert sessions.find(token) is None
    assert len(sessions) == 0

    idle, _ = sessions.start("yx_key", uuid4())
    clock.now += 61
    assert sessions.find(idle) is None


def test_sign_out_ends_it_and_a_key_keeps_only_its_newest_few() -> None:
    sessions = Sessions(idle=60, lifetime=300, per_key=2, clock=Clock())
    key, other = uuid4(), uuid4()
    theirs, _ = sessions.start("b", other)
    first, _ = sessions.start("a", key)
    second, _ = sessions.start("a", key)
    third, _ = sessions.start("a", key)
    assert sessions.find(first) is None  # the key's own oldest gave way
    assert sessions.find(second) is not None
    assert sessions.find(theirs) is not None  # never another key's
    assert sessions.end(third) is not None
    assert sessions.find(third) is None
    one, another = sessions.start("a", uuid4()), sessions.start("a", uuid4())
    assert one[0] != another[0]
    assert one[1].csrf != another[1].csrf


def test_a_full_table_refuses_a_new_session_once_the_expired_are_gone() -> None:
    clock = Clock()
    sessions = Sessions(idle=60, lifetime=300, capacity=2, clock=clock)
    first, _ = sessions.start("a", uuid4())
    clock.now += 30
    second, _ = sessions.start("b", uuid4())
    with pytest.raises(SessionsFull):
        sessions.start("c", uuid4())
    assert sessions.find(first) is not None  # nobody was signed out to make room
    assert sessions.find(second) is not None
    clock.now += 61  # both idle now: swept at the next sign-in
    third, _ = sessions.start("c", uuid4())
    assert sessions.find(third) is not None
    assert len(sessions) == 1


def test_a_throttle_lets_a_burst_through_then_one_try_every_so_often() -> None:
    clock = Clock()
    throttle = Throttle(burst=3, every=10, size=2, clock=clock)
    assert [throttle.take("a").allowed for _ in range(3)] == [True, True, True]
    refused = throttle.take("a")
    assert not refused.allowed
    assert refused.retry_after == 10
    assert refused.first_refusal
    again = throttle.take("a")
    assert not again.allowed
    assert not again.first_refusal  # one row for a flood, not one a try
    assert throttle.take("b").allowed  # another name has its own bucket
    clock.now += 10
    assert throttle.take("a").allowed
    assert not throttle.take("a").allowed
    assert throttle.take("a").first_refusal is False
    clock.now += 4
    assert throttle.take("a").retry_after == 6
    throttle.take("c")  # the least recently used name is forgotten: it starts full again
    throttle.take("d")
    assert [throttle.take("a").allowed for _ in range(3)] == [True, True, True]
