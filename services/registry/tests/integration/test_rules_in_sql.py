"""The domain's rules and their SQL agree (ADR 29): on a few hundred generated movements
of every shape, at both sides of a node, each fact PostgreSQL keeps beside the groups, the
queue the database places each movement in, the queues' counts and the statistics equal
what the domain computes for each movement in Python, on days around every deadline and
with the node's deadlines as set and changed. The generated columns of migration 0015 are
the translation of the facts as ``adapters.rules`` makes it today."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from yixian.contracts import (
    OPEN_ORIGIN_STATUSES,
    Deadlines,
    HostGroup,
    HostStatus,
    OriginGroup,
    OriginStatus,
    Standing,
    TransferDecision,
    movement_state,
    recorded_status,
)
from yixian.contracts.expressions import Env, evaluator
from yixian.record import schema
from yixian.registry import bootstrap as registry
from yixian.registry.adapters import rules
from yixian.registry.adapters.postgres import Movements
from yixian.registry.domain import GroupBy, Queue, Side, away_during, classify, queues
from yixian.registry.service_layer.repositories import QueueQuery, ReportQuery
from yixian.runtime import create_pool

pytestmark = pytest.mark.integration

NODE, PARTNERS = "411525", ("110105", "350300")
BASE = date(2026, 3, 1)
MOVEMENTS = 400
DEADLINES = [
    Deadlines(),
    Deadlines(
        check_in_days=10, transfer_reply_days=5, report_interval_days=90,
        lost_contact_suspension_days=20, lost_contact_removal_days=40, dues_due_day=28,
        upcoming_days=21,
    ),
]  # fmt: skip
DAYS = sorted({BASE + timedelta(days=d) for d in (-700, -200, -40, -1, 0, 1, 9, 31, 120, 400)})


@dataclass
class Stored:
    origin: OriginGroup | None
    host: HostGroup | None
    side: Side
    member_id: UUID


def _day(rng: random.Random, spread: int = 400) -> date:
    return BASE + timedelta(days=rng.randint(-spread, spread // 4))


def _at(rng: random.Random, day: date) -> datetime:
    """A time of that day, often near midnight in UTC or in Beijing (month edges)."""
    clock = rng.choice([time(0, 0), time(15, 59), time(16, 0), time(23, 59), time(8, 30)])
    return datetime.combine(day, clock, tzinfo=UTC)


def _origin(
    rng: random.Random, movement_id: UUID, member_id: UUID, origin: str, host: str
) -> OriginGroup:
    departed = _day(rng)
    status = rng.choice(list(OriginStatus) + [OriginStatus.REGISTERED] * 4)
    transfer = None
    if status in (OriginStatus.TRANSFER_REQUESTED, OriginStatus.TRANSFERRED) or rng.random() < 0.1:
        requested = _at(rng, departed + timedelta(days=rng.randint(0, 300)))
        transfer = {
            "requested_at": requested,
            "reply_due_on": requested.date() + timedelta(days=rng.choice([5, 30, 60])),
            "completed_at": requested + timedelta(days=3)
            if status is OriginStatus.TRANSFERRED
            else None,
        }
    lost = departed + timedelta(days=rng.randint(1, 400)) if rng.random() < 0.3 else None
    decision = None
    if rng.random() < 0.25:
        decided = _at(rng, departed + timedelta(days=rng.randint(100, 900)))
        decision = {
            "standing": rng.choice(list(Standing)),
            "reason": "按规定处理",
            "decided_at": decided,
            "lost_contact_since": rng.choice([lost, lost, None, departed]),
        }
    return OriginGroup.model_validate(
        {
            "movement_id": movement_id,
            "version": rng.randint(1, 9),
            "status": status,
            "origin": origin,
            "origin_org": {"org_id": uuid4(), "name": "流出地支部"},
            "member": {"member_id": member_id, "name": "张建国", "joined_on": "2008-07-01"},
            "destination": {"jurisdiction": host, "place": "朝阳区"},
            "period": {
                "departed_on": departed,
                "expected_return_on": departed + timedelta(days=rng.randint(0, 500))
                if rng.random() < 0.5
                else None,
            },
            "contact": {"phone": "+86 139 0000 0000"},
            "check_in_due_on": departed + timedelta(days=rng.choice([10, 30, 45])),
            "next_movement_id": uuid4() if status is OriginStatus.RELOCATED else None,
            "transfer": transfer,
            "lost_contact_since": lost,
            "decision": decision,
            "last_report_on": departed + timedelta(days=rng.randint(0, 500))
            if rng.random() < 0.4
            else None,
            "changed_at": _at(rng, departed + timedelta(days=rng.randint(0, 600))),
            "changed_by": "key:test",
        }
    )


def _host(
    rng: random.Random, origin: OriginGroup, host: str, org: tuple[UUID, str] | None
) -> HostGroup | None:
    if rng.random() < 0.15:
        return None
    status = rng.choice(list(HostStatus) + [HostStatus.CHECKED_IN] * 3)
    departed = origin.period.departed_on
    checked_in = _at(rng, departed + timedelta(days=rng.randint(0, 60)))
    month = checked_in.astimezone(UTC) + timedelta(hours=8)
    first = month.year * 12 + month.month - 1 + rng.randint(-2, 1)
    paid = sorted(
        {first + rng.randint(0, 30) for _ in range(rng.randint(0, 12))}
        | set(range(first, first + rng.randint(0, 20)))
    )
    reply = None
    if origin.transfer is not None and rng.random() < 0.7:
        reply = {
            "decision": rng.choice(list(TransferDecision)),
            "request_at": origin.transfer.requested_at
            if rng.random() < 0.8
            else origin.transfer.requested_at - timedelta(days=1),
            "replied_at": origin.transfer.requested_at + timedelta(days=1),
            "reason": "材料不全",
        }
    placed = (
        org if org is not None and (status is HostStatus.CHECKED_IN or rng.random() < 0.5) else None
    )
    return HostGroup.model_validate(
        {
            "movement_id": origin.movement_id,
            "version": rng.randint(1, 9),
            "status": status,
            "host": host,
            "host_org": {"org_id": placed[0], "name": placed[1]}
            if placed
            else (
                {"org_id": uuid4(), "name": "接收地支部"}
                if status is HostStatus.CHECKED_IN
                else None
            ),
            "checked_in_at": checked_in if status is HostStatus.CHECKED_IN else None,
            "reason": "查无此人"
            if status in (HostStatus.NOT_FOUND, HostStatus.FORWARDED)
            else None,
            "forwarded_to": rng.choice(PARTNERS) if status is HostStatus.FORWARDED else None,
            "lost_contact_since": departed + timedelta(days=rng.randint(1, 500))
            if status is HostStatus.LOST_CONTACT or rng.random() < 0.2
            else None,
            "transfer_reply": reply,
            "dues_paid": [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in paid],
            "report_received_on": departed + timedelta(days=rng.randint(0, 500))
            if rng.random() < 0.3
            else None,
            "enrolment": {
                "member_id": uuid4(),
                "org": {"org_id": uuid4(), "name": "支部"},
                "enrolled_at": _at(rng, departed),
            }
            if rng.random() < 0.2
            else None,
            "transfer_reply_days": rng.choice([None, 5, 30]),
            "changed_at": _at(rng, departed),
            "changed_by": "key:test",
        }
    )


@dataclass
class World:
    pool: asyncpg.Pool
    root_path: str
    branch: UUID
    branch_path: str
    movements: dict[UUID, Stored]


@pytest.fixture(scope="module")
async def world(local_stack: Any) -> AsyncIterator[World]:
    """One node's database with the generated movements, for the whole module."""
    admin = local_stack.config.database_dsn("postgres")
    name = f"test_{uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = local_stack.config.database_dsn(name)
    await schema.migrate(url, registry.SERVICE, registry.MIGRATIONS)
    pool = await create_pool(url, size=2)
    rng = random.Random(20260301)
    async with pool.acquire() as db:
        root_id, _ = await registry.init_node(db, NODE, root_name="固始县委组织部")
        branch = uuid4()
        root_path = f"/{root_id}/"
        await db.execute(
            "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path)"
            " VALUES ($1, $2, '陈集镇党支部', 'branch', $3, $4)",
            branch, root_id, NODE, f"{root_path}{branch}/",
        )  # fmt: skip
        stored: dict[UUID, Stored] = {}
        rows = []
        for i in range(MOVEMENTS):
            side = Side.ORIGIN if i % 2 else Side.HOST
            # a visitor comes more than once (one open movement a member, at its origin)
            shared = side is Side.HOST and i % 5 == 0
            movement_id, member_id = uuid4(), UUID(int=i % 7 + 1) if shared else uuid4()
            partner = PARTNERS[i % 2]
            origin_code, host_code = (NODE, partner) if side is Side.ORIGIN else (partner, NODE)
            origin = _origin(rng, movement_id, member_id, origin_code, host_code)
            mine = (branch, "陈集镇党支部") if side is Side.HOST and i % 3 else None
            host = _host(rng, origin, host_code, mine)
            if side is Side.HOST and i % 11 == 0:  # the origin suggested one of this node's
                hint = {"org_id": str(branch), "name": "陈集镇党支部"}
                dumped = origin.model_dump(mode="json")
                origin = OriginGroup.model_validate(
                    dumped | {"destination": dumped["destination"] | {"host_org_hint": hint}}
                )
            if i % 37 == 0:  # the origin group not received yet
                origin = None
            stored[movement_id] = Stored(origin, host, side, member_id)
            rows.append(
                (
                    movement_id, origin_code, host_code, member_id,
                    origin.version if origin else 0,
                    recorded_status(origin) if origin else None,
                    origin.model_dump(mode="json") if origin else None,
                    branch if side is Side.ORIGIN else None,
                    host.version if host else 0,
                    host.status.value if host else None,
                    host.model_dump(mode="json") if host else None,
                    host.host_org.org_id
                    if host and host.host_org and host.host_org.org_id == branch
                    else None,
                    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                )
            )  # fmt: skip
        await db.executemany(
            "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
            " origin_status, origin_group, origin_org_id, host_version, host_status,"
            " host_group, host_org_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            rows,
        )
    yield World(pool, root_path, branch, f"{root_path}{branch}/", stored)
    await pool.close()
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def _queue(m: Stored, today: date, deadlines: Deadlines) -> Queue | None:
    """The movement's queue by the domain, of the movements the queues have always read:
    open at the origin, or transferred (a group both transferred and removed is never made
    by a step, and was never read)."""
    recorded = recorded_status(m.origin) if m.origin else None
    if recorded not in (*OPEN, OriginStatus.TRANSFERRED.value):
        return None
    entry = classify(m.side, m.origin, m.host, today, deadlines)
    return entry.queue if entry else None


