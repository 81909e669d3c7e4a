"""Notices the clock calls for: reminders before and after deadlines, lost-contact
prompts, political birthdays. Each has an occurrence key (the deadline, the year), so
running the scheduler again, or on two instances, plans nothing twice.

The deadlines are the node's one block (``NodeSettings.deadlines``), and "overdue" is
the contracts' rule (``check_in_overdue``, ``transfer_reply_overdue``), as in the
registry's queues; only how early a reminder comes is notify's own (:class:`Reminders`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from yixian.contracts import (
    OPEN_ORIGIN_STATUSES,
    Deadlines,
    HostGroup,
    MovementState,
    OriginGroup,
    check_in_overdue,
    movement_state,
    transfer_reply_overdue,
)
from yixian.notify.domain.calendar import birthday_today, reports_due
from yixian.notify.domain.rules import BY_REASON, Group, Recipient, sender_node
from yixian.runtime import DbConnection, get_logger

from .planner import Planner, context_of, member_address

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reminders:
    """How many days before a due date its reminder comes."""

    check_in_days: int = 3
    transfer_reply_days: int = 5


class Scheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        planner: Planner,
        *,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        deadlines: Deadlines | None = None,
        reminders: Reminders | None = None,
    ) -> None:
        self.pool = pool
        self.planner = planner
        self.node = planner.node
        self.zone = zone
        self.clock = clock
        self.deadlines = deadlines or Deadlines()
        self.reminders = reminders or Reminders()

    async def run(self, stop: asyncio.Event, every: float = 60.0) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("schedule failed; retrying", error=str(exc) or type(exc).__name__)
            except Exception:
                log.exception("schedule failed unexpectedly; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    async def tick(self) -> int:
        today = self.clock().astimezone(self.zone).date()
        async with self.pool.acquire() as conn, conn.transaction():
            planned = await self._movements(conn, today)
            planned += await self._birthdays(conn, today)
        if planned:
            log.info("scheduled notices planned", count=planned)
        return planned

    async def _movements(self, conn: DbConnection, today: date) -> int:
        # streamed (a cursor inside the tick's transaction): a county's open movements are
        # never all in memory at once
        rows = conn.cursor(
            "SELECT origin_group, host_group FROM movements WHERE (origin = $1 OR host = $1)"
            " AND origin_status = ANY($2::text[])",
            self.node,
            sorted(status.value for status in OPEN_ORIGIN_STATUSES),
            prefetch=500,
        )
        planned = 0
        deadlines, reminders = self.deadlines, self.reminders
        async for row in rows:
            origin = OriginGroup.model_validate(row["origin_group"])
            host = HostGroup.model_validate(row["host_group"]) if row["host_group"] else None
            state = movement_state(origin, host)
            due: list[tuple[str, str, dict[str, object]]] = []
            if state is MovementState.AWAITING_CHECK_IN:
                if today >= origin.check_in_due_on - timedelta(days=reminders.check_in_days):
                    due.append(("check_in_due", f"{origin.check_in_due_on}", {}))
                if check_in_overdue(origin, host, today):
                    due.append(("not_arrived", f"{origin.check_in_due_on}", {}))
            transfer = origin.transfer
            if state is MovementState.TRANSFER_PENDING and transfer is not None:
                reminder = timedelta(days=reminders.transfer_reply_days)
                if today >= transfer.reply_due_on - reminder:
                    due.append(("transfer_reply_due", transfer.requested_at.isoformat(), {}))
                if transfer_reply_overdue(origin, host, today):
                    due.append(("transfer_reply_overdue", transfer.requested_at.isoformat(), {}))
            reports = reports_due(origin.period.departed_on, today, deadlines.report_interval_days)
            if reports and state.is_open:
                due.append(("yearly_report_due", f"report-{reports}", {"year": today.year}))
            if state is MovementState.LOST_CONTACT and host and host.lost_contact_since:
                since = host.lost_contact_since
                if today >= deadlines.suspension_prompt_on(since):
                    due.append(("suspension_prompt", f"{since}", {}))
                if today >= deadlines.removal_prompt_on(since):
                    due.append(("removal_prompt", f"{since}", {}))
            for reason, when, extra in due:
                rule = BY_REASON[reason]
                for recipient in rule.recipients:
                    if (
                        sender_node(
                            recipient,
                            Group.SCHEDULE,
                            origin.origin,
                            origin.destination.jurisdiction,
                        )
                        != self.node
                    ):
                        continue
                    address = await self.planner.address(conn, recipient, origin, host)
                    planned += await self.planner.add(
                        conn,
                        rule,
                        recipient,
                        address,
                        {**context_of(origin, host), **extra},
                        occurrence=f"{origin.movement_id}:{reason}:{when}",
                        movement_id=origin.movement_id,
                    )
        return planned

    async def _birthdays(self, conn: DbConnection, today: date) -> int:
        rule = BY_REASON["political_birthday"]
        candidates = await conn.fetch(
            "SELECT member_id, name, phone, email, joined_on FROM members"
            " WHERE (extract(month FROM joined_on), extract(day FROM joined_on))"
            " IN (($1, $2), (2, 29))",
            today.month,
            today.day,
        )
        planned = 0
        for member in candidates:
            years = birthday_today(member["joined_on"], today)
            if years is None:
                continue
            planned += await self.planner.add(
                conn,
                rule,
                Recipient.MEMBER,
                member_address(member["member_id"], member["phone"], member["email"]),
                {
                    "member_name": member["name"],
                    "years": years,
                    "joined_on": member["joined_on"].isoformat(),
                },
                occurrence=f"birthday:{member['member_id']}:{today.year}",
            )
        return planned
