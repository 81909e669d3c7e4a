"""Sessions end at sign-out, when idle, when too old, and give way when too many."""

from __future__ import annotations

from uuid import uuid4

from yixian.console.adapters.sessions import Sessions


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


def test_sign_out_ends_it_and_the_oldest_give_way() -> None:
    sessions = Sessions(idle=60, lifetime=300, capacity=2, clock=Clock())
    first, _ = sessions.start("a", uuid4())
    second, _ = sessions.start("b", uuid4())
    third, _ = sessions.start("c", uuid4())
    assert sessions.find(first) is None
    assert sessions.find(second) is not None
    assert sessions.end(third) is not None
    assert sessions.find(third) is None
    one, other = sessions.start("a", uuid4()), sessions.start("a", uuid4())
    assert one[0] != other[0]
    assert one[1].csrf != other[1].csrf
