"""Every step of the shared movement record, from every state: allowed or refused.

Both sides act on one ``Movement`` here, which is what two converged replicas hold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from yixian.contracts import (
    ActivityKind,
    Contact,
    Destination,
    HostStatus,
    MovementState,
    MovementStep,
    OriginStatus,
    TransferDecision,
)
from yixian.contracts.examples import CHAOYANG_BRANCH, GUSHI_BRANCH, origin_group
from yixian.registry.domain import (
    Deadlines,
    HostGroupChanged,
    Invalid,
    InvalidTransition,
    Movement,
    NotOwner,
    OriginGroupChanged,
    ParticipationAdded,
)

GUSHI, CHAOYANG, CHANGPING = "411525", "110105", "110114"
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
DEADLINES = Deadlines()
PARTNERS = frozenset({CHAOYANG, CHANGPING})
Step = Callable[[Movement], object]


def registered() -> Movement:
    card = origin_group()
    return Movement.register_outflow(
        node=GUSHI,
        origin_org=GUSHI_BRANCH,
        member=card.member,
        destination=card.destination,
        period=card.period,
        contact=card.contact,
        certificate=card.certificate,
        deadlines=DEADLINES,
        partners=PARTNERS,
        now=NOW,
        actor="secretary:gushi",
    )


def check_in(m: Movement) -> object:
    return m.confirm_check_in(
        node=CHAOYANG, host_org=CHAOYANG_BRANCH, branch=None, checked_in_at=NOW, now=NOW, actor="h"
    )


def request(m: Movement) -> object:
    return m.request_transfer(node=GUSHI, note=None, deadlines=DEADLINES, now=NOW, actor="o")


def reply(decision: TransferDecision) -> Step:
    def step(m: Movement) -> object:
        reason = "not eligible yet" if decision is TransferDecision.REJECTED else None
        return m.reply_transfer(node=CHAOYANG, decision=decision, reason=reason, now=NOW, actor="h")

    return step


SETUPS: dict[MovementState, list[Step]] = {
    MovementState.AWAITING_CHECK_IN: [],
    MovementState.ACTIVE: [check_in],
    MovementState.NOT_FOUND_BY_HOST: [
        lambda m: m.reject(node=CHAOYANG, reason="unknown here", now=NOW, actor="h")
    ],
    MovementState.FORWARDED: [
        lambda m: m.forward(
            node=CHAOYANG, forwarded_to=CHANGPING, reason="lives in Changping", now=NOW, actor="h"
        )
    ],
    MovementState.LOST_CONTACT: [
        check_in,
        lambda m: m.mark_lost_contact(node=CHAOYANG, since=date(2026, 3, 9), now=NOW, actor="h"),
    ],
    MovementState.TRANSFER_PENDING: [check_in, request],
    MovementState.TRANSFER_ACCEPTED: [check_in, request, reply(TransferDecision.ACCEPTED)],
    MovementState.TRANSFER_REJECTED: [check_in, request, reply(TransferDecision.REJECTED)],
    MovementState.CLOSED_RETURNED: [
        check_in,
        lambda m: m.return_home(node=GUSHI, returned_on=date(2026, 3, 9), now=NOW, actor="o"),
    ],
    MovementState.CLOSED_RELOCATED: [
        lambda m: m.relocate(
            node=GUSHI,
            destination=Destination(jurisdiction=CHANGPING, place="昌平区"),
            departed_on=date(2026, 3, 9),
            deadlines=DEADLINES,
            partners=PARTNERS,
            now=NOW,
            actor="o",
        )
    ],
    MovementState.CLOSED_TRANSFERRED: [
        check_in,
        request,
        reply(TransferDecision.ACCEPTED),
        lambda m: m.complete_transfer(node=GUSHI, now=NOW, actor="o"),
    ],
    MovementState.CANCELLED: [lambda m: m.cancel(node=GUSHI, now=NOW, actor="o")],
    MovementState.CLOSED_REMOVED: [
        lambda m: m.mark_lost_contact_at_origin(
            node=GUSHI, since=date(2026, 2, 21), now=NOW, actor="o"
        ),
        lambda m: m.suspend(
            node=GUSHI, reason="失联", force=True, deadlines=DEADLINES, now=NOW, actor="o"
        ),
        lambda m: m.remove(
            node=GUSHI, reason="仍失联", force=True, deadlines=DEADLINES, now=NOW, actor="o"
        ),
    ],
}

OPEN = {s for s in SETUPS if s.is_open}
TRANSFER = {
    MovementState.TRANSFER_PENDING,
    MovementState.TRANSFER_ACCEPTED,
    MovementState.TRANSFER_REJECTED,
}
REGISTERED = OPEN - TRANSFER

# step name -> (the side that owns it, the step as that side, the states it is allowed in)
STEPS: dict[str, tuple[str, Callable[[Movement, str], object], set[MovementState]]] = {
    "update_details": (
        GUSHI,
        lambda m, n: m.update_details(
            node=n, now=NOW, actor="o", contact=Contact(phone="139"), deadlines=DEADLINES
        ),
        OPEN,
    ),
    "relocate": (
        GUSHI,
        lambda m, n: m.relocate(
            node=n,
            destination=Destination(jurisdiction=CHANGPING, place="昌平区"),
            departed_on=date(2026, 3, 9),
            deadlines=DEADLINES,
            partners=PARTNERS,
            now=NOW,
            actor="o",
        ),
        REGISTERED,
    ),
    "cancel": (
        GUSHI,
        lambda m, n: m.cancel(node=n, now=NOW, actor="o"),
        {MovementState.AWAITING_CHECK_IN, MovementState.NOT_FOUND_BY_HOST, MovementState.FORWARDED},
    ),
    "return_home": (
        GUSHI,
        lambda m, n: m.return_home(node=n, returned_on=date(2026, 3, 9), now=NOW, actor="o"),
        OPEN,
    ),
    "request_transfer": (
        GUSHI,
        lambda m, n: m.request_transfer(node=n, note=None, deadlines=DEADLINES, now=NOW, actor="o"),
        {MovementState.ACTIVE, MovementState.TRANSFER_REJECTED},
    ),
    "withdraw_transfer": (
        GUSHI,
        lambda m, n: m.withdraw_transfer(node=n, now=NOW, actor="o"),
        TRANSFER,
    ),
    "complete_transfer": (
        GUSHI,
        lambda m, n: m.complete_transfer(node=n, now=NOW, actor="o"),
        {MovementState.TRANSFER_ACCEPTED},
    ),
    "confirm_check_in": (
        CHAOYANG,
        lambda m, n: m.confirm_check_in(
            node=n, host_org=CHAOYANG_BRANCH, branch=None, checked_in_at=NOW, now=NOW, actor="h"
        ),
        {MovementState.AWAITING_CHECK_IN, MovementState.NOT_FOUND_BY_HOST},
    ),
    "reject": (
        CHAOYANG,
        lambda m, n: m.reject(node=n, reason="unknown", now=NOW, actor="h"),
        {MovementState.AWAITING_CHECK_IN},
    ),
    "forward": (
        CHAOYANG,
        lambda m, n: m.forward(node=n, forwarded_to=CHANGPING, reason="moved", now=NOW, actor="h"),
        {MovementState.AWAITING_CHECK_IN},
    ),
    "mark_lost_contact": (
        CHAOYANG,
        lambda m, n: m.mark_lost_contact(node=n, since=date(2026, 3, 1), now=NOW, actor="h"),
        {MovementState.ACTIVE, MovementState.AWAITING_CHECK_IN},
    ),
    "mark_lost_contact_at_origin": (
        GUSHI,
        lambda m, n: m.mark_lost_contact_at_origin(
            node=n, since=date(2026, 3, 1), now=NOW, actor="o"
        ),
        REGISTERED,
    ),
    "suspend": (
        GUSHI,
        lambda m, n: m.suspend(
            node=n, reason="失联", force=True, deadlines=DEADLINES, now=NOW, actor="o"
        ),
        {MovementState.LOST_CONTACT},
    ),
    "record_report": (
        GUSHI,
        lambda m, n: m.record_report(node=n, reported_on=date(2026, 3, 9), now=NOW, actor="o"),
        OPEN,
    ),
    "restore_contact": (
        CHAOYANG,
        lambda m, n: m.restore_contact(node=n, now=NOW, actor="h"),
        {MovementState.LOST_CONTACT},
    ),
    "record_participation": (
        CHAOYANG,
        lambda m, n: m.record_participation(
            node=n,
            participation_id=uuid4(),
            activity_id=None,
            kind=ActivityKind.THEME_DAY,
            title="主题党日",
            attended_at=NOW - timedelta(hours=1),
            now=NOW,
            actor="h",
        ),
        {MovementState.ACTIVE} | TRANSFER,
    ),
    "confirm_dues_paid": (
        CHAOYANG,
        lambda m, n: m.confirm_dues_paid(node=n, months=["2026-03"], now=NOW, actor="h"),
        {MovementState.ACTIVE, MovementState.LOST_CONTACT} | TRANSFER,
    ),
    "accept_transfer": (
        CHAOYANG,
        lambda m, n: m.reply_transfer(
            node=n, decision=TransferDecision.ACCEPTED, reason=None, now=NOW, actor="h"
        ),
        {MovementState.TRANSFER_PENDING},
    ),
    "reject_transfer": (
        CHAOYANG,
        lambda m, n: m.reply_transfer(
            node=n, decision=TransferDecision.REJECTED, reason="no", now=NOW, actor="h"
        ),
        {MovementState.TRANSFER_PENDING},
    ),
}


def in_state(state: MovementState) -> Movement:
    movement = registered()
    for step in SETUPS[state]:
        step(movement)
    assert movement.state is state
    movement.events.clear()
    return movement


def test_every_state_is_covered() -> None:
    assert set(SETUPS) == set(MovementState) - {MovementState.UNKNOWN}


@pytest.mark.parametrize("state", list(SETUPS), ids=str)
@pytest.mark.parametrize("step", list(STEPS))
def test_step_from_state(step: str, state: MovementState) -> None:
    owner, run, allowed = STEPS[step]
    movement = in_state(state)
    before = (movement.origin_group, movement.host_group)
    if state in allowed:
        run(movement, owner)
        assert movement.events, "an allowed step records what changed"
        changed = [e for e in movement.events if not isinstance(e, ParticipationAdded)]
        for event in changed:
            if isinstance(event, OriginGroupChanged):
                assert before[0] is not None
                assert event.group.version == before[0].version + 1
                assert movement.host_group == before[1]
            else:
                assert isinstance(event, HostGroupChanged)
                assert event.group.version == (before[1].version + 1 if before[1] else 1)
                assert movement.origin_group == before[0]
    else:
        with pytest.raises(InvalidTransition):
            run(movement, owner)
        assert (movement.origin_group, movement.host_group) == before
        assert movement.events == []


@pytest.mark.parametrize("step", list(STEPS))
def test_the_other_side_may_not_take_the_step(step: str) -> None:
    owner, run, allowed = STEPS[step]
    state = next(iter(sorted(allowed)))
    movement = in_state(state)
    other = CHAOYANG if owner == GUSHI else GUSHI
    with pytest.raises(NotOwner, match=f"node {other} is its"):
        run(movement, other)
    assert movement.events == []


def test_a_third_node_is_neither_side() -> None:
    with pytest.raises(NotOwner, match="neither origin nor host"):
        in_state(MovementState.AWAITING_CHECK_IN).cancel(node="350300", now=NOW, actor="x")


def test_registration_sets_the_check_in_deadline() -> None:
    movement = registered()
    assert movement.origin_group is not None
    assert movement.origin_group.version == 1
    assert movement.origin_group.status is OriginStatus.REGISTERED
    assert movement.origin_group.check_in_due_on == date(2026, 2, 20) + timedelta(days=30)
    assert movement.host_group is None
    assert movement.state is MovementState.AWAITING_CHECK_IN
    assert isinstance(movement.events[0], OriginGroupChanged)


def test_registration_to_own_jurisdiction_is_refused() -> None:
    card = origin_group()
    with pytest.raises(Invalid) as caught:
        Movement.register_outflow(
            node=GUSHI,
            origin_org=GUSHI_BRANCH,
            member=card.member,
            destination=Destination(jurisdiction=GUSHI, place="here"),
            period=card.period,
            contact=card.contact,
            certificate=None,
            deadlines=Deadlines(check_in_days=10),
            partners=PARTNERS,
            now=NOW,
            actor="o",
        )
    assert caught.value.field == "destination.jurisdiction"


def test_relocation_links_both_movements() -> None:
    movement = in_state(MovementState.ACTIVE)
    successor = movement.relocate(
        node=GUSHI,
        destination=Destination(jurisdiction=CHANGPING, place="昌平区"),
        departed_on=date(2026, 3, 9),
        deadlines=DEADLINES,
        partners=PARTNERS,
        now=NOW,
        actor="o",
    )
    assert movement.state is MovementState.CLOSED_RELOCATED
    assert movement.origin_group
    assert movement.origin_group.next_movement_id == successor.movement_id
    assert successor.origin_group
    assert successor.origin_group.previous_movement_id == movement.movement_id
    assert successor.host == CHANGPING
    assert successor.state is MovementState.AWAITING_CHECK_IN


def test_participation_updates_the_host_summary() -> None:
    movement = in_state(MovementState.ACTIVE)
    for day in (1, 3, 2):
        movement.record_participation(
            node=CHAOYANG,
            participation_id=uuid4(),
            activity_id=None,
            kind=ActivityKind.THEME_DAY,
            title="主题党日",
            attended_at=NOW - timedelta(days=day),
            now=NOW,
            actor="h",
        )
    assert movement.host_group is not None
    assert movement.host_group.participation.attended == 3
    assert movement.host_group.participation.last_attended_at == NOW - timedelta(days=1)
    assert sum(isinstance(e, ParticipationAdded) for e in movement.events) == 3


def test_rejected_transfer_leaves_membership_and_can_be_asked_again() -> None:
    movement = in_state(MovementState.TRANSFER_REJECTED)
    later = NOW + timedelta(days=40)
    movement.request_transfer(
        node=GUSHI, note="second try", deadlines=DEADLINES, now=later, actor="o"
    )
    assert movement.state is MovementState.TRANSFER_PENDING  # the old rejection no longer counts
    movement.withdraw_transfer(node=GUSHI, now=later, actor="o")
    assert movement.state is MovementState.ACTIVE
    assert movement.origin_group
    assert movement.origin_group.status is OriginStatus.REGISTERED


def test_rejecting_a_transfer_needs_a_reason() -> None:
    movement = in_state(MovementState.TRANSFER_PENDING)
    with pytest.raises(Invalid) as caught:
        movement.reply_transfer(
            node=CHAOYANG, decision=TransferDecision.REJECTED, reason=None, now=NOW, actor="h"
        )
    assert caught.value.field == "reason"


def test_lost_contact_in_the_future_is_refused() -> None:
    movement = in_state(MovementState.ACTIVE)
    with pytest.raises(Invalid) as caught:
        movement.mark_lost_contact(node=CHAOYANG, since=date(2027, 1, 1), now=NOW, actor="h")
    assert caught.value.field == "since"


def test_restored_contact_clears_the_date() -> None:
    movement = in_state(MovementState.LOST_CONTACT)
    movement.restore_contact(node=CHAOYANG, now=NOW, actor="h")
    assert movement.host_group is not None
    assert movement.host_group.status is HostStatus.CHECKED_IN
    assert movement.host_group.lost_contact_since is None


def _steps(movement: Movement) -> list[tuple[str, MovementStep]]:
    steps = [
        ("origin" if isinstance(e, OriginGroupChanged) else "host", e.step)
        for e in movement.events
        if isinstance(e, OriginGroupChanged | HostGroupChanged)
    ]
    movement.events.clear()
    return steps


def test_each_step_names_itself_in_its_event() -> None:
    """The step travels in the published event (``step``); notify's rules key on it."""
    m = registered()
    assert _steps(m) == [("origin", MovementStep.REGISTERED)]
    m.update_details(node=GUSHI, now=NOW, actor="o", place="北京市朝阳区望京", deadlines=DEADLINES)
    assert _steps(m) == [("origin", MovementStep.DETAILS_UPDATED)]
    check_in(m)
    assert _steps(m) == [("host", MovementStep.CHECKED_IN)]
    m.mark_lost_contact(node=CHAOYANG, since=date(2026, 3, 9), now=NOW, actor="h")
    m.restore_contact(node=CHAOYANG, now=NOW, actor="h")
    assert _steps(m) == [
        ("host", MovementStep.LOST_CONTACT),
        ("host", MovementStep.CONTACT_RESTORED),
    ]
    request(m)
    reply(TransferDecision.REJECTED)(m)
    m.withdraw_transfer(node=GUSHI, now=NOW, actor="o")
    assert _steps(m) == [
        ("origin", MovementStep.TRANSFER_REQUESTED),
        ("host", MovementStep.TRANSFER_REJECTED),
        ("origin", MovementStep.TRANSFER_WITHDRAWN),
    ]
    later = NOW + timedelta(hours=1)  # asked again: a new request, answered anew
    m.request_transfer(node=GUSHI, note=None, deadlines=DEADLINES, now=later, actor="o")
    m.reply_transfer(
        node=CHAOYANG, decision=TransferDecision.ACCEPTED, reason=None, now=later, actor="h"
    )
    m.complete_transfer(node=GUSHI, now=later, actor="o")
    assert _steps(m) == [
        ("origin", MovementStep.TRANSFER_REQUESTED),
        ("host", MovementStep.TRANSFER_ACCEPTED),
        ("origin", MovementStep.TRANSFER_COMPLETED),
    ]


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (MovementState.NOT_FOUND_BY_HOST, MovementStep.REJECTED),
        (MovementState.FORWARDED, MovementStep.FORWARDED),
        (MovementState.CLOSED_RETURNED, MovementStep.RETURNED),
        (MovementState.CANCELLED, MovementStep.CANCELLED),
    ],
)
def test_the_last_step_to_a_state_names_itself(state: MovementState, step: MovementStep) -> None:
    m = registered()
    for setup in SETUPS[state]:
        setup(m)
    assert _steps(m)[-1][1] is step


