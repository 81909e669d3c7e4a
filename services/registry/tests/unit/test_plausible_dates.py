"""The domain's date rules: each kind of date has a plausible window, measured from now and
from the departure, and a refusal names the field at fault."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from yixian.contracts import (
    ActivityKind,
    Certificate,
    Destination,
    HostStatus,
    Period,
    TransferDecision,
)
from yixian.contracts.examples import CHAOYANG_BRANCH, GUSHI_BRANCH, origin_group
from yixian.registry.domain import Deadlines, Invalid, Movement, dates

GUSHI, CHAOYANG, CHANGPING = "411525", "110105", "110114"
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 on 10 March in Beijing
DEPARTED = date(2026, 2, 20)
PARTNERS = frozenset({CHAOYANG, CHANGPING})


def register(**changes: Any) -> Movement:
    card = origin_group()
    arguments: dict[str, Any] = {
        "node": GUSHI,
        "origin_org": GUSHI_BRANCH,
        "member": card.member,
        "destination": card.destination,
        "period": Period(departed_on=DEPARTED, expected_return_on=date(2027, 1, 31)),
        "contact": card.contact,
        "certificate": None,
        "deadlines": Deadlines(),
        "partners": PARTNERS,
        "now": NOW,
        "actor": "o",
    }
    return Movement.register_outflow(**(arguments | changes))


def checked_in() -> Movement:
    movement = register()
    movement.confirm_check_in(
        node=CHAOYANG, host_org=CHAOYANG_BRANCH, branch=None, checked_in_at=NOW, now=NOW, actor="h"
    )
    return movement


def refused(step: Callable[[], object]) -> Invalid:
    with pytest.raises(Invalid) as caught:
        step()
    return caught.value


@pytest.mark.parametrize(
    ("departed_on", "allowed"),
    [
        (date(1, 1, 1), False),
        (date(9999, 12, 31), False),
        (date(2024, 3, 9), False),  # a day more than two years back
        (date(2024, 3, 10), True),
        (date(2027, 3, 10), True),
        (date(2027, 3, 11), False),  # a day more than a year ahead
    ],
)
def test_a_departure_lies_from_two_years_back_to_a_year_ahead(
    departed_on: date, allowed: bool
) -> None:
    def step() -> Movement:
        return register(period=Period(departed_on=departed_on))

    if allowed:
        assert step().origin_group is not None
    else:
        assert refused(step).field == "period.departed_on"


def test_an_expected_return_in_year_9999_is_refused() -> None:
    period = Period(departed_on=DEPARTED, expected_return_on=date(9999, 12, 31))
    assert refused(lambda: register(period=period)).field == "period.expected_return_on"


def test_a_certificate_is_not_issued_in_the_future() -> None:
    certificate = Certificate(number="LD-1", issued_on=date(2026, 3, 11))
    assert refused(lambda: register(certificate=certificate)).field == "certificate.issued_on"
    issued_today = Certificate(number="LD-1", issued_on=date(2026, 3, 10))
    assert register(certificate=issued_today).origin_group is not None


def test_a_destination_must_be_a_linked_partner() -> None:
    elsewhere = Destination(jurisdiction="350300", place="莆田")
    problem = refused(lambda: register(destination=elsewhere))
    assert problem.field == "destination.jurisdiction"
    assert "not a linked partner" in problem.message
    alone = refused(lambda: register(partners=frozenset()))
    assert "partners: none yet" in alone.message


def test_correcting_the_period_to_year_9999_is_refused_not_an_overflow() -> None:
    movement = register()
    problem = refused(
        lambda: movement.update_details(
            node=GUSHI,
            now=NOW,
            actor="o",
            period=Period(departed_on=date(9999, 12, 31)),
            deadlines=Deadlines(),
        )
    )
    assert problem.field == "period.departed_on"


@pytest.mark.parametrize(
    ("checked_in_at", "allowed"),
    [
        (datetime(1990, 1, 1, tzinfo=UTC), False),  # before the departure two weeks ago
        (NOW + timedelta(minutes=1), False),  # in the future
        (datetime(2026, 2, 19, 16, 30, tzinfo=UTC), True),  # 00:30 on 20 Feb in Beijing
        (datetime(2026, 2, 19, 15, 30, tzinfo=UTC), False),  # 23:30 on 19 Feb in Beijing
        (NOW, True),
    ],
)
def test_a_check_in_happens_between_the_departure_and_now(
    checked_in_at: datetime, allowed: bool
) -> None:
    movement = register()

    def step() -> None:
        movement.confirm_check_in(
            node=CHAOYANG,
            host_org=CHAOYANG_BRANCH,
            branch=None,
            checked_in_at=checked_in_at,
            now=NOW,
            actor="h",
        )

    if allowed:
        step()
        assert movement.host_group is not None
        assert movement.host_group.status is HostStatus.CHECKED_IN
    else:
        assert refused(step).field == "checked_in_at"


@pytest.mark.parametrize("returned_on", [date(2026, 3, 11), date(2026, 2, 19), date(1, 1, 1)])
def test_a_return_is_not_in_the_future_nor_before_the_departure(returned_on: date) -> None:
    movement = checked_in()
    problem = refused(
        lambda: movement.return_home(node=GUSHI, returned_on=returned_on, now=NOW, actor="o")
    )
    assert problem.field == "returned_on"
    assert movement.state.is_open  # nothing closed


def test_a_return_today_in_beijing_is_accepted_while_it_is_still_yesterday_in_utc() -> None:
    movement = checked_in()
    early = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # 07:00 on 11 March in Beijing
    movement.return_home(node=GUSHI, returned_on=date(2026, 3, 11), now=early, actor="o")
    assert not movement.state.is_open


def test_lost_contact_and_attendance_happen_during_the_movement() -> None:
    movement = checked_in()
    before = refused(
        lambda: movement.mark_lost_contact(
            node=CHAOYANG, since=date(2026, 2, 1), now=NOW, actor="h"
        )
    )
    assert before.field == "since"
    attended = refused(
        lambda: movement.record_participation(
            node=CHAOYANG,
            participation_id=uuid4(),
            activity_id=None,
            kind=ActivityKind.THEME_DAY,
            title="主题党日",
            attended_at=datetime(2025, 12, 1, tzinfo=UTC),
            now=NOW,
            actor="h",
        )
    )
    assert attended.field == "attended_at"


def test_a_relocation_happens_after_the_departure_and_to_a_partner() -> None:
    movement = checked_in()

    def relocate(departed_on: date, jurisdiction: str = CHANGPING) -> Movement:
        return movement.relocate(
            node=GUSHI,
            destination=Destination(jurisdiction=jurisdiction, place="昌平区"),
            departed_on=departed_on,
            deadlines=Deadlines(),
            partners=PARTNERS,
            now=NOW,
            actor="o",
        )

    assert refused(lambda: relocate(date(2026, 2, 1))).field == "departed_on"
    assert refused(lambda: relocate(date(2026, 3, 11))).field == "departed_on"
    outside = refused(lambda: relocate(date(2026, 3, 9), "320106"))
    assert outside.field == "destination.jurisdiction"
    assert movement.state.is_open
    assert relocate(date(2026, 3, 9)).host == CHANGPING


def test_a_relocation_after_the_expected_return_does_not_carry_it_over() -> None:
    movement = register(period=Period(departed_on=DEPARTED, expected_return_on=date(2026, 3, 1)))
    successor = movement.relocate(
        node=GUSHI,
        destination=Destination(jurisdiction=CHANGPING, place="昌平区"),
        departed_on=date(2026, 3, 5),
        deadlines=Deadlines(),
        partners=PARTNERS,
        now=NOW,
        actor="o",
    )
    assert successor.origin_group is not None
    assert successor.origin_group.period == Period(departed_on=date(2026, 3, 5))


def test_a_transfer_reply_needs_no_date_and_is_unaffected() -> None:
    movement = checked_in()
    movement.request_transfer(node=GUSHI, note=None, deadlines=Deadlines(), now=NOW, actor="o")
    movement.reply_transfer(
        node=CHAOYANG, decision=TransferDecision.ACCEPTED, reason=None, now=NOW, actor="h"
    )
    assert movement.host_group is not None
    assert movement.host_group.transfer_reply is not None


@pytest.mark.parametrize(
    ("joined_on", "allowed"),
    [
        (date(1, 1, 1), False),
        (date(1921, 6, 30), False),
        (date(1921, 7, 1), True),
        (date(2026, 3, 10), True),
        (date(2026, 3, 11), False),
    ],
)
def test_a_member_joined_between_the_founding_and_today(joined_on: date, allowed: bool) -> None:
    if allowed:
        dates.require_joined(joined_on, NOW)
    else:
        assert refused(lambda: dates.require_joined(joined_on, NOW)).field == "joined_on"


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "field"),
    [
        (NOW - timedelta(minutes=1), None, "starts_at"),
        (NOW + timedelta(days=400), None, "starts_at"),
        (NOW + timedelta(days=1), NOW + timedelta(hours=23), "ends_at"),  # ends before it starts
        (NOW + timedelta(days=1), NOW + timedelta(days=1), "ends_at"),
        (NOW + timedelta(days=1), NOW + timedelta(days=33), "ends_at"),
        (NOW + timedelta(days=1), NOW + timedelta(days=1, hours=3), None),
    ],
)
def test_an_activity_starts_within_a_year_and_ends_after_it_starts(
    starts_at: datetime, ends_at: datetime | None, field: str | None
) -> None:
    if field is None:
        dates.require_activity_times(starts_at, ends_at, NOW)
    else:
        assert refused(lambda: dates.require_activity_times(starts_at, ends_at, NOW)).field == field
