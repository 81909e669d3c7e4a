"""Scheduled notices on the real database: birthdays at the node's midnight, reminders,
each planned once however often the scheduler runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from yixian.contracts import (
    Deadlines,
    HostStatus,
    OriginGroup,
    OriginStatus,
    Standing,
    StandingDecision,
)
from yixian.contracts.examples import host_group, origin_group
from yixian.notify.bootstrap import MIGRATIONS as NOTIFY_MIGRATIONS
from yixian.notify.bootstrap import TEMPLATES, transactions
from yixian.notify.domain.templates import Templates
from yixian.notify.service_layer.planner import Planner
from yixian.notify.service_layer.scheduler import Scheduler
from yixian.record.schema import migrate
from yixian.registry.bootstrap import MIGRATIONS as REGISTRY_MIGRATIONS
from yixian.runtime import create_pool

pytestmark = pytest.mark.integration
BEIJING = ZoneInfo("Asia/Shanghai")
GUSHI = "411525"


async def _node(database_url: str) -> asyncpg.Pool:
    await migrate(database_url, "registry", REGISTRY_MIGRATIONS)
    await migrate(database_url, "notify", NOTIFY_MIGRATIONS)
    pool = await create_pool(database_url)
    root = uuid4()
    await pool.execute(
        "INSERT INTO organizations (org_id, name, kind, jurisdiction, path, contact_email)"
        " VALUES ($1, '固始县委组织部', 'committee', $2, $3, 'zzb@gushi.example')",
        root,
        GUSHI,
        f"/{root}/",
    )
    for name, joined in (("七一", date(2008, 7, 1)), ("闰日", date(2004, 2, 29))):
        await pool.execute(
            "INSERT INTO members (member_id, org_id, name, joined_on, phone) VALUES ($1, $2, $3, $4, '138')",
            uuid4(),
            root,
            name,
            joined,
        )
    return pool


def _scheduler(
    pool: asyncpg.Pool, clock: Callable[[], datetime], deadlines: Deadlines | None = None
) -> Scheduler:
    return Scheduler(
        transactions(pool),
        Planner(GUSHI, Templates(TEMPLATES), zone=BEIJING),
        zone=BEIJING,
        clock=clock,
        deadlines=deadlines,
    )


async def _reasons(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT reason, subject FROM notices ORDER BY created_at")
    return [(r["reason"], r["subject"]) for r in rows]


async def test_birthdays_follow_the_nodes_midnight_and_29_february(database_url: str) -> None:
    pool = await _node(database_url)
    try:
        now = {"t": datetime(2026, 6, 30, 15, 30, tzinfo=UTC)}  # 23:30 in Beijing
        scheduler = _scheduler(pool, lambda: now["t"])
        assert await scheduler.tick() == 0
        now["t"] = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 July in Beijing
        assert await scheduler.tick() == 1
        assert await scheduler.tick() == 0  # once per member per year
        now["t"] = datetime(2027, 2, 28, 4, 0, tzinfo=UTC)  # no 29 February in 2027
        assert await scheduler.tick() == 1
        reasons = await _reasons(pool)
        assert [r for r, _ in reasons] == ["political_birthday", "political_birthday"]
        bodies = [
            r["body"] for r in await pool.fetch("SELECT body FROM notices ORDER BY created_at")
        ]
        assert "入党18周年" in bodies[0]
        assert "入党23周年" in bodies[1]
    finally:
        await pool.close()


async def test_check_in_reminder_and_not_arrived_once_each(database_url: str) -> None:
    pool = await _node(database_url)
    try:
        group = origin_group()  # check-in due 2026-03-22, origin Gushi
        root = await pool.fetchval("SELECT org_id FROM organizations")
        document = group.model_dump(mode="json")
        document["origin_org"]["org_id"] = str(root)
        await pool.execute(
            "INSERT INTO movements (movement_id, origin, host, member_id, origin_version, origin_status,"
            " origin_group, origin_org_id) VALUES ($1, $2, '110105', $3, 1, $4, $5, $6)",
            group.movement_id,
            GUSHI,
            group.member.member_id,
            OriginStatus.REGISTERED.value,
            document,
            root,
        )
        now = {"t": datetime(2026, 3, 10, 2, 0, tzinfo=UTC)}
        scheduler = _scheduler(pool, lambda: now["t"])
        assert await scheduler.tick() == 0
        now["t"] = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
        assert await scheduler.tick() == 1  # the member is reminded
        now["t"] = datetime(2026, 3, 23, 2, 0, tzinfo=UTC)
        assert await scheduler.tick() == 1  # the origin secretary: not arrived (host tells its own)
        assert await scheduler.tick() == 0
        assert [r for r, _ in await _reasons(pool)] == ["check_in_due", "not_arrived"]
    finally:
        await pool.close()


async def test_quiet_hours_hold_sms_until_morning_but_not_email_or_urgent(
    database_url: str,
) -> None:
    import httpx

    from yixian.localstack.sinks import HttpSink, MailSink
    from yixian.notify.adapters.channels import EmailChannel, SmsChannel
    from yixian.notify.adapters.postgres import NoticeLog
    from yixian.notify.domain.policy import QuietHours
    from yixian.notify.domain.rules import BY_REASON, Channel, Recipient
    from yixian.notify.service_layer.dispatcher import Dispatcher
    from yixian.notify.service_layer.planner import Address

    pool = await _node(database_url)
    gateway, mail = HttpSink().start(), MailSink().start()
    try:
        planner = Planner(GUSHI, Templates(TEMPLATES), zone=BEIJING)
        context = {"member_name": "甲", "origin": "o", "host": "110105", "movement_id": "m", "state": "s",
                   "check_in_due_on": "2026-03-22", "place": "p", "since": "2026-01-01"}  # fmt: skip
        async with pool.acquire() as conn:
            member = uuid4()
            for reason, address, occurrence in (
                ("check_in_due", Address(Channel.SMS, "138", member), "sms"),
                ("suspension_prompt", Address(Channel.SMS, "139", member), "urgent"),
                ("check_in_due", Address(Channel.EMAIL, "a@b.example", member), "mail"),
            ):
                await planner.add(
                    NoticeLog(conn),
                    BY_REASON[reason],
                    Recipient.MEMBER,
                    address,
                    context,
                    occurrence=occurrence,
                )
        night = {"t": datetime(2099, 3, 20, 15, 0, tzinfo=UTC)}  # 23:00 in Beijing, after planning
        async with httpx.AsyncClient() as client:
            dispatcher = Dispatcher(
                pool,
                {Channel.SMS: SmsChannel(client, f"{gateway.url}/sms"),
                 Channel.EMAIL: EmailChannel("127.0.0.1", mail.port, "yixian@localhost")},
                rates={Channel.SMS: 100, Channel.EMAIL: 100},
                quiet=QuietHours(zone=BEIJING),
                clock=lambda: night["t"],
            )  # fmt: skip
            await dispatcher.dispatch_once()
            assert [r.json()["to"] for r in gateway.requests] == ["139"]  # only the urgent one
            assert len(mail.mails) == 1
            held = await pool.fetchrow(
                "SELECT status, next_attempt_at FROM notices WHERE address = '138'"
            )
            assert held["status"] == "pending"
            assert held["next_attempt_at"] == datetime(2099, 3, 21, 7, 0, tzinfo=BEIJING)
            night["t"] = datetime(2099, 3, 20, 23, 1, tzinfo=UTC)  # 07:01 in Beijing
            await dispatcher.dispatch_once()
            assert sorted(r.json()["to"] for r in gateway.requests) == ["138", "139"]
    finally:
        gateway.stop()
        mail.stop()
        await pool.close()


async def _keep_origin(pool: asyncpg.Pool, group: OriginGroup) -> None:
    """The origin group as the registry stores it (its organization the node's root)."""
    root = await pool.fetchval("SELECT org_id FROM organizations")
    document = group.model_dump(mode="json")
    document["origin_org"]["org_id"] = str(root)
    await pool.execute(
        "INSERT INTO movements (movement_id, origin, host, member_id, origin_version, origin_status,"
        " origin_group, origin_org_id) VALUES ($1, $2, '110105', $3, $4, $5, $6, $7)"
        " ON CONFLICT (movement_id) DO UPDATE SET origin_version = EXCLUDED.origin_version,"
        " origin_group = EXCLUDED.origin_group",
        group.movement_id,
        GUSHI,
        group.member.member_id,
        group.version,
        group.status.value,
        document,
        root,
    )


async def test_a_decision_closes_the_lost_contact_prompts(database_url: str) -> None:
    pool = await _node(database_url)
    try:
        since = date(2026, 4, 1)
        await _keep_origin(pool, origin_group())
        lost = host_group().model_copy(
            update={"version": 2, "status": HostStatus.LOST_CONTACT, "lost_contact_since": since}
        )
        await pool.execute(
            "UPDATE movements SET host_version = 2, host_status = 'lost_contact', host_group = $2"
            " WHERE movement_id = $1",
            lost.movement_id,
            lost.model_dump(mode="json"),
        )
        now = {"t": datetime(2026, 10, 1, 2, 0, tzinfo=UTC)}  # 183 days
        scheduler = _scheduler(pool, lambda: now["t"])
        assert await scheduler.tick() == 1
        decided = datetime(2026, 10, 2, 2, 0, tzinfo=UTC)
        decision = StandingDecision(
            standing=Standing.REINSTATED,
            reason="本人已恢复联系",
            decided_at=decided,
            lost_contact_since=since,
            suspended_at=decided,
        )
        await _keep_origin(pool, origin_group(version=3).model_copy(update={"decision": decision}))
        now["t"] = datetime(2029, 1, 1, 2, 0, tzinfo=UTC)  # past the removal prompt's day too
        await scheduler.tick()
        prompts = [r for r, _ in await _reasons(pool) if r.endswith("_prompt")]
        assert prompts == ["suspension_prompt"]  # neither again nor the removal prompt
    finally:
        await pool.close()


async def test_the_report_reminder_follows_the_interval_and_a_recorded_report(
    database_url: str,
) -> None:
    pool = await _node(database_url)
    try:
        await _keep_origin(pool, origin_group())  # departed 2026-02-20
        now = {"t": datetime(2026, 4, 20, 2, 0, tzinfo=UTC)}
        scheduler = _scheduler(pool, lambda: now["t"], Deadlines(report_interval_days=60))
        await scheduler.tick()
        assert "yearly_report_due" not in [r for r, _ in await _reasons(pool)]
        now["t"] = datetime(2026, 4, 21, 2, 0, tzinfo=UTC)  # 60 days
        await scheduler.tick()
        assert [r for r, _ in await _reasons(pool)].count("yearly_report_due") == 1
        reported = origin_group(version=2).model_copy(update={"last_report_on": date(2026, 4, 22)})
        await _keep_origin(pool, reported)
        now["t"] = datetime(2026, 6, 20, 2, 0, tzinfo=UTC)
        await scheduler.tick()
        assert [r for r, _ in await _reasons(pool)].count("yearly_report_due") == 1
        now["t"] = datetime(2026, 6, 21, 2, 0, tzinfo=UTC)  # 60 days after the report
        await scheduler.tick()
        assert [r for r, _ in await _reasons(pool)].count("yearly_report_due") == 2
    finally:
        await pool.close()