OPEN = tuple(status.value for status in OPEN_ORIGIN_STATUSES)


async def test_the_kept_facts_are_the_domains(world: World) -> None:
    async with world.pool.acquire() as db:
        columns = ", ".join(f"fact_{fact.name}" for fact in rules.KEPT)
        rows = await db.fetch(f"SELECT movement_id, {columns} FROM movements")  # noqa: S608
    assert len(rows) == MOVEMENTS
    for fact in rules.KEPT:
        evaluate = evaluator(fact)
        wrong = [
            (r["movement_id"], r[f"fact_{fact.name}"], expected)
            for r in rows
            if r[f"fact_{fact.name}"]
            != (expected := evaluate(Env(world.movements[r["movement_id"]].origin,
                                         world.movements[r["movement_id"]].host)))
        ]  # fmt: skip
        assert wrong == [], fact.name


async def test_the_generated_columns_are_the_translation_of_the_facts(world: World) -> None:
    """What migration 0015 defines is what ``generated_column`` makes today (both read back
    as PostgreSQL prints them); a changed rule needs a migration that redefines its column."""
    async with world.pool.acquire() as db, db.transaction():
        kept = await db.fetch(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_attribute a"
            " JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = 'movements'::regclass AND a.attgenerated = 's'"
        )
        columns = ", ".join(rules.generated_column(fact) for fact in rules.KEPT)
        await db.execute(
            f"CREATE TEMP TABLE translated (origin_group jsonb, host_group jsonb, {columns})"
        )
        translated = await db.fetch(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS expr FROM pg_attribute a"
            " JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = 'translated'::regclass AND a.attgenerated = 's'"
        )
    assert {r["attname"]: r["expr"] for r in kept} == {r["attname"]: r["expr"] for r in translated}


