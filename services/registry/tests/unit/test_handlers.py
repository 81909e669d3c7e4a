"""The registry's handlers on a node held in memory (``fakes.py``): registration, every
movement step of the HTTP API's table with its refusals, the participation and member
duplicate rules, and what the queries show. No database, no broker.

Two nodes, Gushi (the origin) and Chaoyang (the host); ``World.deliver`` does what the
sync service does: it copies one node's own group of a movement to the other node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import (
    ActivityKind,
    Contact,
    Destination,
    DuesPeriod,
    HostStatus,
    OriginStatus,
    OutflowReason,
    OutflowReasonKind,
    Period,
    TopicNames,
    TransferDecision,
)
from yixian.registry.domain import (
    AlreadyExists,
    Conflict,
    Deadlines,
    NotOwner,
    Organization,
    OrgKind,
    Side,
)
from yixian.registry.domain.member import child_path
from yixian.registry.entrypoints import schemas as s
from yixian.registry.entrypoints.routers.movements import STEPS, Step
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Denied, NodeConfig, Request, Result
from yixian.runtime.apikeys import Principal, Role

from .fakes import FakeUnitOfWork, NodeTables

GUSHI, CHAOYANG, CHANGPING = "411525", "110105", "110114"
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
TOPICS = TopicNames()


@dataclass
class Node:
    """One registry in memory: its tables, its root and two branches, and its keys."""

    code: str
    tables: NodeTables
    root: Organization
    branch: Organization
    other_branch: Organization
    now: datetime = NOW
    config: NodeConfig = field(init=False)

    def __post_init__(self) -> None:
        self.config = NodeConfig(
            node=self.code,
            topics=TOPICS,
            deadlines=Deadlines(),
            id_hash_key=b"a node's own secret, 32 bytes ok",
            partners=frozenset({GUSHI, CHAOYANG, CHANGPING}) - {self.code},
        )

    def key(self, role: Role, org: Organization | None = None) -> Principal:
        org = org or self.root
        return Principal(
            key_id=uuid4(),
            name=f"{role.value}-key",
            role=role,
            org_id=org.org_id,
            org_path=org.path,
            node_wide=org.parent_id is None,
        )

    def uow(self, who: Principal | None = None) -> FakeUnitOfWork:
        request = Request(
            principal=who or self.key(Role.OPERATOR),
            now=self.now,
            traceparent=f"00-{uuid4().hex}-{uuid4().hex[:16]}-01",
        )
        return FakeUnitOfWork(self.config, request, self.tables)

    async def run(
        self, work: Callable[[FakeUnitOfWork], Awaitable[Any]], who: Principal | None = None
    ) -> Any:
        return await work(self.uow(who))


def _org(name: str, parent: Organization | None, jurisdiction: str) -> Organization:
    org_id = uuid4()
    return Organization(
        org_id=org_id,
        name=name,
        kind=OrgKind.COMMITTEE if parent is None else OrgKind.BRANCH,
        parent_id=parent.org_id if parent else None,
        path=child_path(parent, org_id),
        jurisdiction=jurisdiction,
    )


def make_node(code: str) -> Node:
    tables = NodeTables(code)
    root = _org(f"{code} 组织部", None, code)
    branch, other = _org("第一党支部", root, code), _org("第二党支部", root, code)
    for org in (root, branch, other):
        tables.organizations[org.org_id] = org
    return Node(code, tables, root, branch, other)


@dataclass
class World:
    """Gushi and Chaoyang, one member of Gushi's first branch, and its movement."""

    gushi: Node = field(default_factory=lambda: make_node(GUSHI))
    chaoyang: Node = field(default_factory=lambda: make_node(CHAOYANG))
    member_id: UUID = field(default_factory=uuid4)
    movement_id: UUID | None = None

    async def add_member(self, name: str = "张建国") -> UUID:
        body = s.NewMember(org_id=self.gushi.branch.org_id, name=name, joined_on=date(2008, 7, 1))
        result = await self.gushi.run(lambda uow: handlers.add_member(uow, **s.fields(body)))
        self.member_id = UUID(result.body["member_id"])
        return self.member_id

    async def register(self, who: Principal | None = None, name: str = "张建国") -> Result:
        await self.add_member(name)
        result: Result = await self.gushi.run(
            lambda uow: handlers.register_outflow(uow, **s.fields(outflow(self.member_id))), who
        )
        self.movement_id = UUID(result.body["movement_id"])
        self.deliver(self.gushi, self.chaoyang)
        return result

    def deliver(self, source: Node, target: Node) -> None:
        """What the sync service does: the source's own group, to the target's copy."""
        assert self.movement_id is not None
        mine = source.tables.movements[self.movement_id]
        if source.code == mine.origin:
            assert mine.origin_group is not None
            if self.movement_id not in target.tables.movements:
                target.tables.receive(mine.origin_group)
            target.tables.movements[self.movement_id].origin_group = mine.origin_group
        else:
            target.tables.movements[self.movement_id].host_group = mine.host_group

    async def step(self, path: str, node: Node | None = None, who: Principal | None = None) -> Any:
        """Take a step of the API's table at its side's node (or ``node``), and deliver."""
        found = next(step for step in STEPS if step.path == path)
        at = node or (self.gushi if found.side is Side.ORIGIN else self.chaoyang)
        assert self.movement_id is not None
        movement_id = self.movement_id
        result = await at.run(lambda uow: found.run(uow, movement_id, body_of(found, at)), who)
        self.deliver(at, self.chaoyang if at is self.gushi else self.gushi)
        return result


