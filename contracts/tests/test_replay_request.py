"""A replay request names exactly the numbers it wants, within its from..to bounds."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError

from yixian.contracts import ReplayRequested, SequenceRange


def _request(first: int, last: int | None, *runs: tuple[int, int]) -> ReplayRequested:
    return ReplayRequested(
        request_id=uuid4(),
        from_sequence=first,
        to_sequence=last,
        reason="gap",
        ranges=tuple(SequenceRange(first=f, last=la) for f, la in runs) or None,
    )


def test_runs_are_the_ranges_or_the_bounds() -> None:
    assert _request(3, 9, (3, 4), (9, 9)).runs(last_sent=20) == [(3, 4), (9, 9)]
    assert _request(3, 9).runs(last_sent=20) == [(3, 9)]
    assert _request(3, None).runs(last_sent=20) == [(3, 20)]


@pytest.mark.parametrize(
    ("first", "last", "runs"),
    [
        (3, 9, ((5, 4),)),  # a run backwards
        (3, 9, ((2, 4),)),  # before from_sequence
        (3, 9, ((3, 4), (4, 9))),  # overlapping
        (3, 9, ((3, 4), (8, 10))),  # beyond to_sequence
        (3, None, ((3, 4),)),  # ranges with an open end
    ],
)
def test_ranges_out_of_bounds_or_order_are_refused(
    first: int, last: int | None, runs: tuple[tuple[int, int], ...]
) -> None:
    with pytest.raises(ValidationError):
        _request(first, last, *runs)


def test_a_one_run_request_leaves_ranges_out_of_the_wire_form() -> None:
    assert b"ranges" not in _request(3, 9).model_dump_json(exclude_none=True).encode()
