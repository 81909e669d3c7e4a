"""A batch planned on PostgreSQL: what was seen, the movements and the notices each read
or written in one statement for the whole batch, and planned once whatever it repeats."""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid4

import pytest

from yixian.contracts import (
    MovementStep,
    OriginGroup,
    OriginGroupChanged,
    OriginStatus,
    make_event,
)
from yixian.contracts.examples import AT, GUSHI, origin_group
from yixian.notify.adapters.postgres import NoticeLog
from yixian.notify.bootstrap import MIGRATIONS, SERVICE, TEMPLATES, transactions
from yixian.notify.domain.notice import Notice
from yixian.notify.domain.templates import Templates
from yixian.notify.service_layer.planner import Planner
from yixian.record import schema
from yixian.runtime import create_pool

pytestmark = pytest.mark.integration


def _event(group: OriginGroup, step: MovementStep) -> bytes:
    return make_event(OriginGroupChanged(group=group, step=step), node=GUSHI, time=AT).encode()


async def test_a_batch_plans_each_notice_once_whatever_it_repeats(database_url: str) -> None:
    await schema.migrate(database_url, SERVICE, MIGRATIONS)
    pool = await create_pool(database_url, size=2)
    try:
        first = origin_group()
        cancelled = origin_group(2, OriginStatus.CANCELLED)  # the same movement, later
        other = first.model_copy(update={"movement_id": uuid4()})
        async with pool.acquire() as conn:
            for group in (cancelled, other):  # the node's copies of both movements
                await conn.execute(
                    "INSERT INTO movements (movement_id, origin, host, member_id,"
                    " origin_version, origin_status, origin_group)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    group.movement_id, group.origin, group.destination.jurisdiction,
                    group.member.member_id, group.version, group.status.value,
                    group.model_dump(mode="json"),
                )  # fmt: skip
        registered = _event(first, MovementStep.REGISTERED)
        events = [registered, b"{not json", _event(other, MovementStep.REGISTERED), registered,
                  _event(cancelled, MovementStep.CANCELLED), registered]  # fmt: skip
        planner = Planner(GUSHI, Templates(TEMPLATES))
        begin = transactions(pool)
        async with begin() as uow:  # a repeat, an older version and garbage among them
            assert await planner.plan_batch(uow, events) == 2  # the member of each
        async with begin() as uow:
            assert await planner.plan_batch(uow, list(reversed(events))) == 0
        async with pool.acquire() as conn:
            notices = await conn.fetch("SELECT * FROM notices")
            seen = await conn.fetch("SELECT movement_id, version, status FROM notify_seen")
            row = notices[0]
            planned = Notice(
                key=row["notice_key"],
                **{name: row[name] for name in Notice.__dataclass_fields__ if name != "key"},
            )
            new = replace(planned, key="f" * 64)
            # a notice twice in one statement is one notice; one planned before is none
            assert await NoticeLog(conn).add_all([new, planned, new]) == 1
            unknown = "0" * 64
            assert await NoticeLog(conn).planned([planned.key, unknown, new.key]) == {
                planned.key,
                new.key,
            }
        assert sorted((n["reason"], n["movement_id"]) for n in notices) == sorted(
            [("outflow_registered", first.movement_id), ("outflow_registered", other.movement_id)]
        )
        assert {tuple(s) for s in seen} == {
            (first.movement_id, 2, "cancelled"),
            (other.movement_id, 1, "registered"),
        }
    finally:
        await pool.close()