def outflow(member_id: UUID) -> s.OutflowRegistration:
    return s.OutflowRegistration(
        member_id=member_id,
        destination=Destination(jurisdiction=CHAOYANG, place="北京市朝阳区十八里店乡"),
        period=Period(departed_on=date(2026, 2, 20), expected_return_on=date(2027, 1, 31)),
        contact=Contact(phone="+86 138 0000 0000"),
        reason=OutflowReason(kind=OutflowReasonKind.WORK, text="在北京务工"),
    )


def body_of(step: Step, node: Node) -> s.Body | None:
    """A valid body for each step that has one, with ``node``'s organizations."""
    bodies: dict[str, s.Body] = {
        "details": s.DetailsUpdate(place="北京市朝阳区小红门乡"),
        "relocate": s.Relocation(
            destination=Destination(jurisdiction=CHANGPING, place="北京市昌平区回龙观"),
            departed_on=date(2026, 3, 5),
        ),
        "return": s.Return(returned_on=date(2026, 3, 8)),
        "transfer/request": s.TransferRequestBody(note="已在北京定居"),
        "assign": s.Assignment(org_id=node.branch.org_id),
        "check-in": s.CheckIn(
            host_org_id=node.branch.org_id, checked_in_at=NOW - timedelta(days=3)
        ),
        "reject": s.Rejection(reason="本组织查无此人"),
        "forward": s.Forwarding(forwarded_to=CHANGPING, reason="该党员在昌平区工作"),
        "lost-contact": s.LostContact(since=date(2026, 3, 8)),
        "participations": s.ParticipationBody(
            participation_id=uuid4(),
            kind=ActivityKind.THEME_DAY,
            title="三月主题党日",
            attended_at=NOW - timedelta(days=1),
        ),
        "transfer/reply": s.TransferReplyBody(decision=TransferDecision.ACCEPTED),
        "dues": s.DuesPaid(
            period=DuesPeriod(from_month="2026-03", to_month="2026-03"), amount_fen=4500
        ),
        "report-received": s.ReportReceived(reported_on=date(2026, 3, 9)),
        "enrol": s.Enrolment(),
        "origin/lost-contact": s.LostContact(since=date(2026, 3, 8)),
        "suspend": s.Suspension(reason="失联后经多方查找仍无法联系", force=True),
        "reinstate": s.Reinstatement(reason="本人已与党组织恢复联系"),
        "remove": s.Removal(reason="停止党籍后仍无法联系", force=True),
        "report": s.Report(reported_on=date(2026, 3, 9)),
    }
    if step.body is None:
        return None
    body = bodies[step.path]
    assert isinstance(body, step.body)
    return body


