"""The link keeper's and the replay answerer's rules, as the service and the simulation
both use them (yixian.sync.domain.link)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from yixian.sync.domain import Refused, SequenceTracker
from yixian.sync.domain.link import (
    LinkPolicy,
    answer_replay,
    check_claim,
    count_numbers,
    plan_replay,
    replay_needs_digest,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POLICY = LinkPolicy()


def gap_at(now: datetime) -> SequenceTracker:
    """Numbers 2..3 and 5 missing since T0."""
    tracker = SequenceTracker()
    for seq in (1, 4, 6):
        tracker.receive(seq, T0)
    tracker.heartbeat(6, now)
    return tracker


def test_no_request_within_the_grace_and_attempts_forgotten_when_whole() -> None:
    tracker = gap_at(T0)
    assert (
        plan_replay(tracker, T0 + timedelta(seconds=4), POLICY, attempts=0, asked_at=None).runs
        == []
    )
    whole = SequenceTracker()
    whole.receive(1, T0)
    plan = plan_replay(whole, T0 + timedelta(seconds=60), POLICY, attempts=5, asked_at=T0)
    assert (plan.runs, plan.attempts, plan.with_digest) == ([], 0, False)


def test_requests_name_exactly_the_missing_numbers_and_back_off() -> None:
    now = T0 + timedelta(seconds=6)
    tracker = gap_at(now)
    attempts, asked_at, asked = 0, None, []
    for second in range(6, 400):
        now = T0 + timedelta(seconds=second)
        tracker.heartbeat(6, now)  # the partner is alive
        plan = plan_replay(tracker, now, POLICY, attempts=attempts, asked_at=asked_at)
        if plan.runs:
            assert plan.runs == [(2, 3), (5, 5)]
            asked.append((second, plan.with_digest))
            asked_at = now
        attempts = plan.attempts
    gaps = [b[0] - a[0] for a, b in pairwise(asked)]
    assert gaps[:5] == [10, 20, 40, 80, 120]  # twice as long each time, up to the maximum
    assert set(gaps[4:]) == {120}
    assert [digest for _, digest in asked[:6]] == [False, False, True, False, False, True]


def test_the_sender_answers_each_number_once_per_interval() -> None:
    assert answer_replay([(1, 10)], []) == [(1, 10)]
    assert answer_replay([(1, 10)], [(3, 4), (8, 12)]) == [(1, 2), (5, 7)]
    assert answer_replay([(1, 10)], [(1, 10)]) == []
    assert count_numbers([(1, 2), (5, 7)]) == 5
    assert not replay_needs_digest([(1, 2), (5, 7)], sendable=5)
    assert replay_needs_digest([(1, 2), (5, 7)], sendable=4)


def test_claims_beyond_the_claiming_event_are_refused() -> None:
    check_claim("heartbeat", 9, 10)
    for claimed in (10, 2**62):
        with pytest.raises(Refused, match="not below its own pair number 10"):
            check_claim("heartbeat", claimed, 10)
    with pytest.raises(Refused):
        check_claim("digest", 0, None)
    assert POLICY.within_reach(100_050, 50)
    assert not POLICY.within_reach(100_051, 50)


def test_heartbeats_and_digests_fall_due_on_idle_links() -> None:
    assert POLICY.heartbeat_due(None, T0)
    assert not POLICY.heartbeat_due(T0, T0 + timedelta(seconds=9))
    assert POLICY.heartbeat_due(T0, T0 + timedelta(seconds=10))
    assert POLICY.digest_due(None, T0)
    assert not POLICY.digest_due(T0, T0 + timedelta(minutes=4))
    assert POLICY.digest_due(T0, T0 + timedelta(minutes=5))
