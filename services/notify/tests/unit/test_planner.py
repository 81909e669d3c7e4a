"""The planner on two nodes held in memory (``fakes.py``): the brief's scenarios 1, 3 and 7
plan the expected notices, each once, from the node that sends it; a redelivered, repeated
or older event plans nothing new. No database, no broker.

``World.happen`` does what the registry, sync and the relay do for one change: the group
is stored at both nodes and its event appears on both local topics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from yixian.contracts import (
    ActivityKind,
    ActivityScheduled,
    Enrolment,
    FeedbackSummary,
    HostGroup,
    HostGroupChanged,
    HostStatus,
    MemberCard,
    MovementStep,
    OrganizationRef,
    OriginGroup,
    OriginGroupChanged,
    OriginStatus,
    ParticipationSummary,
    Standing,
    StandingDecision,
    TransferDecision,
    TransferReply,
    TransferRequest,
    make_event,
)
from yixian.contracts.examples import (
    AT,
    CHAOYANG,
    CHAOYANG_BRANCH,
    GUSHI,
    GUSHI_BRANCH,
    host_group,
    origin_group,
)
from yixian.notify.bootstrap import TEMPLATES
from yixian.notify.domain.notice import Notice, Person
from yixian.notify.domain.templates import Templates
from yixian.notify.service_layer.planner import Planner
from yixian.notify.service_layer.repositories import NoticeLog

from .fakes import FakeTransactions, NodeTables, Present

PHONE = "+86 138 0000 0000"  # the member's contact in the examples
CHAOYANG_ROOT = OrganizationRef(org_id=uuid4(), name="朝阳区委组织部")
GUSHI_ROOT = OrganizationRef(org_id=uuid4(), name="固始县委组织部")
TEMPLATE_SET = Templates(TEMPLATES)


@dataclass
class Node:
    code: str
    tables: NodeTables
    planner: Planner
    transactions: FakeTransactions

    async def deliver(self, *raws: bytes) -> int:
        """One batch of the local topic, planned in one unit of work, as the consumer does."""
        async with self.transactions() as uow:
            return await self.planner.plan_batch(uow, raws)

    def notices(self) -> list[tuple[str, str, str | None]]:
        return sorted((n.recipient, n.reason, n.address) for n in self.tables.notices.values())

    def notice(self, reason: str) -> Notice:
        (found,) = (n for n in self.tables.notices.values() if n.reason == reason)
        return found


def group_owner(group: OriginGroup | HostGroup) -> str:
    return GUSHI if isinstance(group, OriginGroup) else CHAOYANG


def _node(code: str) -> Node:
    tables = NodeTables(code)
    return Node(code, tables, Planner(code, TEMPLATE_SET), FakeTransactions(tables))


@dataclass
class World:
    """Gushi (the origin) and Chaoyang (the host), with the organizations the scenarios use."""

    gushi: Node = field(default_factory=lambda: _node(GUSHI))
    chaoyang: Node = field(default_factory=lambda: _node(CHAOYANG))
    events: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        gushi, chaoyang = self.gushi.tables, self.chaoyang.tables
        root = gushi.org(GUSHI_ROOT, email="zzb@gushi.example")
        gushi.org(GUSHI_BRANCH, parent=root.org_id, email="chenji@gushi.example")
        root = chaoyang.org(CHAOYANG_ROOT, email="secretary@chaoyang.example")
        chaoyang.org(CHAOYANG_BRANCH, parent=root.org_id, email="gushi-wc@chaoyang.example")

    async def happen(
        self, group: OriginGroup | HostGroup, step: MovementStep | None
    ) -> dict[str, int]:
        """The change at both nodes; how many notices each planned."""
        payload: OriginGroupChanged | HostGroupChanged
        if isinstance(group, OriginGroup):
            payload = OriginGroupChanged(group=group, step=step)
        else:
            payload = HostGroupChanged(group=group, step=step)
        raw = make_event(payload, node=group_owner(group), time=AT).encode()
        self.events.append(raw)
        planned = {}
        for node in (self.gushi, self.chaoyang):
            node.tables.keep(group)
            planned[node.code] = await node.deliver(raw)
        return planned

    async def redeliver(self, seed: int) -> int:
        """Every event again, shuffled, in batches of three, at both nodes."""
        raws = list(self.events)
        random.Random(seed).shuffle(raws)
        planned = 0
        for node in (self.gushi, self.chaoyang):
            for start in range(0, len(raws), 3):
                planned += await node.deliver(*raws[start : start + 3])
        return planned


def _at(days: int) -> datetime:
    return AT + timedelta(days=days)


def _origin(version: int, status: OriginStatus, **update: object) -> OriginGroup:
    return origin_group(version, status).model_copy(update={"changed_at": _at(version), **update})


def _host(version: int, **update: object) -> HostGroup:
    return host_group(version).model_copy(update={"changed_at": _at(10 + version), **update})


async def test_scenario_1_each_notice_once_from_the_node_that_sends_it() -> None:
    world = World()
    steps = MovementStep
    assert await world.happen(_origin(1, OriginStatus.REGISTERED), steps.REGISTERED) == {
        GUSHI: 1,  # the member: where and by when to check in
        CHAOYANG: 1,  # the host's secretary: a member is expected
    }
    assert await world.happen(_host(1), steps.CHECKED_IN) == {GUSHI: 1, CHAOYANG: 1}
    for attended in (1, 2, 3):  # three theme days: nobody is told
        summary = ParticipationSummary(attended=attended)
        changed = await world.happen(
            _host(1 + attended, participation=summary), steps.PARTICIPATION_RECORDED
        )
        assert changed == {GUSHI: 0, CHAOYANG: 0}
    assert await world.happen(_origin(2, OriginStatus.RETURNED), steps.RETURNED) == {
        GUSHI: 1,
        CHAOYANG: 1,
    }

    assert world.gushi.notices() == [
        ("member", "outflow_registered", PHONE),
        ("origin_secretary", "checked_in", "chenji@gushi.example"),
        ("origin_secretary", "returned", "chenji@gushi.example"),
    ]
    assert world.chaoyang.notices() == [
        ("host_secretary", "member_expected", "secretary@chaoyang.example"),  # the root: no hint
        ("host_secretary", "returned", "gushi-wc@chaoyang.example"),  # where M checked in
        ("member", "checked_in", PHONE),
    ]
    expected = world.chaoyang.notice("member_expected")
    assert expected.subject == "流动党员张建国将到本地报到"
    assert PHONE in expected.body
    assert (expected.channel, expected.status, expected.last_error) == ("email", "pending", None)
    told = world.chaoyang.notice("checked_in")
    assert (told.channel, told.member_id) == ("sms", origin_group().member.member_id)
    assert "已在固始县驻京流动党员第三支部报到" in told.body
    instructions = world.gushi.notice("outflow_registered")
    assert instructions.mandatory
    assert instructions.subject == "请到北京市朝阳区报到"  # a place, never a code
    assert "110105" not in instructions.body

    for seed in range(3):
        assert await world.redeliver(seed) == 0
    assert len(world.gushi.tables.notices) == len(world.chaoyang.tables.notices) == 3


async def test_a_batch_plans_what_its_events_plan_one_by_one() -> None:
    """The consumer plans a batch at once (what was seen and the movements read once, the
    notices written once): the same notices as its events one at a time, repeats and an
    older version among them."""
    world = World()
    steps = MovementStep
    await world.happen(_origin(1, OriginStatus.REGISTERED), steps.REGISTERED)
    await world.happen(_host(1), steps.CHECKED_IN)
    await world.happen(_host(2, participation=ParticipationSummary(attended=1)),
                       steps.PARTICIPATION_RECORDED)  # fmt: skip
    await world.happen(_origin(2, OriginStatus.RETURNED), steps.RETURNED)
    events = [*world.events, world.events[0], world.events[1], world.events[3]]
    one_by_one, batched = World(), World()
    for copy in (one_by_one, batched):
        for node, source in ((copy.gushi, world.gushi), (copy.chaoyang, world.chaoyang)):
            node.tables.movements = dict(source.tables.movements)  # as the node holds them now
    for node in (one_by_one.gushi, one_by_one.chaoyang):
        assert [await node.deliver(raw) for raw in events] == [1, 1, 0, 1, 0, 0, 0]
    assert await batched.gushi.deliver(*events) == await batched.chaoyang.deliver(*events) == 3
    for ours, theirs in ((batched.gushi, one_by_one.gushi),
                         (batched.chaoyang, one_by_one.chaoyang)):  # fmt: skip
        assert ours.tables.notices == theirs.tables.notices
        assert ours.tables.seen == theirs.tables.seen
    assert await batched.gushi.deliver(*reversed(events)) == 0


async def test_a_cancelled_registration_tells_the_host_secretary_once() -> None:
    world = World()
    await world.happen(_origin(1, OriginStatus.REGISTERED), MovementStep.REGISTERED)
    assert await world.happen(_origin(2, OriginStatus.CANCELLED), MovementStep.CANCELLED) == {
        GUSHI: 0,  # the origin cancelled it: its own secretary knows
        CHAOYANG: 1,
    }
    assert world.chaoyang.notices() == [
        ("host_secretary", "member_expected", "secretary@chaoyang.example"),
        ("host_secretary", "registration_cancelled", "secretary@chaoyang.example"),
    ]
    told = world.chaoyang.notice("registration_cancelled")
    assert told.subject == "张建国的外出登记已撤销"
    assert "北京市朝阳区十八里店乡" in told.body
    assert "2026-03-22" in told.body
    for seed in range(2):
        assert await world.redeliver(seed) == 0
    unnamed = World()  # a repair copy names no step: the status tells it
    await unnamed.happen(_origin(1, OriginStatus.REGISTERED), None)
    await unnamed.happen(_origin(2, OriginStatus.CANCELLED), None)
    assert unnamed.chaoyang.notices() == world.chaoyang.notices()


async def test_an_older_or_repeated_version_plans_nothing_and_a_named_step_only_once() -> None:
    world = World()
    await world.happen(_origin(1, OriginStatus.REGISTERED), MovementStep.REGISTERED)
    await world.happen(_origin(2, OriginStatus.RETURNED), MovementStep.RETURNED)
    before = world.gushi.notices()
    # the registration again, after the return: older than what was seen
    late = make_event(
        OriginGroupChanged(group=_origin(1, OriginStatus.REGISTERED), step=MovementStep.REGISTERED),
        node=GUSHI,
        time=AT,
    )
    assert await world.gushi.deliver(late.encode(), late.encode()) == 0
    assert world.gushi.notices() == before


async def test_events_that_name_no_step_plan_what_the_named_steps_plan() -> None:
    named, unnamed = World(), World()
    changes: list[tuple[OriginGroup | HostGroup, MovementStep]] = [
        (_origin(1, OriginStatus.REGISTERED), MovementStep.REGISTERED),
        (_host(1), MovementStep.CHECKED_IN),
        (_host(2, participation=ParticipationSummary(attended=1)), MovementStep.PARTICIPATION_RECORDED),
        (_origin(2, OriginStatus.RETURNED), MovementStep.RETURNED),
    ]  # fmt: skip
    for group, step in changes:
        await named.happen(group, step)
        await unnamed.happen(group, None)  # a repair copy, or a producer from before steps
    assert unnamed.gushi.notices() == named.gushi.notices()
    assert unnamed.chaoyang.notices() == named.chaoyang.notices()
    assert len(named.gushi.notices()) == len(named.chaoyang.notices()) == 3


def _checked_in(world: World, movement_id: UUID, name: str) -> tuple[OriginGroup, HostGroup]:
    member = MemberCard(member_id=uuid4(), name=name, joined_on=origin_group().member.joined_on)
    origin = _origin(1, OriginStatus.REGISTERED, movement_id=movement_id, member=member)
    host = _host(1, movement_id=movement_id)
    for node in (world.gushi, world.chaoyang):
        node.tables.keep(origin)
        node.tables.keep(host)
    return origin, host


async def test_scenario_3_a_transfer_accepted_and_completed_then_one_rejected() -> None:
    world = World()
    origin, host = _checked_in(world, uuid4(), "张建国")
    request = TransferRequest(requested_at=_at(20), reply_due_on=_at(50).date())
    requested = origin.model_copy(
        update={"version": 2, "status": OriginStatus.TRANSFER_REQUESTED, "transfer": request,
                "changed_at": _at(20)}
    )  # fmt: skip
    assert await world.happen(requested, MovementStep.TRANSFER_REQUESTED) == {GUSHI: 0, CHAOYANG: 1}
    reply = TransferReply(
        decision=TransferDecision.ACCEPTED, request_at=request.requested_at, replied_at=_at(21)
    )
    accepted = host.model_copy(
        update={"version": 2, "transfer_reply": reply, "changed_at": _at(21)}
    )
    assert await world.happen(accepted, MovementStep.TRANSFER_ACCEPTED) == {GUSHI: 1, CHAOYANG: 0}
    completed = requested.model_copy(
        update={"version": 3, "status": OriginStatus.TRANSFERRED, "changed_at": _at(22),
                "transfer": request.model_copy(update={"completed_at": _at(22)})}
    )  # fmt: skip
    assert await world.happen(completed, MovementStep.TRANSFER_COMPLETED) == {GUSHI: 1, CHAOYANG: 1}
    enrolment = Enrolment(member_id=uuid4(), org=CHAOYANG_ROOT, enrolled_at=_at(23))
    enrolled = accepted.model_copy(
        update={"version": 3, "enrolment": enrolment, "changed_at": _at(23)}
    )
    # the host enrols the member: the origin's secretary and the member are told where
    assert await world.happen(enrolled, MovementStep.ENROLLED) == {GUSHI: 1, CHAOYANG: 1}
    assert "现为朝阳区委组织部党员" in world.gushi.notice("enrolled").body

    # a second member's transfer, which the host rejects: membership stays at the origin
    second, second_host = _checked_in(world, uuid4(), "李四")
    second_request = TransferRequest(requested_at=_at(30), reply_due_on=_at(60).date())
    asked = second.model_copy(
        update={"version": 2, "status": OriginStatus.TRANSFER_REQUESTED,
                "transfer": second_request, "changed_at": _at(30)}
    )  # fmt: skip
    assert await world.happen(asked, MovementStep.TRANSFER_REQUESTED) == {GUSHI: 0, CHAOYANG: 1}
    refusal = TransferReply(
        decision=TransferDecision.REJECTED,
        request_at=second_request.requested_at,
        replied_at=_at(31),
        reason="本支部无法接收",
    )
    rejected = second_host.model_copy(
        update={"version": 2, "transfer_reply": refusal, "changed_at": _at(31)}
    )
    assert await world.happen(rejected, MovementStep.TRANSFER_REJECTED) == {GUSHI: 1, CHAOYANG: 0}

    assert world.gushi.notices() == [
        ("member", "transferred", PHONE),
        ("origin_secretary", "enrolled", "chenji@gushi.example"),
        ("origin_secretary", "transfer_accepted", "chenji@gushi.example"),
        ("origin_secretary", "transfer_rejected", "chenji@gushi.example"),
    ]
    assert world.chaoyang.notices() == [
        ("host_secretary", "transfer_requested", "gushi-wc@chaoyang.example"),
        ("host_secretary", "transfer_requested", "gushi-wc@chaoyang.example"),
        ("host_secretary", "transferred", "gushi-wc@chaoyang.example"),
        ("member", "enrolled", PHONE),
    ]
    refused = world.gushi.notice("transfer_rejected")
    assert refused.movement_id == second.movement_id
    assert "本支部无法接收" in refused.body
    assert "组织关系仍在固始县陈集镇第一党支部" in refused.body
    transferred = world.chaoyang.notice("transferred")
    assert transferred.movement_id == origin.movement_id  # not the rejected one
    assert await world.redeliver(7) == 0


def _person(name: str, phone: str | None = None, email: str | None = None) -> Person:
    return Person(member_id=uuid4(), name=name, phone=phone, email=email)


def _activity(organizer: OrganizationRef, title: str = "三月主题党日") -> bytes:
    activity = ActivityScheduled(
        activity_id=uuid4(),
        jurisdiction=CHAOYANG,
        organizer=organizer,
        kind=ActivityKind.THEME_DAY,
        title=title,
        starts_at=datetime(2026, 3, 5, 1, 0, tzinfo=UTC),
        location="十八里店乡党群服务中心",
        scheduled_by="secretary:chaoyang-gushi-3",
    )
    return make_event(activity, node=CHAOYANG, time=AT).encode()


async def test_scenario_7_everyone_present_in_the_area_is_invited_once() -> None:
    world = World()
    tables = world.chaoyang.tables
    committee = tables.organizations[CHAOYANG_BRANCH.org_id]
    elsewhere = tables.org(
        OrganizationRef(org_id=uuid4(), name="十八里店乡党委"), parent=CHAOYANG_ROOT.org_id
    )
    local = _person("王五", phone="+86 139 0000 0001")
    visiting = _person("张建国", email="zhang@example.org")
    unreachable = _person("赵六")
    outside = _person("钱七", phone="+86 139 0000 0002")
    tables.present = [
        Present(visiting, committee.path, "visiting"),
        Present(local, f"{committee.path}{uuid4()}/", "local"),  # a branch below it
        Present(unreachable, committee.path, "local"),
        Present(outside, elsewhere.path, "local"),
    ]
    theme_day = _activity(CHAOYANG_BRANCH)
    assert await world.chaoyang.deliver(theme_day) == 3
    assert await world.gushi.deliver(theme_day) == 0  # another node's activity
    assert await world.chaoyang.deliver(theme_day, theme_day) == 0

    invitations = sorted(world.chaoyang.tables.notices.values(), key=lambda n: n.body)
    assert sorted((n.member_id, n.channel, n.address, n.status) for n in invitations) == sorted(
        [
            (local.member_id, "sms", local.phone, "pending"),
            (visiting.member_id, "email", visiting.email, "pending"),
            (unreachable.member_id, "sms", None, "suppressed"),
        ]
    )
    assert all(n.reason == "activity_invitation" for n in invitations)
    assert all(n.subject == "邀请参加：三月主题党日" for n in invitations)
    assert "2026-03-05 09:00" in invitations[0].body  # the node's time
    suppressed = next(n for n in invitations if n.status == "suppressed")
    assert suppressed.last_error == "no sms address for the member"

    # another activity is another occurrence: everyone is invited to it too, once
    assert await world.chaoyang.deliver(_activity(CHAOYANG_BRANCH, "四月主题党日")) == 3
    assert len(world.chaoyang.tables.notices) == 6
    # an organization the node does not know has nobody present
    assert await world.chaoyang.deliver(_activity(OrganizationRef(org_id=uuid4(), name="?"))) == 0


class LostConnection(NoticeLog):
    """A notice log whose connection drops at the ``fail_at``-th notice."""

    def __init__(self, log: NoticeLog, fail_at: int) -> None:
        self.log, self.left = log, fail_at

    async def add(self, notice: Notice) -> bool:
        self.left -= 1
        if self.left == 0:
            raise OSError("connection lost")
        return await self.log.add(notice)


async def test_a_batch_that_fails_plans_nothing_and_its_redelivery_plans_it_once() -> None:
    world = World()
    node = world.chaoyang
    registered, checked_in = _origin(1, OriginStatus.REGISTERED), _host(1)
    node.tables.keep(registered)
    node.tables.keep(checked_in)
    batch = [
        make_event(OriginGroupChanged(group=registered, step=MovementStep.REGISTERED),
                   node=GUSHI, time=AT).encode(),
        b"not an event",  # skipped, never stops the batch
        make_event(HostGroupChanged(group=checked_in, step=MovementStep.CHECKED_IN),
                   node=CHAOYANG, time=AT).encode(),
    ]  # fmt: skip

    async def plan_failing_at_the_second_notice() -> None:
        async with node.transactions() as uow:
            failing = replace(uow, notices=LostConnection(uow.notices, fail_at=2))
            for raw in batch:
                await node.planner.plan(failing, raw)

    with pytest.raises(OSError, match="connection lost"):
        await plan_failing_at_the_second_notice()
    assert node.transactions.rolled_back == 1
    assert node.tables.notices == {}
    assert node.tables.seen == {}
    assert await node.deliver(*batch) == 2  # delivered again: planned once
    assert await node.deliver(*batch) == 0
    assert node.notices() == [
        # planned after the check-in was stored: the organization the member checked in at
        ("host_secretary", "member_expected", "gushi-wc@chaoyang.example"),
        ("member", "checked_in", PHONE),
    ]


async def test_an_assignment_tells_the_assigned_organization_and_no_one_else() -> None:
    world = World()
    await world.happen(_origin(1, OriginStatus.REGISTERED), MovementStep.REGISTERED)
    township = OrganizationRef(org_id=uuid4(), name="十八里店乡党委")
    root_id = CHAOYANG_ROOT.org_id
    world.chaoyang.tables.org(township, parent=root_id, sms="+86 139 0000 0009")  # no mail
    assigned = _host(1, status=HostStatus.EXPECTED, host_org=township, checked_in_at=None)
    planned = await world.happen(assigned, MovementStep.ASSIGNED)
    assert planned == {GUSHI: 0, CHAOYANG: 1}
    told = world.chaoyang.notice("member_assigned")
    assert (told.recipient, told.channel, told.address) == (
        "host_secretary",
        "sms",
        "+86 139 0000 0009",  # an organization with only a mobile number is reached by SMS
    )
    assert told.subject == "流动党员张建国已分配到十八里店乡党委"
    # the check-in that follows is answered by the assigned organization's secretary
    later = _host(2, host_org=township)
    await world.happen(later, MovementStep.CHECKED_IN)
    assert "已在十八里店乡党委报到（北京市朝阳区）" in world.gushi.notice("checked_in").body


async def test_a_secretary_with_no_address_at_all_is_suppressed_with_the_reason() -> None:
    world = World()
    bare = OrganizationRef(org_id=uuid4(), name="无联系方式支部")
    world.chaoyang.tables.org(bare, parent=CHAOYANG_ROOT.org_id)
    await world.happen(_origin(1, OriginStatus.REGISTERED), MovementStep.REGISTERED)
    assigned = _host(1, status=HostStatus.EXPECTED, host_org=bare, checked_in_at=None)
    await world.happen(assigned, MovementStep.ASSIGNED)
    told = world.chaoyang.notice("member_assigned")
    assert (told.status, told.address, told.last_error) == (
        "suppressed",
        None,
        "no email address for the host_secretary",
    )


async def test_the_origins_decisions_reach_its_secretary_and_inform_the_hosts() -> None:
    world = World()
    lost = date(2026, 3, 1)
    await world.happen(origin_group(), MovementStep.REGISTERED)
    await world.happen(host_group(), MovementStep.CHECKED_IN)
    world.gushi.tables.notices.clear()
    world.chaoyang.tables.notices.clear()
    marked = origin_group(version=2).model_copy(update={"lost_contact_since": lost})
    planned = await world.happen(marked, MovementStep.LOST_CONTACT_AT_ORIGIN)
    assert planned == {GUSHI: 0, CHAOYANG: 1}  # the host is asked to tell if the member appears
    suspended = marked.model_copy(
        update={
            "version": 3,
            "decision": StandingDecision(
                standing=Standing.SUSPENDED,
                reason="失联六个月，多方查找无果",
                decided_at=AT + timedelta(days=190),
                lost_contact_since=lost,
                suspended_at=AT + timedelta(days=190),
            ),
        }
    )
    assert await world.happen(suspended, MovementStep.SUSPENDED) == {GUSHI: 1, CHAOYANG: 1}
    assert await world.happen(suspended, MovementStep.SUSPENDED) == {GUSHI: 0, CHAOYANG: 0}
    assert world.gushi.notices() == [
        ("origin_secretary", "suspended", "chenji@gushi.example")  # the member's organization
    ]
    assert ("host_secretary", "suspended", "gushi-wc@chaoyang.example") in world.chaoyang.notices()
    body = world.gushi.notice("suspended").body
    assert "失联六个月，多方查找无果" in body
    assert "2026-03-01" in body


async def test_each_answer_to_a_concern_tells_the_member_once_from_the_host() -> None:
    world = World()
    _, host = _checked_in(world, uuid4(), "王芳")
    summary = FeedbackSummary(raised=1, answered=0, open=1, closed=0)
    raised = host.model_copy(update={"version": 2, "feedback": summary, "changed_at": _at(20)})
    # raising a concern tells nobody: the host's secretaries work from their queue
    assert await world.happen(raised, MovementStep.FEEDBACK_RAISED) == {GUSHI: 0, CHAOYANG: 0}
    first = summary.model_copy(update={"answered": 1, "open": 0, "answers": 1})
    answered = raised.model_copy(update={"version": 3, "feedback": first, "changed_at": _at(21)})
    assert await world.happen(answered, MovementStep.FEEDBACK_ANSWERED) == {GUSHI: 0, CHAOYANG: 1}
    assert "王芳" in world.chaoyang.notice("feedback_answered").body
    # the same version again plans nothing; a second answer is a second notice
    assert await world.happen(answered, MovementStep.FEEDBACK_ANSWERED) == {GUSHI: 0, CHAOYANG: 0}
    again = answered.model_copy(
        update={"version": 4, "feedback": first.model_copy(update={"answers": 2})}
    )
    assert await world.happen(again, MovementStep.FEEDBACK_ANSWERED) == {GUSHI: 0, CHAOYANG: 1}
