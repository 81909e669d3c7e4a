"""Link health from the pair sequence: reordering, gaps, heartbeats, silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from yixian.contracts import LinkState
from yixian.sync.domain import SequenceTracker, subtract_runs
from yixian.sync.service_layer.links import LinkPolicy

T0 = datetime(2026, 3, 1, tzinfo=UTC)
GRACE = timedelta(seconds=5)
SILENCE = timedelta(seconds=35)


def state(tracker: SequenceTracker, at: datetime) -> LinkState:
    return tracker.state(at, grace=GRACE, silence=SILENCE)


def test_in_order_arrivals_are_healthy() -> None:
    tracker = SequenceTracker()
    for seq in range(1, 6):
        assert tracker.receive(seq, T0)
    assert tracker.contiguous == 5
    assert state(tracker, T0) is LinkState.HEALTHY
    assert tracker.lag() == 0


def test_duplicates_are_recognised() -> None:
    tracker = SequenceTracker()
    tracker.receive(1, T0)
    tracker.receive(3, T0)
    assert not tracker.receive(1, T0)
    assert not tracker.receive(3, T0)


def test_reordering_across_partitions_is_lagging_then_heals() -> None:
    tracker = SequenceTracker()
    for seq in (1, 2, 4, 5):
        tracker.receive(seq, T0)
    assert tracker.missing() == [3]
    assert state(tracker, T0 + timedelta(seconds=1)) is LinkState.LAGGING
    tracker.receive(3, T0 + timedelta(seconds=2))
    assert tracker.contiguous == 5
    assert tracker.ahead == set()
    assert state(tracker, T0 + timedelta(seconds=2)) is LinkState.HEALTHY


def test_a_number_missing_past_the_grace_is_a_gap() -> None:
    tracker = SequenceTracker()
    for seq in (1, 2, 4):
        tracker.receive(seq, T0)
    assert state(tracker, T0 + GRACE + timedelta(seconds=1)) is LinkState.GAP
    assert tracker.lag() == 1


def test_a_heartbeat_reveals_a_lost_tail() -> None:
    tracker = SequenceTracker()
    tracker.receive(1, T0)
    tracker.heartbeat(4, T0)  # the partner sent 2, 3 and 4 too
    assert tracker.missing() == [2, 3, 4]
    assert state(tracker, T0 + GRACE * 2) is LinkState.GAP


def test_silence_after_no_events_nor_heartbeats() -> None:
    tracker = SequenceTracker()
    assert state(tracker, T0) is LinkState.SILENT
    tracker.heartbeat(0, T0)
    assert state(tracker, T0 + timedelta(seconds=30)) is LinkState.HEALTHY
    assert state(tracker, T0 + SILENCE + timedelta(seconds=1)) is LinkState.SILENT


def test_a_matching_digest_settles_numbers_lost_for_good() -> None:
    tracker = SequenceTracker()
    for seq in (1, 2, 5, 6):
        tracker.receive(seq, T0)
    tracker.settle_up_to(4, T0)
    assert tracker.contiguous == 6
    assert tracker.missing() == []


def test_missing_numbers_are_named_exactly_as_runs() -> None:
    tracker = SequenceTracker()
    for seq in (1, 2, 5, 6, 9):
        tracker.receive(seq, T0)
    tracker.heartbeat(12, T0)
    assert tracker.missing_runs(100) == [(3, 4), (7, 8), (10, 12)]
    assert tracker.missing_runs(2) == [(3, 4), (7, 8)]
    tracker.settle_up_to(12, T0)
    assert tracker.missing_runs(100) == []


def test_runs_answered_lately_are_taken_out_of_a_request() -> None:
    assert subtract_runs([(1, 10)], []) == [(1, 10)]
    assert subtract_runs([(1, 10)], [(3, 4), (8, 12)]) == [(1, 2), (5, 7)]
    assert subtract_runs([(1, 3), (7, 9)], [(1, 9)]) == []
    assert subtract_runs([(5, 6)], [(1, 2), (9, 9)]) == [(5, 6)]


def test_replay_requests_back_off_to_a_cap() -> None:
    policy = LinkPolicy(gap_grace=timedelta(seconds=5), replay_backoff_max=timedelta(seconds=60))
    waits = [policy.replay_wait(tries).total_seconds() for tries in range(7)]
    assert waits == [0, 10, 20, 40, 60, 60, 60]
    assert policy.replay_wait(10_000) == timedelta(seconds=60)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("receive"), st.integers(1, 60)),
            st.tuples(st.just("settle"), st.integers(0, 60)),
            st.tuples(st.just("heartbeat"), st.integers(0, 60)),
        ),
        max_size=80,
    ),
    st.sets(st.integers(1, 60), max_size=10),
)
def test_the_highest_number_seen_is_kept_as_numbers_arrive(
    steps: list[tuple[str, int]], ahead: set[int]
) -> None:
    """``max_seen`` is kept as numbers arrive (a gap before 100,000 numbers made taking the
    largest of them at each arrival quadratic); it is what the numbers say, whatever came."""
    tracker = SequenceTracker(contiguous=0, ahead=set(ahead))
    for kind, number in steps:
        if kind == "receive":
            tracker.receive(number, T0)
        elif kind == "settle":
            tracker.settle_up_to(number, T0)
        else:
            tracker.heartbeat(number, T0)
        assert tracker.max_seen == max([tracker.contiguous, *tracker.ahead])
        assert tracker.expected_up_to == max(tracker.max_seen, tracker.partner_sent)
