"""The scheduler on a node held in memory (``fakes.py``): reminders and greetings planned
once however often the clock ticks. No database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

from yixian.contracts import (
    Deadlines,
    HostStatus,
    OrganizationRef,
    OriginStatus,
    Standing,
    StandingDecision,
    TransferRequest,
)
from yixian.contracts.examples import CHAOYANG, GUSHI, GUSHI_BRANCH, host_group, origin_group
from yixian.notify.bootstrap import TEMPLATES
from yixian.notify.domain.notice import Person
from yixian.notify.domain.templates import Templates
from yixian.notify.service_layer.planner import Planner
from yixian.notify.service_layer.scheduler import Scheduler

from .fakes import FakeTransactions, NodeTables

BEIJING = ZoneInfo("Asia/Shanghai")


def _gushi() -> NodeTables:
    tables = NodeTables(GUSHI)
    root = tables.org(
        OrganizationRef(org_id=uuid4(), name="固始县委组织部"), email="zzb@gushi.example"
    )
    tables.org(GUSHI_BRANCH, parent=root.org_id, email="chenji@gushi.example")
    return tables


def _scheduler(
    tables: NodeTables, clock: Callable[[], datetime], deadlines: Deadlines | None = None
) -> Scheduler:
    planner = Planner(tables.node, Templates(TEMPLATES), zone=BEIJING)
    return Scheduler(
        FakeTransactions(tables), planner, zone=BEIJING, clock=clock, deadlines=deadlines
    )


async def test_check_in_reminder_and_not_arrived_once_each() -> None:
    tables = _gushi()
    tables.keep(origin_group())  # check-in due 2026-03-22, origin Gushi, no host group yet
    now = {"t": datetime(2026, 3, 10, 2, 0, tzinfo=UTC)}
    scheduler = _scheduler(tables, lambda: now["t"])
    assert await scheduler.tick() == 0
    now["t"] = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
    assert await scheduler.tick() == 1  # the member is reminded
    now["t"] = datetime(2026, 3, 23, 2, 0, tzinfo=UTC)
    assert await scheduler.tick() == 1  # the origin secretary: not arrived (host tells its own)
    assert await scheduler.tick() == 0
    assert sorted((n.reason, n.recipient, n.address) for n in tables.notices.values()) == [
        ("check_in_due", "member", origin_group().contact.phone),
        ("not_arrived", "origin_secretary", "chenji@gushi.example"),
    ]


async def test_birthdays_follow_the_nodes_midnight_and_29_february() -> None:
    tables = _gushi()
    tables.members = [
        Person(uuid4(), "七一", "138", None, joined_on=date(2008, 7, 1)),
        Person(uuid4(), "闰日", "139", None, joined_on=date(2004, 2, 29)),
    ]
    now = {"t": datetime(2026, 6, 30, 15, 30, tzinfo=UTC)}  # 23:30 in Beijing
    scheduler = _scheduler(tables, lambda: now["t"])
    assert await scheduler.tick() == 0
    now["t"] = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 July in Beijing
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0  # once per member per year
    now["t"] = datetime(2027, 2, 28, 4, 0, tzinfo=UTC)  # no 29 February in 2027
    assert await scheduler.tick() == 1
    bodies = sorted(n.body for n in tables.notices.values())
    assert len(bodies) == 2
    assert any("入党18周年" in b for b in bodies)
    assert any("入党23周年" in b for b in bodies)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)


def _reasons(tables: NodeTables) -> list[tuple[str, str]]:
    return sorted((n.reason, n.recipient) for n in tables.notices.values())


async def test_a_suspension_closes_its_prompt_and_the_removal_prompt_follows() -> None:
    tables = _gushi()
    since = date(2026, 4, 1)
    lost = host_group().model_copy(
        update={"version": 2, "status": HostStatus.LOST_CONTACT, "lost_contact_since": since}
    )
    tables.keep(origin_group())
    tables.keep(lost)
    now = {"t": _at(date(2026, 9, 30))}  # 182 days
    scheduler = _scheduler(tables, lambda: now["t"])
    planned_before = await scheduler.tick()  # the yearly report is not due yet either
    now["t"] = _at(date(2026, 10, 1))  # 183 days: prompted once
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    suspended = StandingDecision(
        standing=Standing.SUSPENDED,
        reason="失联六个月",
        decided_at=_at(date(2026, 10, 2)),
        lost_contact_since=since,
        suspended_at=_at(date(2026, 10, 2)),
    )
    tables.keep(origin_group(version=2).model_copy(update={"decision": suspended}))
    now["t"] = _at(date(2027, 6, 1))  # decided: no prompt again, whatever the day
    tables.notices.clear()
    assert await scheduler.tick() == 1  # only the member's yearly report reminder
    assert _reasons(tables) == [("yearly_report_due", "member")]
    now["t"] = _at(date(2028, 10, 1))  # two more years: the removal prompt
    assert await scheduler.tick() >= 1
    assert ("removal_prompt", "origin_secretary") in _reasons(tables)
    assert ("suspension_prompt", "origin_secretary") not in _reasons(tables)
    assert planned_before == 0


async def test_a_reinstatement_closes_both_prompts() -> None:
    tables = _gushi()
    since = date(2026, 4, 1)
    tables.keep(origin_group())
    tables.keep(
        host_group().model_copy(
            update={"version": 2, "status": HostStatus.LOST_CONTACT, "lost_contact_since": since}
        )
    )
    reinstated = StandingDecision(
        standing=Standing.REINSTATED,
        reason="本人已恢复联系",
        decided_at=_at(date(2026, 10, 2)),
        lost_contact_since=since,
        suspended_at=_at(date(2026, 10, 1)),
    )
    tables.keep(origin_group(version=3).model_copy(update={"decision": reinstated}))
    scheduler = _scheduler(tables, lambda: _at(date(2029, 1, 1)))
    await scheduler.tick()
    assert [r for r, _ in _reasons(tables) if r.endswith("_prompt")] == []


async def test_the_origins_lost_contact_of_a_member_who_never_arrived_prompts_too() -> None:
    tables = _gushi()
    tables.keep(origin_group(version=2).model_copy(update={"lost_contact_since": date(2026, 3, 1)}))
    scheduler = _scheduler(tables, lambda: _at(date(2026, 8, 31)))  # 183 days
    await scheduler.tick()
    assert _reasons(tables) == [("suspension_prompt", "origin_secretary")]  # not "not arrived"


async def test_the_report_reminder_follows_the_origins_interval_and_a_recorded_report() -> None:
    tables = _gushi()
    tables.keep(origin_group())
    tables.keep(host_group())
    now = {"t": _at(date(2026, 4, 20))}  # departed 2026-02-20: 59 days
    scheduler = _scheduler(tables, lambda: now["t"], Deadlines(report_interval_days=60))
    assert await scheduler.tick() == 0
    now["t"] = _at(date(2026, 4, 21))  # 60 days
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    assert _reasons(tables) == [("yearly_report_due", "member")]
    tables.keep(origin_group(version=2).model_copy(update={"last_report_on": date(2026, 4, 25)}))
    now["t"] = _at(date(2026, 6, 23))  # 59 days after the report: closed
    assert await scheduler.tick() == 0
    now["t"] = _at(date(2026, 6, 24))  # 60 days after it: the next one
    assert await scheduler.tick() == 1


async def test_a_report_received_at_the_host_stops_the_origins_reminder() -> None:
    tables = _gushi()
    tables.keep(origin_group())
    tables.keep(host_group())
    now = {"t": _at(date(2026, 4, 10))}  # departed 2026-02-20: due 2026-04-21
    scheduler = _scheduler(tables, lambda: now["t"], Deadlines(report_interval_days=60))
    received = host_group().model_copy(
        update={"version": 2, "report_received_on": date(2026, 4, 10)}
    )
    tables.keep(received)  # the host relayed the report it received
    now["t"] = _at(date(2026, 4, 21))  # the departure's 60 days: no reminder
    assert await scheduler.tick() == 0
    now["t"] = _at(date(2026, 6, 8))  # 59 days after the report
    assert await scheduler.tick() == 0
    assert _reasons(tables) == []
    now["t"] = _at(date(2026, 6, 9))  # the origin's 60 days after the report the host received
    assert await scheduler.tick() == 1
    assert _reasons(tables) == [("yearly_report_due", "member")]


async def test_the_hosts_reply_deadline_counts_at_the_origin() -> None:
    tables = _gushi()
    requested_at = _at(date(2026, 5, 1))
    request = TransferRequest(requested_at=requested_at, reply_due_on=date(2026, 5, 31))
    tables.keep(
        origin_group().model_copy(
            update={
                "version": 2,
                "status": OriginStatus.TRANSFER_REQUESTED,
                "transfer": request,
                "last_report_on": date(2026, 5, 1),
            }
        )
    )
    tables.keep(host_group().model_copy(update={"transfer_reply_days": 10}))
    now = {"t": _at(date(2026, 5, 11))}
    scheduler = _scheduler(tables, lambda: now["t"])
    assert await scheduler.tick() == 0  # the host secretary's reminder is the host's to send
    now["t"] = _at(date(2026, 5, 12))  # the host's 10 days are over, not the origin's 30
    assert await scheduler.tick() == 1
    assert _reasons(tables) == [("transfer_reply_overdue", "origin_secretary")]


async def test_the_host_reminds_its_secretary_by_its_own_deadline() -> None:
    tables = NodeTables(CHAOYANG)
    tables.org(OrganizationRef(org_id=uuid4(), name="朝阳区委组织部"), email="zzb@chaoyang.example")
    request = TransferRequest(requested_at=_at(date(2026, 5, 1)), reply_due_on=date(2026, 5, 31))
    tables.keep(
        origin_group().model_copy(
            update={"version": 2, "status": OriginStatus.TRANSFER_REQUESTED, "transfer": request}
        )
    )
    tables.keep(host_group().model_copy(update={"transfer_reply_days": 10}))
    scheduler = _scheduler(tables, lambda: _at(date(2026, 5, 6)))  # 5 days before the 11th
    assert await scheduler.tick() == 1
    assert _reasons(tables) == [("transfer_reply_due", "host_secretary")]


async def test_a_tick_renders_only_the_notices_it_plans() -> None:
    """Each tick finds the reminders of the ticks before due again (the movement is still
    overdue): they are known by their keys, and neither rendered nor written again."""
    tables = _gushi()
    tables.keep(origin_group())
    scheduler = _scheduler(tables, lambda: datetime(2026, 3, 23, 2, 0, tzinfo=UTC))
    templates = scheduler.planner.templates
    rendered: list[str] = []
    render = templates.render

    def counting(name: str, *args: object, **kwargs: object) -> object:
        rendered.append(name)
        return render(name, *args, **kwargs)  # type: ignore[arg-type]

    templates.render = counting  # type: ignore[method-assign]
    assert await scheduler.tick() == 2  # the member's reminder, the secretary's not arrived
    assert len(rendered) == 2
    assert await scheduler.tick() == 0
    assert len(rendered) == 2
