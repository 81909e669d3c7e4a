"""notify keys its rules on the step an event names; only an event that names none has its
step inferred, in one place (``step_of``)."""

from __future__ import annotations

from datetime import timedelta

from yixian.contracts import (
    HostStatus,
    MovementStep,
    OriginStatus,
    TransferDecision,
    TransferReply,
    TransferRequest,
)
from yixian.contracts.examples import AT, host_group, origin_group
from yixian.notify.domain.rules import rules_for, step_of


def test_a_named_step_wins_over_whatever_the_statuses_suggest() -> None:
    # the host answered a transfer: no status changed, the event says what happened
    group = host_group(3)
    assert step_of("transfer_accepted", "checked_in", group) is MovementStep.TRANSFER_ACCEPTED
    # a participation changes no status either, and tells nobody
    assert step_of("participation_recorded", "checked_in", group) is (
        MovementStep.PARTICIPATION_RECORDED
    )
    assert rules_for(step_of("participation_recorded", "checked_in", group)) == []


def test_a_step_this_reader_does_not_know_triggers_nothing() -> None:
    assert step_of("dues_confirmed", "checked_in", host_group(4)) is None


def test_without_a_step_the_origin_status_change_is_the_step() -> None:
    registered = origin_group(1)
    assert step_of(None, None, registered) is MovementStep.REGISTERED
    assert step_of(None, "registered", registered) is None  # details only
    assert step_of(None, "transfer_requested", registered) is MovementStep.TRANSFER_WITHDRAWN
    returned = origin_group(2, OriginStatus.RETURNED)
    assert step_of(None, "registered", returned) is MovementStep.RETURNED


def test_without_a_step_the_host_status_change_is_the_step() -> None:
    checked_in = host_group(2)
    assert step_of(None, "expected", checked_in) is MovementStep.CHECKED_IN
    assert step_of(None, None, checked_in) is MovementStep.CHECKED_IN
    assert step_of(None, "lost_contact", checked_in) is MovementStep.CONTACT_RESTORED
    assert step_of(None, "checked_in", checked_in) is None
    lost = host_group(3).model_copy(
        update={"status": HostStatus.LOST_CONTACT, "lost_contact_since": AT.date()}
    )
    assert step_of(None, "checked_in", lost) is MovementStep.LOST_CONTACT


def test_without_a_step_a_transfer_reply_counts_only_in_the_version_it_made() -> None:
    request = TransferRequest(requested_at=AT, reply_due_on=AT.date() + timedelta(days=30))
    reply = TransferReply(
        decision=TransferDecision.REJECTED,
        request_at=request.requested_at,
        replied_at=AT + timedelta(days=1),
        reason="not known here",
    )
    replied = host_group(3).model_copy(
        update={"transfer_reply": reply, "changed_at": reply.replied_at}
    )
    assert step_of(None, "checked_in", replied) is MovementStep.TRANSFER_REJECTED
    later = replied.model_copy(update={"version": 4, "changed_at": AT + timedelta(days=2)})
    assert step_of(None, "checked_in", later) is None  # e.g. a participation after the reply
