"""The scheduler on a node held in memory (``fakes.py``): reminders and greetings planned
once however often the clock ticks. No database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

from yixian.contracts import OrganizationRef
from yixian.contracts.examples import GUSHI, GUSHI_BRANCH, origin_group
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


def _scheduler(tables: NodeTables, clock: Callable[[], datetime]) -> Scheduler:
    planner = Planner(GUSHI, Templates(TEMPLATES), zone=BEIJING)
    return Scheduler(FakeTransactions(tables), planner, zone=BEIJING, clock=clock)


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
