"""Issue #15, points 7 and 8, in memory: the certificate number, the reason and the contact
of a registration; statistics, queues and the audit log of a secretary (``fakes.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from yixian.contracts import (
    Contact,
    Destination,
    OriginStatus,
    OutflowReason,
    OutflowReasonKind,
    Period,
)
from yixian.contracts.examples import origin_group
from yixian.registry.domain import (
    GroupBy,
    Invalid,
    Queue,
    away_during,
    certificate_number,
    closed_on,
    dates,
    field_changes,
)
from yixian.registry.domain.certificate import NUMBER
from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.routers.movements import STEPS
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Denied
from yixian.runtime.apikeys import Role

from .fakes import FakeAuditLog
from .test_handlers import CHANGPING, CHAOYANG, GUSHI, NOW, Node, World, body_of, outflow

# -- the domain's rules ---------------------------------------------------------------------


def test_a_certificate_number_says_node_year_and_sequence() -> None:
    assert certificate_number(GUSHI, 2026, 123) == "411525-2026-000123"
    assert certificate_number(GUSHI, 2026, 1_234_567) == "411525-2026-1234567"
    assert NUMBER.fullmatch(certificate_number(CHAOYANG, 2027, 1))
    for node, year, sequence in ((GUSHI, 2026, 0), ("4115", 2026, 1), (GUSHI, 1, 1)):
        with pytest.raises(ValueError, match="no certificate number"):
            certificate_number(node, year, sequence)


def test_field_changes_name_each_changed_leaf() -> None:
    before = {"status": "registered", "destination": {"place": "朝阳", "hint": None}, "version": 1}
    after = {
        "status": "cancelled",
        "destination": {"place": "朝阳", "hint": {"org_id": "x"}},
        "version": 2,
        "changed_at": "2026-03-10T02:00:00Z",
    }
    assert field_changes(before, after, prefix="origin_group") == {
        "origin_group.destination.hint.org_id": {"before": None, "after": "x"},
        "origin_group.status": {"before": "registered", "after": "cancelled"},
        "origin_group.version": {"before": 1, "after": 2},
    }
    assert field_changes(before, before) == {}
    assert field_changes(None, {"name": "王芳"}) == {"name": {"before": None, "after": "王芳"}}


def test_a_movement_counts_in_a_period_it_overlaps() -> None:
    open_ = origin_group()  # departed 2026-02-20, open
    returned = origin_group(2, OriginStatus.RETURNED).model_copy(
        update={"period": open_.period.model_copy(update={"expected_return_on": date(2026, 3, 5)})}
    )
    assert closed_on(open_) is None
    assert closed_on(returned) == date(2026, 3, 5)
    assert away_during(open_, None, None)
    assert not away_during(open_, None, date(2026, 2, 19))  # not yet gone
    assert away_during(open_, date(2030, 1, 1), None)  # still away
    assert away_during(returned, date(2026, 3, 5), None)  # back on the period's first day
    assert not away_during(returned, date(2026, 3, 6), None)
    assert not away_during(None, None, None)


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        (date(1, 1, 1), None, "from"),
        (None, date(9999, 12, 31), "to"),
        (date(2026, 3, 1), date(2026, 2, 1), "to"),
    ],
)
def test_a_report_period_is_plausible(since: date | None, until: date | None, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        dates.require_report_period(since, until, NOW, fields=("from", "to"))
    assert refused.value.field == field
    dates.require_report_period(date(2026, 3, 1), date(2026, 3, 1), NOW, fields=("from", "to"))


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), None, "since"),
        (None, datetime(9999, 12, 31, tzinfo=UTC), "until"),
        (NOW, NOW, "until"),
    ],
)
def test_an_audit_window_is_plausible(
    since: datetime | None, until: datetime | None, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        dates.require_time_window(since, until, NOW, fields=("since", "until"))
    assert refused.value.field == field


# -- registration ---------------------------------------------------------------------------


async def test_each_registration_gets_the_next_number_of_the_year() -> None:
    world = World()
    first = await world.register()
    other = World(gushi=world.gushi, chaoyang=world.chaoyang)
    second = await other.register(name="李明")
    numbers = [r.body["origin_group"]["certificate"]["number"] for r in (first, second)]
    assert numbers == ["411525-2026-000001", "411525-2026-000002"]
    assert first.body["origin_group"]["certificate"]["issued_on"] == "2026-03-10"
    kept = world.gushi.tables.certificates
    assert sorted(kept) == numbers
    assert kept[numbers[0]]["movement_id"] == world.movement_id
    assert first.body["origin_group"]["reason"] == {"kind": "work", "text": "在北京务工"}


async def test_a_registration_without_a_way_to_reach_the_member_is_refused() -> None:
    world = World()
    await world.add_member()
    body = outflow(world.member_id).model_copy(update={"contact": Contact()})
    with pytest.raises(Invalid) as refused:
        await world.gushi.run(lambda uow: handlers.register_outflow(uow, **s.fields(body)))
    assert refused.value.field == "contact"
    assert world.gushi.tables.movements == {}


def test_a_registration_body_refuses_a_certificate_and_an_unexplained_other() -> None:
    base = outflow(UUID(int=1)).model_dump(mode="json")
    for changes, field in (
        (
            {"certificate": {"number": "411525-2026-000009", "issued_on": "2026-03-01"}},
            "certificate",
        ),
        ({"contact": {}}, "contact"),
        ({"reason": {"kind": "other"}}, "reason"),
    ):
        with pytest.raises(ValidationError) as refused:
            s.OutflowRegistration.model_validate({**base, **changes})
        assert refused.value.errors()[0]["loc"][0] == field
    other = {**base, "reason": {"kind": "other", "text": "照顾父母"}}
    assert s.OutflowRegistration.model_validate(other).reason == OutflowReason(
        kind=OutflowReasonKind.OTHER, text="照顾父母"
    )


async def _audited(world: World, node: Node, path: str) -> dict[str, Any]:
    """Take a step of the API's table at ``node``; what the runner would write to the
    audit log (``uow.audit_detail``)."""
    found = next(step for step in STEPS if step.path == path)
    assert world.movement_id is not None
    movement_id = world.movement_id
    uow = node.uow()
    await found.run(uow, movement_id, body_of(found, node))
    world.deliver(node, world.chaoyang if node is world.gushi else world.gushi)
    return uow.audit_detail


async def test_steps_are_audited_with_each_changed_field_before_and_after() -> None:
    world = World()
    await world.add_member()
    uow = world.gushi.uow()
    result = await handlers.register_outflow(uow, **s.fields(outflow(world.member_id)))
    world.movement_id = UUID(result.body["movement_id"])
    world.deliver(world.gushi, world.chaoyang)
    assert uow.audit_detail["certificate"] == "411525-2026-000001"
    registered = uow.audit_detail["changes"]
    assert registered["origin_group.status"] == {"before": None, "after": "registered"}
    assert registered["origin_group.reason.kind"] == {"before": None, "after": "work"}
    assert "origin_group.changed_at" not in registered
    assert (await _audited(world, world.gushi, "details"))["changes"] == {
        "origin_group.destination.place": {
            "before": "北京市朝阳区十八里店乡",
            "after": "北京市朝阳区小红门乡",
        },
        "origin_group.version": {"before": 1, "after": 2},
    }
    cancelled = (await _audited(world, world.gushi, "cancel"))["changes"]
    assert cancelled["origin_group.status"] == {"before": "registered", "after": "cancelled"}


async def test_a_host_step_is_audited_at_the_host_with_its_group() -> None:
    world = World()
    await world.register()
    changes = (await _audited(world, world.chaoyang, "check-in"))["changes"]
    assert changes["host_group.status"] == {"before": None, "after": "checked_in"}
    assert changes["host_group.host_org.org_id"] == {
        "before": None,
        "after": str(world.chaoyang.branch.org_id),
    }


async def test_a_new_member_is_audited_with_its_fields() -> None:
    world = World()
    body = s.NewMember(org_id=world.gushi.branch.org_id, name="王芳", joined_on=date(2001, 7, 1))
    uow = world.gushi.uow()
    await handlers.add_member(uow, **s.fields(body))
    changes = uow.audit_detail["changes"]
    assert changes["member.name"] == {"before": None, "after": "王芳"}
    assert changes["member.org_id"] == {"before": None, "after": str(world.gushi.branch.org_id)}
    assert "member.member_id" not in changes


# -- statistics ------------------------------------------------------------------------------


async def _two_branches() -> World:
    """Gushi: 张建国 (first branch) away to Chaoyang twice (the first stay returned),
    李明 (other branch) away to Changping; all departed 2026-02-20 or later."""
    world = World()
    await world.register()
    await world.step("return")  # back on 2026-03-08
    zhang = world.member_id
    result = await world.gushi.run(
        lambda uow: handlers.register_outflow(
            uow, **s.fields(outflow(zhang).model_copy(update={"period": _period(3, 9)}))
        )
    )
    assert result.status == 201
    li = s.NewMember(
        org_id=world.gushi.other_branch.org_id, name="李明", joined_on=date(2001, 7, 1)
    )
    added = await world.gushi.run(lambda uow: handlers.add_member(uow, **s.fields(li)))
    li_id = UUID(added.body["member_id"])
    to_changping = outflow(li_id).model_copy(
        update={"destination": Destination(jurisdiction=CHANGPING, place="北京市昌平区回龙观")}
    )
    await world.gushi.run(lambda uow: handlers.register_outflow(uow, **s.fields(to_changping)))
    return world


def _period(month: int, day: int) -> Period:
    return Period(departed_on=date(2026, month, day))


async def test_statistics_count_movements_and_distinct_members_by_branch() -> None:
    world = await _two_branches()
    stats = await world.gushi.run(
        lambda uow: queries.statistics(uow, None, group_by=GroupBy.BRANCH)
    )
    assert (stats["movements"], stats["members"]) == (3, 2)
    assert {g["name"]: (g["movements"], g["members"], g["open"]) for g in stats["groups"]} == {
        "第一党支部": (2, 1, 1),
        "第二党支部": (1, 1, 1),
    }
    later = await world.gushi.run(
        lambda uow: queries.statistics(
            uow, None, since=date(2026, 3, 9), until=date(2026, 3, 31), group_by=GroupBy.PARTNER
        )
    )
    assert (later["movements"], later["members"]) == (2, 2)  # the first stay ended 03-08
    assert {g["key"]: g["movements"] for g in later["groups"]} == {CHAOYANG: 1, CHANGPING: 1}
    only = await world.gushi.run(lambda uow: queries.statistics(uow, None, partner=CHANGPING))
    assert (only["movements"], only["members"], only["groups"]) == (1, 1, [])
    secretary = world.gushi.key(Role.SECRETARY, world.gushi.other_branch)
    own = await world.gushi.run(lambda uow: queries.statistics(uow, None), secretary)
    assert (own["movements"], own["members"]) == (1, 1)


async def test_statistics_refuse_an_unknown_partner_and_a_reversed_period() -> None:
    world = World()
    with pytest.raises(Invalid) as refused:
        await world.gushi.run(lambda uow: queries.statistics(uow, None, partner="320106"))
    assert refused.value.field == "partner"
    with pytest.raises(Invalid) as reversed_:
        await world.gushi.run(
            lambda uow: queries.statistics(
                uow, None, since=date(2026, 3, 2), until=date(2026, 3, 1)
            )
        )
    assert reversed_.value.field == "to"


# -- queues ---------------------------------------------------------------------------------


async def test_queues_are_the_callers_organizations_and_filter_by_kind_and_partner() -> None:
    world = await _two_branches()
    everything = await world.gushi.run(lambda uow: queries.work_queues(uow, None))
    items = [i for q in everything.values() for i in q]
    assert sorted(i["member"] for i in items) == ["张建国", "李明"]
    assert {i["org_name"] for i in items} == {"第一党支部", "第二党支部"}
    only = await world.gushi.run(
        lambda uow: queries.work_queues(uow, None, queue=Queue.WAITING, partner=CHANGPING)
    )
    assert list(only) == ["waiting"]
    assert [(i["member"], i["partner"]) for i in only["waiting"]] == [("李明", CHANGPING)]
    branch = world.gushi.key(Role.SECRETARY, world.gushi.branch)
    mine = await world.gushi.run(lambda uow: queries.work_queues(uow, None), branch)
    assert [i["member"] for q in mine.values() for i in q] == ["张建国"]
    with pytest.raises(Denied):
        await world.gushi.run(
            lambda uow: queries.work_queues(uow, world.gushi.other_branch.org_id), branch
        )
    with pytest.raises(Invalid) as refused:
        await world.gushi.run(lambda uow: queries.work_queues(uow, None, partner=GUSHI))
    assert refused.value.field == "partner"


async def test_a_host_branch_sees_its_arrival_once_it_checked_the_member_in() -> None:
    world = World()
    await world.register()
    branch = world.chaoyang.key(Role.SECRETARY, world.chaoyang.branch)
    before = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None), branch)
    assert [i for q in before.values() for i in q] == []  # the root's intake holds it
    intake = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None, queue=Queue.TO_DO))
    assert [i["org_id"] for i in intake["to_do"]] == [str(world.chaoyang.root.org_id)]
    await world.step("check-in")
    await world.step("lost-contact")
    after = await world.chaoyang.run(lambda uow: queries.work_queues(uow, None), branch)
    assert [(i["member"], i["org_name"]) for i in after["to_do"]] == [("张建国", "第一党支部")]


# -- the audit log ---------------------------------------------------------------------------


async def test_the_audit_log_filters_by_actor_and_time() -> None:
    world = World()
    secretary = world.gushi.key(Role.SECRETARY, world.gushi.branch)
    operator = world.gushi.key(Role.OPERATOR)
    log = world.gushi.uow().audit
    for hours, who, action in (
        (0, operator, "member.add"),
        (1, secretary, "movement.register"),
        (2, secretary, "movement.update_details"),
    ):
        assert isinstance(log, FakeAuditLog)
        log.now = NOW + timedelta(hours=hours)  # as the runner writes each request's row
        await log.record(
            actor=who.actor, role=who.role.value, action=action, target=None, outcome="ok",
            detail={}, trace_id=None,
        )  # fmt: skip
    everyone = await world.gushi.run(lambda uow: queries.audit_entries(uow))
    assert [r["action"] for r in everyone] == [
        "movement.update_details",
        "movement.register",
        "member.add",
    ]
    theirs = await world.gushi.run(lambda uow: queries.audit_entries(uow, actor=secretary.actor))
    assert [r["action"] for r in theirs] == ["movement.update_details", "movement.register"]
    cut = NOW + timedelta(hours=1, minutes=30)
    since = await world.gushi.run(
        lambda uow: queries.audit_entries(uow, actor=secretary.actor, since=cut)
    )
    assert [r["action"] for r in since] == ["movement.update_details"]
    until = await world.gushi.run(
        lambda uow: queries.audit_entries(uow, since=NOW, until=cut, actor=secretary.actor)
    )
    assert [r["action"] for r in until] == ["movement.register"]
    with pytest.raises(Invalid) as refused:
        await world.gushi.run(lambda uow: queries.audit_entries(uow, since=cut, until=NOW))
    assert refused.value.field == "until"
    with pytest.raises(Denied):
        await world.gushi.run(lambda uow: queries.audit_entries(uow), secretary)
