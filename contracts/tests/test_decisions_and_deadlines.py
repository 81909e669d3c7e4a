"""The contracts' rules for lost contact, decisions and due dates: the one definition the
registry's queues and notify's scheduler share."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from yixian.contracts import (
    Deadlines,
    HostGroup,
    HostStatus,
    MovementState,
    OriginGroup,
    OriginStatus,
    Prompt,
    Standing,
    StandingDecision,
    TransferRequest,
    lost_contact_since,
    movement_state,
    prompts_due,
    transfer_reply_due_on,
    transfer_reply_overdue,
)
from yixian.contracts.examples import host_group, origin_group

DEADLINES = Deadlines()


def _lost_host(since: date) -> HostGroup:
    return host_group().model_copy(
        update={"status": HostStatus.LOST_CONTACT, "lost_contact_since": since}
    )


def test_either_side_s_lost_contact_counts_from_the_earlier_day() -> None:
    origin = origin_group().model_copy(update={"lost_contact_since": date(2026, 4, 1)})
    assert movement_state(origin, None) is MovementState.LOST_CONTACT  # never arrived
    host = _lost_host(date(2026, 3, 20))
    assert lost_contact_since(origin, host) == date(2026, 3, 20)
    assert lost_contact_since(origin_group(), host_group()) is None


def test_a_decision_closes_its_prompts() -> None:
    since = date(2026, 3, 1)
    host = _lost_host(since)
    late = DEADLINES.removal_prompt_on(since) + timedelta(days=1)
    assert [p for p, _ in prompts_due(origin_group(), host, late, DEADLINES)] == [
        Prompt.SUSPENSION,
        Prompt.REMOVAL,
    ]
    at = datetime(2026, 9, 1, tzinfo=UTC)

    def decided(standing: Standing, about: date = since) -> OriginGroup:
        decision = StandingDecision(
            standing=standing, reason="r", decided_at=at, lost_contact_since=about
        )
        return origin_group(version=2).model_copy(update={"decision": decision})

    suspended = decided(Standing.SUSPENDED)
    assert prompts_due(suspended, host, late, DEADLINES) == [(Prompt.REMOVAL, since)]
    assert prompts_due(decided(Standing.REINSTATED), host, late, DEADLINES) == []
    other = decided(Standing.REINSTATED, about=date(2025, 1, 1))  # an earlier lost contact
    assert len(prompts_due(other, host, late, DEADLINES)) == 2
    removed = decided(Standing.REMOVED)
    assert movement_state(removed, host) is MovementState.CLOSED_REMOVED
    assert not MovementState.CLOSED_REMOVED.is_open


def test_the_reply_is_due_by_the_hosts_deadline() -> None:
    requested = datetime(2026, 5, 1, 2, tzinfo=UTC)
    origin = origin_group().model_copy(
        update={
            "status": OriginStatus.TRANSFER_REQUESTED,
            "transfer": TransferRequest(requested_at=requested, reply_due_on=date(2026, 5, 31)),
        }
    )
    older_host = host_group()
    assert transfer_reply_due_on(origin, older_host) == date(2026, 5, 31)  # the origin's stamp
    host = host_group().model_copy(update={"transfer_reply_days": 10})
    assert transfer_reply_due_on(origin, host) == date(2026, 5, 11)
    assert not transfer_reply_overdue(origin, host, date(2026, 5, 11))
    assert transfer_reply_overdue(origin, host, date(2026, 5, 12))
    assert not transfer_reply_overdue(origin, older_host, date(2026, 5, 12))