@pytest.mark.parametrize("deadlines", DEADLINES, ids=["as set", "changed"])
async def test_the_database_places_each_movement_in_the_domains_queue(
    world: World, deadlines: Deadlines
) -> None:
    async with world.pool.acquire() as db:
        movements = Movements(db, NODE)
        for today in DAYS:
            which = QueueQuery(world.root_path, today, deadlines)
            placed = {
                s.movement.movement_id: queue
                for queue in Queue
                for s in await movements.queued(QueueQuery(world.root_path, today, deadlines, queue))
            }  # fmt: skip
            expected = {
                movement_id: queue
                for movement_id, m in world.movements.items()
                if (queue := _queue(m, today, deadlines)) is not None
            }
            assert placed == expected, today
            counts = await movements.queue_counts(which)
            assert counts == {q: Counter(expected.values())[q] for q in Queue}
            assert {q: n for q, n in counts.items() if n} != {}, "the day tests nothing"


async def test_a_page_of_a_queue_starts_after_the_last_and_keeps_to_the_subtree(
    world: World,
) -> None:
    today, deadlines = BASE, Deadlines()
    async with world.pool.acquire() as db:
        movements = Movements(db, NODE)
        whole = QueueQuery(world.root_path, today, deadlines, Queue.OVERDUE)
        every = [s.movement.movement_id for s in await movements.queued(whole)]
        assert len(every) > 10
        first = await movements.queued(whole, limit=4)
        rest = await movements.queued(whole, after=first[-1].movement.movement_id, limit=500)
        assert [s.movement.movement_id for s in first + rest] == every
        branch = QueueQuery(world.branch_path, today, deadlines, Queue.OVERDUE)
        mine = await movements.queued(branch)
        assert mine, "the branch answers for some overdue movements"
        assert {s.org_id for s in mine} == {world.branch}
        assert {s.movement.movement_id for s in mine} < set(every)
        partner = await movements.queued(
            QueueQuery(world.root_path, today, deadlines, None, PARTNERS[0])
        )
        assert partner
        assert {(s.movement.host if s.movement.origin == NODE else s.movement.origin)
                for s in partner} == {PARTNERS[0]}  # fmt: skip