BEFORE: dict[str, list[str]] = {
    "details": [],
    "relocate": [],
    "cancel": [],
    "return": [],
    "transfer/request": ["check-in"],
    "transfer/withdraw": ["check-in", "transfer/request"],
    "transfer/complete": ["check-in", "transfer/request", "transfer/reply"],
    "assign": [],
    "check-in": [],
    "reject": [],
    "forward": [],
    "forward/follow": ["forward"],
    "lost-contact": ["check-in"],
    "restore-contact": ["check-in", "lost-contact"],
    "participations": ["check-in"],
    "transfer/reply": ["check-in", "transfer/request"],
    "dues": ["check-in"],
    "report-received": ["check-in"],
    "enrol": ["check-in", "transfer/request", "transfer/reply", "transfer/complete"],
    "origin/lost-contact": [],
    "origin/restore-contact": ["origin/lost-contact"],
    "suspend": ["origin/lost-contact"],
    "reinstate": ["origin/lost-contact", "suspend"],
    "remove": ["origin/lost-contact", "suspend"],
    "report": [],
}
"""The steps that bring a registered movement to where each step may be taken."""

CREATED = {"relocate", "participations", "forward/follow", "enrol"}
"""Steps answered 201: they add a movement, an attendance or a member."""


def test_every_step_of_the_api_has_a_scenario() -> None:
    assert sorted(BEFORE) == sorted(step.path for step in STEPS)
    assert len({step.action for step in STEPS}) == len(STEPS)


# -- registration --------------------------------------------------------------------------


async def test_registering_an_outflow_stores_the_origin_group_and_queues_its_event() -> None:
    world = World()
    result = await world.register()
    assert result.status == 201
    assert result.body["side"] == "origin"
    assert result.body["state"] == "awaiting_check_in"
    stored = world.gushi.tables.movements[world.movement_id or uuid4()]
    assert stored.member_id == world.member_id
    assert stored.origin_org_id == world.gushi.branch.org_id
    assert stored.origin_group is not None
    assert stored.origin_group.status is OriginStatus.REGISTERED
    ((event, local, pair),) = world.gushi.tables.outbox
    assert event.type == "yixian.movement.origin_group.v1"
    assert event.subject == str(world.movement_id)
    assert local == TOPICS.local(GUSHI)
    assert pair == (TOPICS.pair(GUSHI, CHAOYANG), CHAOYANG)
    assert [h["group_name"] for h in world.gushi.tables.history] == ["origin"]


async def test_a_member_with_an_open_movement_is_not_registered_again() -> None:
    world = World()
    await world.register()
    with pytest.raises(AlreadyExists) as refused:
        await world.gushi.run(
            lambda uow: handlers.register_outflow(uow, **s.fields(outflow(world.member_id)))
        )
    assert refused.value.field == "member_id"
    assert len(world.gushi.tables.movements) == 1


@pytest.mark.parametrize(
    ("role", "where"), [(Role.AUDITOR, "root"), (Role.SECRETARY, "other_branch")]
)
async def test_registration_needs_a_writer_of_the_members_subtree(role: Role, where: str) -> None:
    world = World()
    await world.add_member()
    who = world.gushi.key(role, getattr(world.gushi, where))
    with pytest.raises(Denied):
        await world.gushi.run(
            lambda uow: handlers.register_outflow(uow, **s.fields(outflow(world.member_id))), who
        )
    assert world.gushi.tables.movements == {}
    assert world.gushi.tables.outbox == []


