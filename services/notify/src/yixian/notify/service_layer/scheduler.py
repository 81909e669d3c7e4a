"""Notices the clock calls for: reminders before and after deadlines, lost-contact
prompts, political birthdays. Each has an occurrence key (the deadline, the year), so
running the scheduler again, or on two instances, plans nothing twice.

The deadlines are the node's one block (``NodeSettings.deadlines``), and "overdue", the
report's due date and the lost-contact prompts are the contracts' rules
(``check_in_overdue``, ``transfer_reply_overdue`` on the host's deadline, ``report_due_on``,
``prompts_due``: a decision closes its prompt), as in the registry's queues; only how early
a reminder comes is notify's own (:class:`Reminders`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from yixian.contracts import (
    OPEN_ORIGIN_STATUSES,
    Deadlines,
    HostGroup,
    MovementState,
    OriginGroup,
    Prompt,
    check_in_overdue,
    movement_state,
    prompts_due,
    report_due_on,
    transfer_reply_due_on,
    transfer_reply_overdue,
)
from yixian.notify.domain.calendar import birthday_today
from yixian.notify.domain.notice import Address, Contacts
from yixian.notify.domain.rules import BY_REASON, Group, Recipient, Rule, sender_node
from yixian.runtime import get_logger

from .planner import Planner, context_of, member_address
from .unit_of_work import Transactions, UnitOfWork

log = get_logger(__name__)


CHUNK = 500
"""Due notices asked about, rendered and written at once."""


@dataclass(frozen=True, slots=True)
class Due:
    """A notice the schedule calls for, not rendered yet."""

    key: str
    rule: Rule
    recipient: Recipient
    address: Address
    origin: OriginGroup
    host: HostGroup | None
    extra: dict[str, object]
    occurrence: str


@dataclass(frozen=True, slots=True)
class Reminders:
    """How many days before a due date its reminder comes."""

    check_in_days: int = 3
    transfer_reply_days: int = 5


class Scheduler:
    def __init__(
        self,
        transactions: Transactions,
        planner: Planner,
        *,
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        deadlines: Deadlines | None = None,
        reminders: Reminders | None = None,
    ) -> None:
        self.transactions = transactions
        self.planner = planner
        self.node = planner.node
        self.zone = zone
        self.clock = clock
        self.deadlines = deadlines or Deadlines()
        self.reminders = reminders or Reminders()

    async def run(
        self,
        stop: asyncio.Event,
        every: float = 60.0,
        planned: Callable[[], None] = lambda: None,
    ) -> None:
        """Plan what is due every ``every`` seconds; ``planned`` is told when a tick
        planned notices (the dispatcher sends them at once)."""
        while not stop.is_set():
            try:
                if await self.tick():
                    planned()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("schedule failed; retrying", error=str(exc) or type(exc).__name__)
            except Exception:
                log.exception("schedule failed unexpectedly; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    async def tick(self) -> int:
        today = self.clock().astimezone(self.zone).date()
        async with self.transactions() as uow:
            planned = await self._movements(uow, today)
            planned += await self._birthdays(uow, today)
        if planned:
            log.info("scheduled notices planned", count=planned)
        return planned

    def _due(
        self, origin: OriginGroup, host: HostGroup | None, today: date
    ) -> list[tuple[str, str, dict[str, object]]]:
        """The scheduled notices a movement is due today: (reason, occurrence, extra)."""
        deadlines, reminders = self.deadlines, self.reminders
        state = movement_state(origin, host)
        due: list[tuple[str, str, dict[str, object]]] = []
        if state is MovementState.AWAITING_CHECK_IN:
            if today >= origin.check_in_due_on - timedelta(days=reminders.check_in_days):
                due.append(("check_in_due", f"{origin.check_in_due_on}", {}))
            if check_in_overdue(origin, host, today):
                due.append(("not_arrived", f"{origin.check_in_due_on}", {}))
        transfer = origin.transfer
        reply_due = transfer_reply_due_on(origin, host)  # the host's deadline
        if state is MovementState.TRANSFER_PENDING and transfer and reply_due:
            reminder = timedelta(days=reminders.transfer_reply_days)
            if today >= reply_due - reminder:
                due.append(("transfer_reply_due", transfer.requested_at.isoformat(), {}))
            if transfer_reply_overdue(origin, host, today):
                due.append(("transfer_reply_overdue", transfer.requested_at.isoformat(), {}))
        report_due = report_due_on(origin, host, deadlines)  # either side's report moves it on
        if state.is_open and today >= report_due:
            due.append(("yearly_report_due", f"report-{report_due}", {"year": today.year}))
        for prompt, since in prompts_due(origin, host, today, deadlines):  # until decided
            reason = "suspension_prompt" if prompt is Prompt.SUSPENSION else "removal_prompt"
            due.append((reason, f"{since}", {}))
        return due

    async def _movements(self, uow: UnitOfWork, today: date) -> int:
        """The movements' due notices, a chunk at a time: every tick finds the notices of
        the ticks before due again, so only those not planned yet (by key, asked once a
        chunk) are rendered and written."""
        planned = 0
        movements = uow.record.open_movements(
            self.node, [status.value for status in OPEN_ORIGIN_STATUSES]
        )
        contacts: dict[UUID | None, Contacts | None] = {}
        chunk: list[Due] = []
        async for origin, host in movements:  # streamed: never all in memory at once
            chunk += await self._due_notices(uow, origin, host, today, contacts)
            if len(chunk) >= CHUNK:
                planned += await self._plan(uow, chunk)
                chunk = []
        return planned + await self._plan(uow, chunk)

    async def _due_notices(
        self,
        uow: UnitOfWork,
        origin: OriginGroup,
        host: HostGroup | None,
        today: date,
        contacts: dict[UUID | None, Contacts | None],
    ) -> list[Due]:
        try:
            due = self._due(origin, host, today)
        except (OverflowError, ValueError) as exc:  # a partner's date beyond reckoning
            log.warning(
                "movement skipped by the schedule",
                movement_id=str(origin.movement_id),
                error=str(exc),
            )
            return []
        notices = []
        for reason, when, extra in due:
            rule = BY_REASON[reason]
            for recipient in rule.recipients:
                if (
                    sender_node(
                        recipient, Group.SCHEDULE, origin.origin, origin.destination.jurisdiction
                    )
                    != self.node
                ):
                    continue
                address = await self.planner.address(uow.record, recipient, origin, host, contacts)
                occurrence = f"{origin.movement_id}:{reason}:{when}"
                notices.append(Due(
                    self.planner.key(rule, recipient, address, occurrence), rule, recipient,
                    address, origin, host, extra, occurrence,
                ))  # fmt: skip
        return notices

    async def _plan(self, uow: UnitOfWork, due: list[Due]) -> int:
        """Render and write the notices of ``due`` not planned before."""
        if not due:
            return 0
        planned_before = await uow.notices.planned([d.key for d in due])
        return await uow.notices.add_all([
            self.planner.notice(
                d.rule, d.recipient, d.address, {**context_of(d.origin, d.host), **d.extra},
                occurrence=d.occurrence, movement_id=d.origin.movement_id,
            )
            for d in due if d.key not in planned_before
        ])  # fmt: skip

    async def _birthdays(self, uow: UnitOfWork, today: date) -> int:
        rule = BY_REASON["political_birthday"]
        planned = 0
        for member in await uow.record.joined_on(today.month, today.day):
            joined_on = member.joined_on
            years = birthday_today(joined_on, today) if joined_on else None
            if joined_on is None or years is None:
                continue
            planned += await self.planner.add(
                uow.notices,
                rule,
                Recipient.MEMBER,
                member_address(member.member_id, member.phone, member.email),
                {"member_name": member.name, "years": years, "joined_on": joined_on.isoformat()},
                occurrence=f"birthday:{member.member_id}:{today.year}",
            )
        return planned
