"""Where a trace starts reading what sync may not have read, per partition."""

from __future__ import annotations

import pytest

from yixian.ops.trace import tail_start


@pytest.mark.parametrize(
    ("committed", "highest_known", "start"),
    [
        (120, 119, 120),  # caught up: nothing before the commit is unknown
        (120, 99, 100),  # read but not recorded (repeats, or a database from a backup)
        (100, 119, 100),  # recorded beyond the commit (applied, not yet committed)
        (None, 41, 42),  # no commit (it expired, or sync never committed)
        (None, None, 0),  # nothing known: from the partition's start
        (120, None, 0),  # a commit, but the database knows nothing: from the start
    ],
)
def test_the_tail_starts_at_the_lower_of_the_commit_and_what_the_database_knows(
    committed: int | None, highest_known: int | None, start: int
) -> None:
    assert tail_start(committed, highest_known) == start
