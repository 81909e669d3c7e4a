"""What the planner and the scheduler read and write, as abstract repositories.

The unit of work takes one of each. ``adapters/postgres.py`` implements them on one
connection in a transaction; ``tests/unit/fakes.py`` keeps them in memory, so planning can
be tested without a database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
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


class NoticeLog(Protocol):
    """notify's own ``notices``, the keyed delivery log (ADR 8)."""

    async def add(self, notice: Notice) -> bool:
        """False, and nothing changes, when a notice with its key was planned before."""


class NodeRecord(Protocol):
    """What notify reads of the node's record and the registry's views; never written."""

    async def groups(self, movement_id: UUID) -> tuple[OriginGroup | None, HostGroup | None]:
        """The node's copy of both groups of a movement (None: not held)."""

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
