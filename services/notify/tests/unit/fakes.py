"""notify's repositories in memory, and units of work over them: the planner, the
scheduler and the consumer's wiring run here without PostgreSQL.

Each fake keeps the rule its table keeps: ``notices`` has one row per notice key, so a
notice happens once per recipient, reason and occurrence (ADR 8), and a unit of work that
raises leaves notify's own tables as they were (the consumer's batch is one transaction).
The node's record and the registry's views are what ``adapters/postgres.py`` reads;
their rows are set up by the test, as the registry and sync would have written them.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

from yixian.contracts import HostGroup, OrganizationRef, OriginGroup
from yixian.notify.domain.notice import Contacts, Notice, Person, Seen
from yixian.notify.domain.rules import Group
from yixian.notify.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Org:
    """A row of the registry's view ``organization_contacts``."""

    org_id: UUID
    path: str
    root: bool
    contacts: Contacts


@dataclass(frozen=True, slots=True)
class Present:
    """A row of the registry's view ``people_present``."""

    person: Person
    org_path: str
    presence: str  # local, visiting


@dataclass
class NodeTables:
    """One node's tables as notify sees them, shared by the units of work of one test."""

    node: str
    # the node's record and the registry's views (written by others; notify only reads)
    movements: dict[UUID, tuple[OriginGroup | None, HostGroup | None]] = field(default_factory=dict)
    organizations: dict[UUID, Org] = field(default_factory=dict)
    members: list[Person] = field(default_factory=list)
    present: list[Present] = field(default_factory=list)
    # notify's own
    seen: dict[tuple[UUID, Group], Seen] = field(default_factory=dict)
    notices: dict[str, Notice] = field(default_factory=dict)

    def keep(self, group: OriginGroup | HostGroup) -> None:
        """A group as the registry (this node's) or sync (the partner's) stores it."""
        origin, host = self.movements.get(group.movement_id, (None, None))
        if isinstance(group, OriginGroup):
            self.movements[group.movement_id] = (group, host)
        else:
            self.movements[group.movement_id] = (origin, group)

    def org(
        self,
        ref: OrganizationRef,
        *,
        parent: UUID | None = None,
        email: str | None = None,
        webhook: str | None = None,
        sms: str | None = None,
    ) -> Org:
        parent_path = self.organizations[parent].path if parent else "/"
        org = Org(
            ref.org_id,
            f"{parent_path}{ref.org_id}/",
            parent is None,
            Contacts(email, webhook, sms),
        )
        self.organizations[org.org_id] = org
        return org


class FakeSeenGroups:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def last(self, movement_id: UUID, group: Group) -> Seen | None:
        return self.tables.seen.get((movement_id, group))

    async def record(self, movement_id: UUID, group: Group, seen: Seen) -> None:
        self.tables.seen[(movement_id, group)] = seen

    async def last_all(
        self, groups: Collection[tuple[UUID, Group]]
    ) -> dict[tuple[UUID, Group], Seen]:
        return {key: self.tables.seen[key] for key in groups if key in self.tables.seen}

    async def record_all(self, seen: Mapping[tuple[UUID, Group], Seen]) -> None:
        self.tables.seen.update(seen)


class FakeNoticeLog:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def add(self, notice: Notice) -> bool:
        if notice.key in self.tables.notices:  # the primary key of ``notices``
            return False
        self.tables.notices[notice.key] = notice
        return True

    async def planned(self, keys: Collection[str]) -> set[str]:
        return {key for key in keys if key in self.tables.notices}

    async def add_all(self, notices: Sequence[Notice]) -> int:
        return sum([await self.add(notice) for notice in notices])


class FakeNodeRecord:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def groups(self, movement_id: UUID) -> tuple[OriginGroup | None, HostGroup | None]:
        return self.tables.movements.get(movement_id, (None, None))

    async def groups_of(
        self, movement_ids: Collection[UUID]
    ) -> dict[UUID, tuple[OriginGroup | None, HostGroup | None]]:
        movements = self.tables.movements
        return {m: movements[m] for m in movement_ids if m in movements}

    async def contacts(self, org_id: UUID | None) -> Contacts | None:
        orgs = self.tables.organizations
        org = orgs.get(org_id) if org_id else None
        if org is None:
            org = next((o for o in orgs.values() if o.root), None)
        return org.contacts if org else None

    async def present_in_area(self, org_id: UUID) -> list[Person]:
        org = self.tables.organizations.get(org_id)
        if org is None:
            return []
        rows = [p for p in self.tables.present if p.org_path.startswith(org.path)]
        rows.sort(key=lambda p: (p.presence, p.person.name, str(p.person.member_id)))
        return [p.person for p in rows]

    async def open_movements(
        self, node: str, statuses: Collection[str]
    ) -> AsyncIterator[tuple[OriginGroup, HostGroup | None]]:
        for origin, host in list(self.tables.movements.values()):
            if origin is None or node not in (origin.origin, origin.destination.jurisdiction):
                continue
            if origin.status.value in statuses:
                yield origin, host

    async def joined_on(self, month: int, day: int) -> list[Person]:
        return [
            m
            for m in self.tables.members
            if m.joined_on is not None
            and ((m.joined_on.month, m.joined_on.day) in ((month, day), (2, 29)))
        ]


class FakeTransactions:
    """Opens units of work over ``tables``; what notify wrote is undone when one raises."""

    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables
        self.committed = 0
        self.rolled_back = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[UnitOfWork]:
        seen, notices = copy.copy(self.tables.seen), copy.copy(self.tables.notices)
        try:
            yield UnitOfWork(
                seen=FakeSeenGroups(self.tables),
                notices=FakeNoticeLog(self.tables),
                record=FakeNodeRecord(self.tables),
            )
        except BaseException:
            self.tables.seen, self.tables.notices = seen, notices
            self.rolled_back += 1
            raise
        self.committed += 1