# -- every step of the table -----------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.path)
async def test_each_step_changes_its_sides_group_and_queues_an_event(step: Step) -> None:
    world = World()
    await world.register()
    for earlier in BEFORE[step.path]:
        await world.step(earlier)
    node = world.gushi if step.side is Side.ORIGIN else world.chaoyang
    partner = CHAOYANG if step.side is Side.ORIGIN else GUSHI
    assert world.movement_id is not None
    before = await node.uow().movements.get(world.movement_id)
    group_before = before.origin_group if step.side is Side.ORIGIN else before.host_group
    queued = len(node.tables.outbox)

    result = await world.step(step.path)

    assert result.status == (201 if step.path in CREATED else 200)
    after = await node.uow().movements.get(world.movement_id)
    group = after.origin_group if step.side is Side.ORIGIN else after.host_group
    assert group is not None
    assert group.version == (group_before.version + 1 if group_before else 1)
    events = node.tables.outbox[queued:]
    assert events, "a step that changed a group queues its event"
    assert all(pair is not None and pair[1] for _, _, pair in events)
    assert events[0][2] == (TOPICS.pair(node.code, partner), partner)
    kept = [h for h in node.tables.history if h["movement_id"] == world.movement_id]
    assert kept[-1]["version"] == group.version


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.path)
async def test_each_step_is_denied_to_a_reader_and_to_another_subtree(step: Step) -> None:
    world = World()
    await world.register()
    for earlier in BEFORE[step.path]:
        await world.step(earlier)
    node = world.gushi if step.side is Side.ORIGIN else world.chaoyang
    queued = len(node.tables.outbox)
    for who in (node.key(Role.AUDITOR), node.key(Role.SECRETARY, node.other_branch)):
        with pytest.raises(Denied):
            await world.step(step.path, node, who)
    assert len(node.tables.outbox) == queued


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.path)
async def test_each_step_is_refused_at_the_other_side(step: Step) -> None:
    world = World()
    await world.register()
    other = world.chaoyang if step.side is Side.ORIGIN else world.gushi
    assert world.movement_id is not None
    kept = other.tables.movements[world.movement_id]
    groups, queued = (kept.origin_group, kept.host_group), len(other.tables.outbox)
    with pytest.raises(NotOwner):
        await world.step(step.path, other)
    assert (kept.origin_group, kept.host_group) == groups
    assert len(other.tables.outbox) == queued


async def test_a_secretary_of_the_host_branch_checks_in_and_then_answers_for_the_member() -> None:
    world = World()
    await world.register()
    secretary = world.chaoyang.key(Role.SECRETARY, world.chaoyang.branch)
    with pytest.raises(Denied):  # before check-in the host's root answers for the movement
        await world.step("check-in", who=secretary)
    await world.step("check-in")
    result = await world.step("lost-contact", who=secretary)
    assert result.body["host_group"]["status"] == HostStatus.LOST_CONTACT.value


async def test_relocation_closes_the_movement_and_opens_a_linked_one() -> None:
    world = World()
    await world.register()
    result = await world.step("relocate")
    successor_id = UUID(result.body["movement_id"])
    assert result.body["host"] == CHANGPING
    assert result.body["previous"]["movement_id"] == str(world.movement_id)
    successor = world.gushi.tables.movements[successor_id]
    assert successor.member_id == world.member_id
    assert successor.origin_org_id == world.gushi.branch.org_id
    pairs = [pair for _, _, pair in world.gushi.tables.outbox]
    assert (TOPICS.pair(GUSHI, CHANGPING), CHANGPING) in pairs


# -- participations ---------------------------------------------------------------------------


async def _checked_in() -> World:
    world = World()
    await world.register()
    await world.step("check-in")
    return world


def _attendance(participation_id: UUID, title: str = "三月主题党日") -> s.ParticipationBody:
    return s.ParticipationBody(
        participation_id=participation_id,
        kind=ActivityKind.THEME_DAY,
        title=title,
        attended_at=NOW - timedelta(days=1),
    )


async def _attend(world: World, body: s.ParticipationBody, movement_id: UUID) -> Result:
    result: Result = await world.chaoyang.run(
        lambda uow: handlers.record_participation(uow, movement_id, **s.fields(body))
    )
    return result


async def test_a_participation_sent_again_is_recorded_once() -> None:
    world = await _checked_in()
    assert world.movement_id is not None
    body = _attendance(uuid4())
    first = await _attend(world, body, world.movement_id)
    queued = len(world.chaoyang.tables.outbox)
    again = await _attend(world, body, world.movement_id)
    assert (first.status, first.body["duplicate"]) == (201, False)
    assert (again.status, again.body["duplicate"]) == (200, True)
    assert again.body["host_group"] == first.body["host_group"]
    assert again.body["host_group"]["participation"]["attended"] == 1
    assert len(world.chaoyang.tables.outbox) == queued  # nothing new to send
    assert len(world.chaoyang.tables.participations) == 1


async def test_a_participation_id_reused_for_another_attendance_is_a_conflict() -> None:
    world = await _checked_in()
    assert world.movement_id is not None
    participation_id = uuid4()
    await _attend(world, _attendance(participation_id), world.movement_id)
    with pytest.raises(Conflict) as refused:
        await _attend(world, _attendance(participation_id, "支部大会"), world.movement_id)
    assert refused.value.field == "participation_id"
    assert "another attendance" in refused.value.message


