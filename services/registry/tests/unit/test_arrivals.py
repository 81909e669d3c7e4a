"""Arrivals reach a person, in memory: an expected member lands in the host's intake (the
root: its queue, nobody else's); a host secretary assigns it to a branch, whose secretaries
then see it and check the member in; another branch sees nothing. Organizations are listed
within a subtree and their names and contacts edited field by field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import HostGroupChanged, HostStatus, MovementStep
from yixian.registry.domain import (
    AlreadyExists,
    Invalid,
    InvalidTransition,
    NotFound,
    NotOwner,
    OrgKind,
    Side,
)
from yixian.registry.domain.member import child_path
from yixian.registry.entrypoints import schemas as s
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Denied, Result
from yixian.runtime.apikeys import Principal, Role

from .fakes import FakeUnitOfWork
from .test_handlers import CHAOYANG, GUSHI, TOPICS, Node, World


def _queued(queues: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str]]:
    return [(q, e["movement_id"], e["side"]) for q, entries in queues.items() for e in entries]


async def _assign(
    world: World, org_id: UUID, who: Principal | None = None
) -> tuple[Result, FakeUnitOfWork]:
    assert world.movement_id is not None
    movement_id = world.movement_id
    uow = world.chaoyang.uow(who)
    result = await handlers.assign(uow, movement_id, org_id=org_id)
    world.deliver(world.chaoyang, world.gushi)
    return result, uow


async def _queues(node: Node, who: Principal) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = await node.run(
        lambda uow: queries.work_queues(uow, None), who
    )
    return found


async def test_an_arrival_with_no_hint_lands_in_the_intake_and_nowhere_else() -> None:
    world = World()
    await world.register()
    host = world.chaoyang
    intake = await _queues(host, host.key(Role.SECRETARY))
    (entry,) = intake["to_do"]
    assert (entry["movement_id"], entry["side"], entry["assigned_to"]) == (
        str(world.movement_id),
        "host",
        None,
    )
    assert entry["reason"].startswith("member expected: assign an organization")
    branch = host.key(Role.SECRETARY, host.branch)
    assert _queued(await _queues(host, branch)) == []
    with pytest.raises(Denied):
        await host.run(lambda uow: handlers.confirm_check_in(
            uow, world.movement_id or uuid4(), host_org_id=host.branch.org_id, branch_id=None,
            checked_in_at=None), branch)  # fmt: skip


async def test_assigned_to_a_branch_its_secretary_sees_and_checks_in_the_member() -> None:
    world = World()
    await world.register()
    host, movement_id = world.chaoyang, world.movement_id
    assert movement_id is not None
    result, uow = await _assign(world, host.branch.org_id, host.key(Role.SECRETARY))
    group = result.body["host_group"]
    assert (group["status"], group["host_org"]["org_id"]) == ("expected", str(host.branch.org_id))
    changes = uow.audit_detail["changes"]
    assert changes["host_group.host_org.org_id"] == {
        "before": None,
        "after": str(host.branch.org_id),
    }
    assert changes["host_group.host_org.name"] == {"before": None, "after": host.branch.name}
    ((event, _, pair),) = host.tables.outbox
    assert isinstance(event.data, HostGroupChanged)
    assert (event.data.step, pair) == (MovementStep.ASSIGNED, (TOPICS.pair(CHAOYANG, GUSHI), GUSHI))
    assert host.tables.movements[movement_id].host_org_id == host.branch.org_id

    branch = host.key(Role.SECRETARY, host.branch)
    (entry,) = (await _queues(host, branch))["to_do"]
    assert entry["assigned_to"]["org_id"] == str(host.branch.org_id)
    assert entry["reason"].startswith("member expected: confirm check-in")
    other = host.key(Role.SECRETARY, host.other_branch)
    assert _queued(await _queues(host, other)) == []
    with pytest.raises(Denied):
        await host.run(lambda uow: queries.get_movement(uow, movement_id), other)

    checked: Result = await host.run(
        lambda uow: handlers.confirm_check_in(
            uow, movement_id, host_org_id=None, branch_id=None, checked_in_at=None
        ),
        branch,
    )  # the organization it was assigned to
    world.deliver(host, world.gushi)
    assert checked.body["host_group"]["status"] == HostStatus.CHECKED_IN.value
    assert checked.body["host_group"]["host_org"]["org_id"] == str(host.branch.org_id)
    at_origin = world.gushi.tables.movements[movement_id]
    assert at_origin.host_group is not None
    assert at_origin.host_group.status is HostStatus.CHECKED_IN
    visiting = await host.run(lambda uow: queries.members_visiting(uow, None), branch)
    assert [v["movement_id"] for v in visiting] == [str(movement_id)]


async def test_the_same_assignment_again_changes_nothing_and_another_moves_the_member() -> None:
    world = World()
    await world.register()
    host, movement_id = world.chaoyang, world.movement_id
    assert movement_id is not None
    await _assign(world, host.branch.org_id)
    queued, kept = len(host.tables.outbox), len(host.tables.history)
    again, uow = await _assign(world, host.branch.org_id)
    assert uow.nothing_changed
    assert again.body["host_group"]["version"] == 1
    assert (len(host.tables.outbox), len(host.tables.history)) == (queued, kept)

    moved, uow = await _assign(world, host.other_branch.org_id)
    assert moved.body["host_group"]["version"] == 2
    assert uow.audit_detail["changes"]["host_group.host_org.org_id"]["before"] == str(
        host.branch.org_id
    )
    assert host.tables.movements[movement_id].host_org_id == host.other_branch.org_id
    first = host.key(Role.SECRETARY, host.branch)
    assert _queued(await _queues(host, first)) == []
    with pytest.raises(Denied):  # the first branch answers for the member no more
        await _assign(world, host.branch.org_id, first)


async def test_a_checked_in_member_moved_to_another_branch_is_present_there() -> None:
    world = World()
    await world.register()
    host = world.chaoyang
    await _assign(world, host.branch.org_id)
    await world.step("check-in")
    result, _ = await _assign(world, host.other_branch.org_id)
    assert result.body["host_group"]["status"] == HostStatus.CHECKED_IN.value
    present = await host.run(lambda uow: queries.present_in_area(uow, host.other_branch.org_id))
    assert [p["member_id"] for p in present] == [str(world.member_id)]


async def test_an_assignment_names_its_field_when_refused() -> None:
    world = World()
    await world.register()
    host = world.chaoyang
    committee_id = uuid4()
    committee = replace(
        host.branch,
        org_id=committee_id,
        name="驻豫工委",
        kind=OrgKind.WORKING_COMMITTEE,
        path=child_path(host.root, committee_id),
        jurisdiction=GUSHI,
    )
    host.tables.organizations[committee_id] = committee
    branch = host.key(Role.SECRETARY, host.branch)
    await _assign(world, host.branch.org_id)
    cases: list[tuple[UUID, Principal | None, type[Exception]]] = [
        (uuid4(), None, NotFound),  # no such organization
        (world.gushi.branch.org_id, None, NotFound),  # the origin's, not this node's
        (host.other_branch.org_id, branch, NotFound),  # outside the caller's subtree
        (committee_id, None, Invalid),  # serves another area
    ]
    for org_id, who, refusal in cases:
        with pytest.raises(refusal) as refused:
            await _assign(world, org_id, who)
        assert refused.value.field == "org_id"  # type: ignore[attr-defined]
    assert host.tables.movements[world.movement_id or uuid4()].host_org_id == host.branch.org_id


async def test_an_auditor_assigns_nothing_and_the_origin_cannot_assign() -> None:
    world = World()
    await world.register()
    with pytest.raises(Denied):
        await _assign(world, world.chaoyang.branch.org_id, world.chaoyang.key(Role.AUDITOR))
    with pytest.raises(NotOwner, match="only host node 110105 writes"):
        await world.gushi.run(
            lambda uow: handlers.assign(
                uow, world.movement_id or uuid4(), org_id=world.gushi.branch.org_id
            )
        )
    assert world.chaoyang.tables.movements[world.movement_id or uuid4()].host_group is None


async def test_check_in_of_an_unassigned_member_needs_an_organization() -> None:
    world = World()
    await world.register()
    with pytest.raises(Invalid) as refused:
        await world.chaoyang.run(
            lambda uow: handlers.confirm_check_in(
                uow, world.movement_id or uuid4(), host_org_id=None, branch_id=None,
                checked_in_at=None,
            )
        )  # fmt: skip
    assert refused.value.field == "host_org_id"


async def test_an_assigned_member_not_checked_in_pays_no_dues_here() -> None:
    world = World()
    await world.register()
    await _assign(world, world.chaoyang.branch.org_id)
    with pytest.raises(InvalidTransition):
        await world.step("dues")


async def test_a_forwarded_member_is_not_assigned() -> None:
    world = World()
    await world.register()
    await world.step("forward")
    with pytest.raises(InvalidTransition):
        await _assign(world, world.chaoyang.branch.org_id)


# -- organizations -------------------------------------------------------------------------


async def test_organizations_are_listed_within_the_callers_subtree() -> None:
    node = World().chaoyang
    everyone = await node.run(queries.organizations, node.key(Role.AUDITOR))
    assert everyone[0]["org_id"] == str(node.root.org_id)
    assert {o["org_id"] for o in everyone} == {
        str(o.org_id) for o in (node.root, node.branch, node.other_branch)
    }
    mine = await node.run(queries.organizations, node.key(Role.SECRETARY, node.branch))
    assert [(o["org_id"], o["contact_sms"]) for o in mine] == [(str(node.branch.org_id), None)]


async def _update(node: Node, org_id: UUID, who: Principal | None = None, **changes: Any) -> Any:
    uow = node.uow(who)
    patch = s.OrganizationUpdate.model_validate(changes)
    result = await handlers.update_organization(uow, org_id, changes=patch.sent())
    return result, uow


async def test_an_operator_gives_the_root_its_contacts_audited_before_and_after() -> None:
    node = World().chaoyang
    root = node.root.org_id
    result, uow = await _update(
        node, root, contact_email="zzb@chaoyang.example", contact_sms="13900000001"
    )
    assert (result.status, result.body["changed"]) == (200, ["contact_email", "contact_sms"])
    assert uow.audit_detail["changes"]["contact_sms"] == {"before": None, "after": "13900000001"}
    result, uow = await _update(node, root, name="朝阳区委组织部", contact_sms=None)
    assert result.body["changed"] == ["contact_sms", "name"]
    assert result.body["contact_email"] == "zzb@chaoyang.example"
    assert node.tables.organizations[root].name == "朝阳区委组织部"
    assert node.tables.contacts[root]["contact_sms"] is None
    again, uow = await _update(node, root, name="朝阳区委组织部")
    assert (again.body["changed"], uow.nothing_changed) == ([], True)


async def test_an_organization_update_names_its_field_when_refused() -> None:
    node = World().chaoyang
    with pytest.raises(Invalid) as refused:
        await _update(node, node.branch.org_id, name=None)
    assert refused.value.field == "name"
    with pytest.raises(AlreadyExists) as duplicate:
        await _update(node, node.branch.org_id, name=node.other_branch.name)
    assert duplicate.value.field == "name"
    with pytest.raises(NotFound) as outside:
        await _update(
            node, node.other_branch.org_id, node.key(Role.OPERATOR, node.branch), name="x"
        )
    assert outside.value.field == "org_id"
    with pytest.raises(Denied):
        await _update(node, node.branch.org_id, node.key(Role.SECRETARY, node.branch), name="x")
    with pytest.raises(Invalid):
        await _update(node, node.branch.org_id)
    assert node.tables.organizations[node.branch.org_id].name == "第一党支部"


def test_assign_is_a_host_step() -> None:
    from yixian.registry.entrypoints.routers.movements import STEPS

    (step,) = [step for step in STEPS if step.path == "assign"]
    assert (step.side, step.action) == (Side.HOST, "movement.assign")
