"""A cluster asked about consumer groups for the first time answers "coordinator not
available" while it creates its offsets topic: the facade waits for the coordinator."""

from __future__ import annotations

from typing import Any

import pytest

from yixian.runtime import kafka
from yixian.runtime.kafka import TopicPartition, errors


class _Admin:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.asked = 0

    async def list_consumer_group_offsets(self, group: str, partitions: Any) -> dict[Any, Any]:
        self.asked += 1
        if self.asked <= self.refusals:
            raise errors.GroupCoordinatorNotAvailableError()
        return {TopicPartition("t", 0): group}


async def test_a_coordinator_being_elected_is_waited_for() -> None:
    admin = _Admin(refusals=3)
    found = await kafka._group_offsets(admin, "g", [TopicPartition("t", 0)])  # type: ignore[arg-type]
    assert found == {TopicPartition("t", 0): "g"}
    assert admin.asked == 4


async def test_a_coordinator_that_never_comes_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "TIMEOUT", 0.3)
    with pytest.raises(errors.GroupCoordinatorNotAvailableError):
        await kafka._group_offsets(_Admin(refusals=1000), "g", [TopicPartition("t", 0)])  # type: ignore[arg-type]
