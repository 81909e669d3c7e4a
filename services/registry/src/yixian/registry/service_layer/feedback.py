"""Feedback: a member's concern raised with the host of an open movement or with the
origin, its answers, its closing, the secretaries' queue and the statistics of answering.

A concern lives at the node of the organization it is addressed to. Raised with the host
about a visiting member's movement, each change also gives the host group a new version
whose ``feedback`` summary tells the origin counts, states and times (the text only where
the member shared it), and whose step (``feedback_answered``) has notify tell the member.
Every command authorizes the caller before it looks at the rest of the request.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

from yixian.contracts import MovementStep
from yixian.registry.domain import (
    Addressee,
    Answer,
    Concern,
    FeedbackState,
    Invalid,
    InvalidTransition,
    Movement,
    Side,
    dates,
)
from yixian.registry.domain.feedback import answer_statistics, host_summary

from .handlers import _host_common, _save, answerable_org, require_read, require_write
from .unit_of_work import Result, UnitOfWork


async def _view(uow: UnitOfWork, concern: Concern) -> dict[str, Any]:
    answers = await uow.feedback.answers(concern.feedback_id)
    return {
        **concern.view(uow.request.now, uow.config.deadlines),
        "answers": [a.view() for a in answers],
        "target_id": str(concern.feedback_id),
    }


async def _tell_origin(uow: UnitOfWork, movement: Movement, step: MovementStep) -> None:
    """The host group's summary of the member's concerns raised with the host, as a new
    version when it changed (the movement is locked by the caller)."""
    concerns = await uow.feedback.of_movement(movement.movement_id, Addressee.HOST)
    answers = await uow.feedback.count_answers([c.feedback_id for c in concerns])
    movement.record_feedback(
        **_host_common(uow), step=step, summary=host_summary(concerns, answers)
    )
    await _save(uow, movement, None)


async def raise_concern(
    uow: UnitOfWork,
    *,
    movement_id: UUID | None,
    member_id: UUID | None,
    addressed_to: Addressee,
    text: str,
    share_with_origin: bool,
) -> Result:
    """A secretary raises a member's concern, on the member's behalf, with the organization
    of this node it is addressed to: the host of the member's open movement hosted here
    (``movement_id``), or the origin, the member's own organization (``movement_id`` of a
    movement this node is the origin of, or ``member_id`` of a member of this node). The
    same concern of the same member still open or answered is one concern: a repeat
    answers it (200) and changes nothing."""
    node = uow.config.node
    movement: Movement | None = None
    if movement_id is not None:
        if member_id is not None:
            raise Invalid("give movement_id or member_id, not both", field="member_id")
        movement = await uow.movements.get(movement_id, lock=True)
        org = await answerable_org(uow, movement)
        require_write(uow.request.principal, org)
        side = movement.side_of(node)
        if side.value != addressed_to.value:
            raise Invalid(
                f"this node is the movement's {side.value}: a concern raised here is addressed"
                f" to the {side.value}",
                field="addressed_to",
            )
        origin = movement.origin_group
        if origin is None:
            raise InvalidTransition("the origin group has not arrived yet", field="movement_id")
        if side is Side.HOST and not movement.state.is_open:
            raise InvalidTransition(
                f"is closed ({movement.state.value}): concerns go to the member's current host",
                field="movement_id",
            )
        about, name = origin.member.member_id, origin.member.name
    elif member_id is not None:
        member = await uow.members.get(member_id)
        org = await uow.organizations.get(member.org_id)
        require_write(uow.request.principal, org)
        if addressed_to is not Addressee.ORIGIN:
            raise Invalid(
                "a concern raised with a host names the member's movement (movement_id)",
                field="addressed_to",
            )
        about, name = member.member_id, member.name
    else:
        raise Invalid("give the member's movement_id or member_id", field="movement_id")
    if share_with_origin and addressed_to is Addressee.ORIGIN:
        raise Invalid("only a concern raised with the host is shared with the origin",
                      field="share_with_origin")  # fmt: skip
    concern = Concern(
        feedback_id=uuid4(),
        org_id=org.org_id,
        movement_id=movement.movement_id if movement else None,
        member_id=about,
        member_name=name,
        addressed_to=addressed_to,
        text=text,
        share_with_origin=share_with_origin,
        state=FeedbackState.OPEN,
        raised_at=uow.request.now,
        raised_by=uow.request.principal.actor,
    )
    if not await uow.feedback.add(concern):
        first = await uow.feedback.same_open(about, addressed_to, concern.digest)
        assert first is not None  # the insert just met it
        uow.nothing_changed = True
        return Result(200, {**await _view(uow, first), "duplicate": True})
    if movement is not None and addressed_to is Addressee.HOST:
        await _tell_origin(uow, movement, MovementStep.FEEDBACK_RAISED)
    uow.audit_detail = {
        "org_id": str(org.org_id),
        "member_id": str(about),
        "movement_id": str(movement_id) if movement_id else None,
        "addressed_to": addressed_to.value,
        "share_with_origin": share_with_origin,
    }
    return Result(201, {**await _view(uow, concern), "duplicate": False})


async def _locked(uow: UnitOfWork, feedback_id: UUID) -> tuple[Concern, Movement | None]:
    """The concern, authorized for a writer of its organization, locked with its movement
    (the movement first, as raising takes them)."""
    concern = await uow.feedback.get(feedback_id)
    require_write(uow.request.principal, await uow.organizations.get(concern.org_id))
    movement = None
    if concern.movement_id is not None and concern.addressed_to is Addressee.HOST:
        movement = await uow.movements.get(concern.movement_id, lock=True)
    return await uow.feedback.get(feedback_id, lock=True), movement


async def answer(uow: UnitOfWork, feedback_id: UUID, *, text: str) -> Result:
    """A secretary answers a concern; the first answer stamps the time to first answer.
    The same answer to the same concern is one answer (a repeat changes nothing)."""
    concern, movement = await _locked(uow, feedback_id)
    answered = concern.answered(uow.request.now)  # refuses a closed concern
    given = Answer(
        answer_id=uuid4(),
        feedback_id=feedback_id,
        text=text,
        answered_at=uow.request.now,
        answered_by=uow.request.principal.actor,
    )
    if not await uow.feedback.add_answer(given):
        uow.nothing_changed = True
        return Result(200, {**await _view(uow, concern), "duplicate": True})
    await uow.feedback.save(answered)
    if movement is not None:
        await _tell_origin(uow, movement, MovementStep.FEEDBACK_ANSWERED)
    uow.audit_detail = {
        "answer_id": str(given.answer_id),
        "first_answer_seconds": answered.first_answer_seconds,
        "changes": {"state": {"before": concern.state.value, "after": answered.state.value}},
    }
    return Result(201, {**await _view(uow, answered), "answer_id": str(given.answer_id),
                        "duplicate": False})  # fmt: skip


async def close(uow: UnitOfWork, feedback_id: UUID) -> Result:
    """A secretary closes a concern; closing a closed one changes nothing."""
    concern, movement = await _locked(uow, feedback_id)
    if concern.state is FeedbackState.CLOSED:
        uow.nothing_changed = True
        return Result(200, await _view(uow, concern))
    closed = concern.closed(uow.request.now, uow.request.principal.actor)
    await uow.feedback.save(closed)
    if movement is not None:
        await _tell_origin(uow, movement, MovementStep.FEEDBACK_CLOSED)
    uow.audit_detail = {
        "changes": {"state": {"before": concern.state.value, "after": closed.state.value}}
    }
    return Result(200, await _view(uow, closed))


# -- reads ----------------------------------------------------------------------------------


async def _scope(uow: UnitOfWork, org_id: UUID | None) -> str:
    principal = uow.request.principal
    if org_id is None:
        return principal.org_path
    org = await uow.organizations.get(org_id)
    require_read(principal, org)
    return org.path


async def get_concern(uow: UnitOfWork, feedback_id: UUID) -> dict[str, Any]:
    concern = await uow.feedback.get(feedback_id)
    require_read(uow.request.principal, await uow.organizations.get(concern.org_id))
    return await _view(uow, concern)


async def queue(
    uow: UnitOfWork,
    *,
    org_id: UUID | None = None,
    state: FeedbackState | None = None,
    overdue: bool | None = None,
) -> dict[str, Any]:
    """The concerns the caller's subtree answers for, oldest first, each flagged overdue
    when it waits for its first answer past the node's deadline."""
    path = await _scope(uow, org_id)
    now, deadlines = uow.request.now, uow.config.deadlines
    items = [
        c.view(now, deadlines)
        for c in await uow.feedback.within(path, state=state)
        if overdue is None or c.overdue(now, deadlines) is overdue
    ]
    return {
        "items": items,
        "overdue": sum(i["overdue"] for i in items),
        "answer_within_hours": deadlines.feedback_answer_hours,
    }


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=dates.BEIJING)


async def statistics(
    uow: UnitOfWork,
    *,
    org_id: UUID | None = None,
    since: date | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """Concerns raised in the period (Beijing days, both included) in the caller's subtree:
    counts by state, overdue, and the median and 90th percentile of time to first answer."""
    path = await _scope(uow, org_id)
    dates.require_report_period(since, until, uow.request.now, fields=("from", "to"))
    concerns = await uow.feedback.within(
        path,
        raised_from=_start_of(since) if since else None,
        raised_before=_start_of(until + timedelta(days=1)) if until else None,
    )
    return {
        "from": since,
        "to": until,
        **answer_statistics(concerns, uow.request.now, uow.config.deadlines),
    }
