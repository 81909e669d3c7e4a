"""Work queues: where each movement lands for each side, on a given day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from yixian.contracts import (
    HostStatus,
    OriginStatus,
    TransferDecision,
    TransferReply,
    TransferRequest,
)
from yixian.contracts.examples import host_group, origin_group
from yixian.registry.domain import Deadlines, Queue, Side, classify

DEADLINES = Deadlines()
DUE = date(2026, 3, 22)  # the example's check-in deadline
REQUESTED = datetime(2026, 4, 1, tzinfo=UTC)


def _transfer(decision: TransferDecision | None) -> tuple[object, object]:
    request = TransferRequest(requested_at=REQUESTED, reply_due_on=date(2026, 5, 1))
    origin = origin_group(version=2).model_copy(
        update={"status": OriginStatus.TRANSFER_REQUESTED, "transfer": request}
    )
    host = host_group()
    if decision is not None:
        reply = TransferReply(
            decision=decision,
            request_at=REQUESTED,
            replied_at=REQUESTED + timedelta(days=1),
            reason="no" if decision is TransferDecision.REJECTED else None,
        )
        host = host.model_copy(update={"transfer_reply": reply})
    return origin, host


@pytest.mark.parametrize(
    ("side", "today", "expected"),
    [
        (Side.ORIGIN, date(2026, 3, 1), (Queue.WAITING, "waiting for the host")),
        (Side.ORIGIN, date(2026, 3, 18), (Queue.UPCOMING, "check-in due")),
        (Side.ORIGIN, date(2026, 3, 23), (Queue.OVERDUE, "check-in overdue")),
        (Side.HOST, date(2026, 3, 1), (Queue.TO_DO, "member expected")),
        (Side.HOST, date(2026, 3, 23), (Queue.OVERDUE, "check-in overdue")),
    ],
)
def test_awaiting_check_in(side: Side, today: date, expected: tuple[Queue, str]) -> None:
    entry = classify(side, origin_group(), None, today, DEADLINES)
    assert entry is not None
    assert (entry.queue, entry.reason[: len(expected[1])]) == expected


@pytest.mark.parametrize(
    ("decision", "side", "today", "queue", "reason"),
    [
        (None, Side.ORIGIN, date(2026, 4, 10), Queue.WAITING, "waiting for the host's transfer"),
        (None, Side.HOST, date(2026, 4, 10), Queue.TO_DO, "transfer requested"),
        (None, Side.ORIGIN, date(2026, 5, 2), Queue.OVERDUE, "transfer reply overdue"),
        (None, Side.HOST, date(2026, 5, 2), Queue.OVERDUE, "transfer reply overdue"),
        (TransferDecision.ACCEPTED, Side.ORIGIN, date(2026, 4, 10), Queue.TO_DO, "host accepted"),
        (
            TransferDecision.ACCEPTED,
            Side.HOST,
            date(2026, 4, 10),
            Queue.WAITING,
            "waiting for the origin",
        ),
        (TransferDecision.REJECTED, Side.ORIGIN, date(2026, 4, 10), Queue.TO_DO, "host rejected"),
    ],
)
def test_transfer(
    decision: TransferDecision | None, side: Side, today: date, queue: Queue, reason: str
) -> None:
    origin, host = _transfer(decision)
    entry = classify(side, origin, host, today, DEADLINES)  # type: ignore[arg-type]
    assert entry is not None
    assert entry.queue is queue
    assert entry.reason.startswith(reason)


def test_lost_contact_escalates_to_suspension_then_removal() -> None:
    since = date(2026, 4, 1)
    host = host_group(version=2).model_copy(
        update={"status": HostStatus.LOST_CONTACT, "lost_contact_since": since}
    )
    origin = origin_group()
    reasons = [
        classify(Side.ORIGIN, origin, host, day, DEADLINES)
        for day in (since, since + timedelta(days=183), since + timedelta(days=183 + 730))
    ]
    assert [r.queue if r else None for r in reasons] == [Queue.WAITING, Queue.TO_DO, Queue.TO_DO]
    assert reasons[1] is not None
    assert "suspension" in reasons[1].reason
    assert reasons[2] is not None
    assert "removal" in reasons[2].reason


def test_active_and_closed_movements_need_nothing() -> None:
    assert classify(Side.HOST, origin_group(), host_group(), date(2026, 4, 1), DEADLINES) is None
    returned = origin_group(version=2, status=OriginStatus.RETURNED)
    assert classify(Side.ORIGIN, returned, host_group(), date(2026, 4, 1), DEADLINES) is None


def test_expected_return_is_upcoming_for_the_origin() -> None:
    entry = classify(Side.ORIGIN, origin_group(), host_group(), date(2027, 1, 28), DEADLINES)
    assert entry is not None
    assert (entry.queue, entry.reason) == (Queue.UPCOMING, "expected back")


def test_deadlines_are_configurable() -> None:
    strict = Deadlines(check_in_days=10)
    assert strict.check_in_due(date(2026, 2, 20)) == date(2026, 3, 2)
    assert strict.transfer_reply_due(date(2026, 4, 1)) == date(2026, 5, 1)


@pytest.mark.parametrize(
    "update",
    [
        {"lost_contact_since": date(9999, 12, 31)},
        {"report_received_on": date(9999, 12, 31)},
        {"checked_in_at": datetime(9999, 12, 31, 20, tzinfo=UTC)},
    ],
    ids=["lost contact", "report received", "checked in"],
)
def test_a_partners_dates_at_the_end_of_time_do_not_break_the_queues(
    update: dict[str, object],
) -> None:
    """A partner's group may carry any date; classifying it must not raise (one movement
    would take every queue of the node down with it)."""
    host = host_group(1).model_copy(update=update)
    for side in Side:
        classify(side, origin_group(1), host, date(2026, 6, 1), Deadlines())