PERIODS = [(None, None), (BASE - timedelta(days=120), BASE), (BASE, None), (None, BASE)]


@pytest.mark.parametrize(("since", "until"), PERIODS, ids=["ever", "120 days", "from", "to"])
@pytest.mark.parametrize("group_by", [None, *GroupBy], ids=["total", *(g.value for g in GroupBy)])
async def test_the_database_counts_a_report_as_the_domain_does(
    world: World, since: date | None, until: date | None, group_by: GroupBy | None
) -> None:
    async with world.pool.acquire() as db:
        report = await Movements(db, NODE).report(
            ReportQuery(world.root_path, since, until, group_by=group_by,
                        breakdowns=tuple(GroupBy))
        )  # fmt: skip
    counted = [m for m in world.movements.values() if away_during(m.origin, since, until)]
    assert (report.total.movements, report.total.members) == (
        len(counted),
        len({m.member_id for m in counted}),
    )
    assert report.total.open == sum(movement_state(m.origin, m.host).is_open for m in counted)

    def key(by: GroupBy, m: Stored) -> str:
        if by is GroupBy.STATE:
            return movement_state(m.origin, m.host).value
        if by is GroupBy.MONTH:
            assert m.origin is not None
            return m.origin.period.departed_on.strftime("%Y-%m")
        if by is GroupBy.PARTNER:
            assert m.origin is not None
            return m.origin.destination.jurisdiction if m.side is Side.ORIGIN else m.origin.origin
        return str(world.branch if m.side is Side.ORIGIN else _answering(world, m))

    def expected(by: GroupBy, members: bool) -> dict[str | None, tuple[int, int, int | None]]:
        groups: dict[str, list[Stored]] = {}
        for m in counted:
            groups.setdefault(key(by, m), []).append(m)
        return {
            k: (
                len(v),
                sum(movement_state(m.origin, m.host).is_open for m in v),
                len({m.member_id for m in v}) if members else None,
            )
            for k, v in groups.items()
        }

    for by in GroupBy:
        found = {g.key: (g.movements, g.open, g.members) for g in report.breakdowns[by]}
        assert found == expected(by, members=False), by
    if group_by is not None:
        found = {g.key: (g.movements, g.open, g.members) for g in report.groups}
        assert found == expected(group_by, members=True), group_by
    else:
        assert report.groups == []


def _answering(world: World, m: Stored) -> UUID | str:
    """At the host: the assigned organization if it is this node's, else the suggested
    one if it is, else the root."""
    hint = m.origin.destination.host_org_hint if m.origin else None
    for candidate in (m.host.host_org.org_id if m.host and m.host.host_org else None,
                      hint.org_id if hint else None):  # fmt: skip
        if candidate == world.branch:
            return candidate
    return world.root_path.strip("/")


def test_the_generated_movements_reach_every_queue_rule(world: World) -> None:
    """The comparisons above are not vacuous: every row of the queues' table decides some
    generated movement on some day."""
    decided: set[int] = set()
    whens = [evaluator(rule.when) for rule in queues.RULES]
    for m in world.movements.values():
        for deadlines in DEADLINES:
            for today in DAYS:
                env = Env(m.origin, m.host, {"side": m.side.value, "today": today}, deadlines)
                decided.add(next((i for i, when in enumerate(whens) if when(env)), -1))
    assert set(range(len(queues.RULES))) - decided == set()