async def test_a_participation_id_reused_for_another_movement_is_a_conflict() -> None:
    world = await _checked_in()
    first_movement = world.movement_id
    assert first_movement is not None
    participation_id = uuid4()
    await _attend(world, _attendance(participation_id), first_movement)
    other = World(gushi=world.gushi, chaoyang=world.chaoyang)  # a second member, same nodes
    await other.register(name="李明")
    await other.step("check-in")
    assert other.movement_id is not None
    with pytest.raises(Conflict) as refused:
        await _attend(world, _attendance(participation_id), other.movement_id)
    assert "another movement" in refused.value.message


# -- members ---------------------------------------------------------------------------------


async def test_a_member_registered_twice_is_already_there() -> None:
    node = make_node(GUSHI)
    body = s.NewMember(org_id=node.branch.org_id, name="王芳", joined_on=date(2001, 7, 1))
    first = await node.run(lambda uow: handlers.add_member(uow, **s.fields(body)))
    assert first.status == 201
    with pytest.raises(AlreadyExists) as refused:
        await node.run(lambda uow: handlers.add_member(uow, **s.fields(body)))
    assert refused.value.field == "name"
    assert list(node.tables.members) == [UUID(first.body["member_id"])]


async def test_a_national_id_belongs_to_one_member() -> None:
    node = make_node(GUSHI)

    def member(name: str) -> s.NewMember:
        return s.NewMember(
            org_id=node.branch.org_id,
            name=name,
            joined_on=date(2001, 7, 1),
            national_id="11010519491231002X",
        )

    first, second = member("王芳"), member("王芳芳")
    result = await node.run(lambda uow: handlers.add_member(uow, **s.fields(first)))
    assert result.body["national_id_masked"] == "110105********002X"
    with pytest.raises(AlreadyExists) as refused:
        await node.run(lambda uow: handlers.add_member(uow, **s.fields(second)))
    assert refused.value.field == "national_id"
    assert len(node.tables.members) == 1


async def test_an_auditor_adds_no_member() -> None:
    node = make_node(GUSHI)
    body = s.NewMember(org_id=node.branch.org_id, name="王芳", joined_on=date(2001, 7, 1))
    with pytest.raises(Denied):
        await node.run(
            lambda uow: handlers.add_member(uow, **s.fields(body)), node.key(Role.AUDITOR)
        )
    assert node.tables.members == {}


# -- queries ---------------------------------------------------------------------------------


async def test_away_visiting_and_present_follow_the_movement() -> None:
    world = World()
    await world.register()
    away = await world.gushi.run(lambda uow: queries.members_away(uow, None))
    assert [m["movement_id"] for m in away] == [str(world.movement_id)]
    present = await world.gushi.run(
        lambda uow: queries.present_in_area(uow, world.gushi.root.org_id)
    )
    assert present == []  # the only member is away
    await world.step("check-in")
    visiting = await world.chaoyang.run(
        lambda uow: queries.members_visiting(uow, world.chaoyang.branch.org_id)
    )
    assert [m["movement_id"] for m in visiting] == [str(world.movement_id)]
    present = await world.chaoyang.run(
        lambda uow: queries.present_in_area(uow, world.chaoyang.branch.org_id)
    )
    assert [(p["presence"], p["member_id"]) for p in present] == [
        ("visiting", str(world.member_id))
    ]
    await world.step("return")
    assert await world.gushi.run(lambda uow: queries.members_away(uow, None)) == []


async def test_a_secretary_reads_no_movement_outside_the_subtree() -> None:
    world = World()
    await world.register()
    assert world.movement_id is not None
    movement_id = world.movement_id
    stranger = world.gushi.key(Role.SECRETARY, world.gushi.other_branch)
    with pytest.raises(Denied):
        await world.gushi.run(lambda uow: queries.get_movement(uow, movement_id), stranger)
    reader = world.gushi.key(Role.AUDITOR, world.gushi.branch)
    view = await world.gushi.run(lambda uow: queries.get_movement(uow, movement_id), reader)
    assert [h["version"] for h in view["history"]] == [1]
