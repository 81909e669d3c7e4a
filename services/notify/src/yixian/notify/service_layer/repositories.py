"""What the planner and the scheduler read and write, as abstract repositories.

The unit of work takes one of each. ``adapters/postgres.py`` implements them on one
connection in a transaction; ``tests/unit/fakes.py`` keeps them in memory, so planning can
be tested without a database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Protocol
from uuid import UUID

from yixian.contracts import HostGroup, OriginGroup
from yixian.notify.domain.notice import Contacts, Notice, Person, Seen
from yixian.notify.domain.rules import Group


class SeenGroups(Protocol):
    """notify's own ``notify_seen``: the last version of each group planned from."""

    async def last(self, movement_id: UUID, group: Group) -> Seen | None:
        """None: never seen. Held until the transaction ends, so two consumers of one group
        plan one after the other."""

    async def record(self, movement_id: UUID, group: Group, seen: Seen) -> None: ...

    async def last_all(
        self, groups: Collection[tuple[UUID, Group]]
    ) -> dict[tuple[UUID, Group], Seen]:
        """``last`` of each of ``groups`` that was seen, at once (one statement on
        PostgreSQL), held alike."""

    async def record_all(self, seen: Mapping[tuple[UUID, Group], Seen]) -> None:
        """``record`` of each, at once."""


class NoticeLog(Protocol):
    """notify's own ``notices``, the keyed delivery log (ADR 8)."""

    async def add(self, notice: Notice) -> bool:
        """False, and nothing changes, when a notice with its key was planned before."""

    async def planned(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` planned before."""

    async def add_all(self, notices: Sequence[Notice]) -> int:
        """``add`` of each, in order, at once (one statement on PostgreSQL); how many were
        new."""
        return sum([await self.add(notice) for notice in notices])


class NodeRecord(Protocol):
    """What notify reads of the node's record and the registry's views; never written."""

    async def groups(self, movement_id: UUID) -> tuple[OriginGroup | None, HostGroup | None]:
        """The node's copy of both groups of a movement (None: not held)."""

    async def groups_of(
        self, movement_ids: Collection[UUID]
    ) -> dict[UUID, tuple[OriginGroup | None, HostGroup | None]]:
        """``groups`` of each of the movements the node holds, at once."""

    async def contacts(self, org_id: UUID | None) -> Contacts | None:
        """The organization's contacts; the root's when it is None or not on this node."""

    async def present_in_area(self, org_id: UUID) -> list[Person]:
        """Everyone present in the organization's subtree, local or visiting (the registry's
        view ``people_present``), local first, then by name and id; none for an unknown
        organization."""

    def open_movements(
        self, node: str, statuses: Collection[str]
    ) -> AsyncIterator[tuple[OriginGroup, HostGroup | None]]:
        """The movements ``node`` is a side of whose origin status is in ``statuses``,
        streamed."""

    async def joined_on(self, month: int, day: int) -> list[Person]:
        """The node's members who joined on that day of a year, and on 29 February."""