def test_a_relocation_closes_one_movement_and_registers_the_next() -> None:
    m = registered()
    _steps(m)
    (successor,) = [setup(m) for setup in SETUPS[MovementState.CLOSED_RELOCATED]]
    assert isinstance(successor, Movement)
    assert _steps(m) == [("origin", MovementStep.RELOCATED)]
    assert _steps(successor) == [("origin", MovementStep.REGISTERED)]


def test_dues_paid_keeps_the_months_in_order_once() -> None:
    movement = in_state(MovementState.ACTIVE)
    movement.confirm_dues_paid(node=CHAOYANG, months=["2026-03", "2026-02"], now=NOW, actor="h")
    assert movement.host_group is not None
    assert movement.host_group.dues_paid == ["2026-02", "2026-03"]
    assert _steps(movement) == [("host", MovementStep.DUES_PAID)]
    version = movement.host_group.version
    movement.confirm_dues_paid(node=CHAOYANG, months=["2026-03"], now=NOW, actor="h")
    assert movement.host_group.version == version  # paid already: nothing new
    assert movement.events == []


@pytest.mark.parametrize("month", ["2026-01", "2026-04"])
def test_dues_outside_the_stay_are_refused(month: str) -> None:
    movement = in_state(MovementState.ACTIVE)
    with pytest.raises(Invalid) as caught:
        movement.confirm_dues_paid(node=CHAOYANG, months=[month], now=NOW, actor="h")
    assert caught.value.field == "months"
