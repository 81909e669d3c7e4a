"""What the handlers need of the node's tables, as abstract repositories.

The unit of work takes one of each. ``adapters/postgres.py`` implements them on one
connection in a transaction; ``tests/unit/fakes.py`` keeps them in memory, so the handlers
can be tested without a database. Rows read only to be shown are plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

from yixian.contracts import ActivityScheduled, Deadlines, Envelope
from yixian.registry.domain import (
    Addressee,
    Answer,
    Concern,
    FeedbackState,
    GroupBy,
    Member,
    MemberStatus,
    Movement,
    Organization,
    Participation,
    Queue,
    Side,
)
from yixian.runtime.apikeys import Role

MemberValues = tuple[UUID, UUID, str, date, str | None, str | None, str | None, str | None]
"""One imported member: (member_id, org_id, name, joined_on, phone, email,
national_id_hash, national_id_masked)."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to read; every criterion given must hold (None: any)."""

    target: str | None = None
    actor: str | None = None
    since: datetime | None = None
    """Rows at or after this time."""
    until: datetime | None = None
    """Rows before this time."""
    before: int | None = None
    """Rows older than this one (its ``id``): the next page after a row."""
    limit: int = 200


@dataclass(frozen=True, slots=True)
class ScopedMovement:
    """A movement with the organization of this node answerable for it (the rule of
    ``MovementRepository.in_scope``)."""

    movement: Movement
    org_id: UUID
    member_id: UUID


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """Which movements of the work queues to read: those the organizations of the subtree
    at ``path`` answer for, in ``queue`` (None: in any), shared with ``partner`` (None:
    any), classified on ``today`` with the node's ``deadlines``."""

    path: str
    today: date
    deadlines: Deadlines
    queue: Queue | None = None
    partner: str | None = None


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """Which movements a report counts (``domain.AWAY_DURING`` in ``since``..``until``),
    of the subtree at ``path``, on ``side`` and shared with ``partner`` (None: any); the
    one breakdown whose groups count distinct members too (``group_by``), and the
    breakdowns that count movements and open movements only (``breakdowns``)."""

    path: str
    since: date | None = None
    until: date | None = None
    side: Side | None = None
    partner: str | None = None
    group_by: GroupBy | None = None
    breakdowns: tuple[GroupBy, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportGroup:
    """A report's count: the movements, how many are open and (where counted) their
    distinct members, of one group (``key``: the group's, as ``GroupBy`` says; None: all
    of them)."""

    key: str | None
    movements: int
    open: int
    members: int | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """The total, the groups of ``group_by`` (with members), and each breakdown's."""

    total: ReportGroup
    groups: list[ReportGroup]
    breakdowns: dict[GroupBy, list[ReportGroup]]


@dataclass(frozen=True, slots=True)
class MemberSearch:
    """What a member search matches; every criterion given must hold (None: any)."""

    name: str | None = None
    """A substring of the name, case-insensitive."""
    phone_digits: str | None = None
    """The digits the member's phone number ends with (``domain.phone_digits``)."""
    national_id_hash: str | None = None
    """The keyed hash of a national ID (``domain.national_id_hash``), never the number."""
    status: MemberStatus | None = None


class OrganizationRepository(Protocol):
    async def get(self, org_id: UUID) -> Organization:
        """The organization; NotFound if this node has none with that id."""

    async def find(self, org_id: UUID) -> Organization | None: ...

    async def root(self) -> Organization | None: ...

    async def add(self, org: Organization, contacts: dict[str, str | None]) -> None:
        """AlreadyExists (field ``name``): a sibling has that name."""

    async def ids_within(self, path: str) -> set[UUID]:
        """The ids of the organizations of a subtree."""

    async def within(self, path: str) -> list[dict[str, Any]]:
        """The organizations of a subtree by path, each as ``record`` gives it."""

    async def record(self, org_id: UUID, *, lock: bool = False) -> dict[str, Any]:
        """The organization with its contacts: org_id, parent_id, kind, jurisdiction, path,
        and ``handlers.ORGANIZATION_FIELDS``; NotFound if this node has none with that id.
        ``lock``: held until the transaction ends."""

    async def update(self, org_id: UUID, changes: Mapping[str, str | None]) -> None:
        """Set the fields of ``changes`` (names of ``handlers.ORGANIZATION_FIELDS``).
        AlreadyExists (field ``name``): a sibling has that name."""


class MemberRepository(Protocol):
    async def get(self, member_id: UUID, *, lock: bool = False) -> Member:
        """The member; NotFound if this node has none with that id. ``lock``: held until
        the transaction ends."""

    async def search(
        self, path: str, criteria: MemberSearch, after: tuple[str, UUID] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` members of the organizations of the subtree that match, by name
        (in code-point order) then id, after ``after`` (name, member_id): member_id, org_id, name,
        joined_on, phone, email, status (``MemberStatus``). Nothing of the national ID."""

    async def update_contact(self, member_id: UUID, contact: Mapping[str, str | None]) -> None:
        """Set the member's phone, email and address. AlreadyExists (field
        ``contact.phone``): a member without a national ID would have the same name,
        joining date and phone as another of the organization."""

    async def add(self, member: Member) -> None:
        """AlreadyExists naming the field of the rule broken (id, national ID, the same
        name, joining date and phone in the organization, or a second member enrolled from
        one movement's transfer)."""

    async def by_transfer(self, movement_id: UUID) -> Member | None:
        """The member enrolled here after the transfer of this movement, if one was."""

    async def count_by_status(self, path: str) -> dict[str, int]:
        """How many members of the subtree have each ``MemberStatus`` (every status, 0 when
        none), and ``transferred_in``: how many were enrolled here after a transfer."""

    async def add_new(self, members: Sequence[MemberValues]) -> set[UUID]:
        """Insert the members no rule makes a duplicate; the ids inserted."""

    async def present_in(
        self, path: str, *, after: UUID | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Everyone present in an organization of the subtree (the rule of the view
        ``people_present``), by presence (local first), name and id: member_id, name, phone,
        email, org_id, org_path, presence (local, visiting), movement_id and origin (of a
        visitor); a page of ``limit`` after the member ``after`` when given."""


class MovementRepository(Protocol):
    """The node's copy of each movement; only this node's own group is written."""

    async def get(self, movement_id: UUID, *, lock: bool = False) -> Movement:
        """NotFound if this node does not know it; ``lock``: held until the transaction
        ends."""

    async def org_ids(self, movement_id: UUID) -> tuple[UUID | None, UUID | None]:
        """(the member's organization at the origin, the host organization), if known."""

    async def member_id(self, movement_id: UUID) -> UUID: ...

    async def of_member(self, member_id: UUID) -> list[Movement]:
        """Every movement of the member this node holds, at either side; oldest first."""

    async def add(self, movement: Movement, member_id: UUID, origin_org_id: UUID) -> None:
        """A new movement from this node (its first origin group, kept in the history).
        AlreadyExists (field ``member_id``): the member has an open movement."""

    async def save_own_group(self, movement: Movement, host_org_id: UUID | None = None) -> None:
        """Write this node's group (never the partner's) and keep it in the history."""

    async def history(self, movement_id: UUID) -> list[dict[str, Any]]:
        """Every group version: group_name, version, snapshot, recorded_at; oldest first."""

    async def add_participation(self, p: Participation) -> bool:
        """Record an attendance; False when its id was recorded before."""

    async def participation(self, participation_id: UUID) -> dict[str, Any] | None:
        """A recorded attendance: movement_id, activity_id, kind, title, attended_at."""

    async def participations(self, movement_id: UUID) -> list[dict[str, Any]]:
        """The movement's attendances by time: participation_id, activity_id, kind, title,
        attended_at."""

    async def forwards_to_follow(
        self, partners: Sequence[str], limit: int
    ) -> list[tuple[UUID, int]]:
        """This node's registered movements whose host forwarded the member to one of
        ``partners`` (the origin follows them, ADR 19), with their host group's version; at
        most ``limit``, oldest first."""

    async def in_scope(
        self,
        path: str,
        side: Side | None,
        open_statuses: Sequence[str] | None,
        *,
        name: str | None = None,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[Movement]:
        """Movements whose answerable organization is in the subtree (at the origin the
        member's organization; at the host the one that checked the member in, else the one
        the origin suggested, else the root), on ``side`` (None: both), with an origin
        status in ``open_statuses`` (None: any); oldest first (then by id). ``name``: the
        member's name holds it (any case); a page of ``limit`` after the movement ``after``
        when given."""

    async def queued(
        self, which: QueueQuery, *, after: UUID | None = None, limit: int | None = None
    ) -> list[ScopedMovement]:
        """The movements of the work queues (``domain.queues.RULES``) that ``which`` names,
        oldest first (then by id), each with its answerable organization; a page of
        ``limit`` after the movement ``after`` when given."""

    async def queue_counts(self, which: QueueQuery) -> dict[Queue, int]:
        """How many movements ``which`` names are in each queue (every queue, 0 when
        none)."""

    async def report(self, which: ReportQuery) -> Report:
        """The counts of a report: the total (with its distinct members), the groups of
        ``group_by`` (with theirs) and of each breakdown, each by key."""


class CertificateRepository(Protocol):
    """The certificates this node issued (``domain.certificate``): one number each."""

    async def next_sequence(self, year: int) -> int:
        """The year's next sequence number on this node, from 1; held (locked) until the
        transaction ends, and given back if it rolls back."""

    async def add(
        self,
        *,
        number: str,
        year: int,
        sequence: int,
        movement_id: UUID,
        member_id: UUID,
        issued_on: date,
        issued_by: str,
    ) -> None:
        """Keep an issued number; AlreadyExists (field ``certificate``) if it was issued."""


class ActivityRepository(Protocol):
    async def add(self, activity: ActivityScheduled, org_id: UUID) -> None:
        """AlreadyExists (field ``title``): the organization scheduled it already."""


class FeedbackRepository(Protocol):
    """Members' concerns and their answers (``domain.feedback``), at the node they are
    addressed to."""

    async def add(self, concern: Concern) -> bool:
        """Keep a new concern; False (nothing kept) when the member has the same concern
        with the same addressee not closed yet (the unique index ``feedback_once``)."""

    async def same_open(
        self, member_id: UUID, addressed_to: Addressee, digest: str
    ) -> Concern | None:
        """The member's concern of that text and addressee that is not closed."""

    async def get(self, feedback_id: UUID, *, lock: bool = False) -> Concern:
        """NotFound (field ``feedback_id``)."""

    async def save(self, concern: Concern) -> None:
        """Its state, first answer and closing."""

    async def add_answer(self, answer: Answer) -> bool:
        """Keep an answer; False when the concern has that answer already
        (``feedback_answers_once``)."""

    async def answers(self, feedback_id: UUID) -> list[Answer]:
        """In the order given."""

    async def count_answers(self, feedback_ids: Sequence[UUID]) -> int: ...

    async def within(
        self,
        path: str,
        *,
        state: FeedbackState | None = None,
        raised_from: datetime | None = None,
        raised_before: datetime | None = None,
    ) -> list[Concern]:
        """Concerns whose organization is in the subtree at ``path``, oldest first."""

    async def of_movement(self, movement_id: UUID, addressed_to: Addressee) -> list[Concern]:
        """A movement's concerns with that addressee, oldest first."""


class ApiKeyRepository(Protocol):
    async def create(self, *, name: str, role: Role, org_id: UUID) -> tuple[UUID, str]:
        """(its id, the key to hand out once); AlreadyExists (field ``name``)."""

    async def within(self, org_path: str) -> list[dict[str, Any]]:
        """Keys bound to the subtree, revoked ones too: key_id, name, role, org_id,
        created_at, revoked_at; never a secret."""

    async def find(self, key_id: UUID) -> dict[str, Any] | None:
        """key_id, name, role, org_id, created_at, revoked_at, org_path, node_wide."""

    async def active_root_operator_keys(self) -> list[UUID]:
        """Locked until the transaction ends."""

    async def revoke(self, key_id: UUID, at: datetime) -> datetime:
        """When it was revoked (the first revocation stands)."""


class VisitorRepository(Protocol):
    """Visitors' claims (ADR 21): the host's own, and those asked of this node as origin."""

    async def add(self, claim: Mapping[str, Any]) -> bool:
        """A new claim, unless one of the person to the same origin exists: whether added."""
        ...

    async def of_person(self, origin: str, national_id_hash: str) -> dict[str, Any] | None: ...

    async def within(self, path: str) -> list[dict[str, Any]]:
        """The claims recorded by the organizations of a subtree, with their answers."""
        ...

    async def unanswered(self, limit: int) -> list[UUID]: ...

    async def asked(self, claim_id: UUID, *, lock: bool = False) -> dict[str, Any] | None: ...

    async def asked_all(self) -> list[dict[str, Any]]: ...

    async def candidates(self, name: str, id_ending: str) -> list[UUID]: ...

    async def decide(self, decision: Mapping[str, Any]) -> bool: ...


class OutboxRepository(Protocol):
    async def add(
        self, event: Envelope[Any], *, local_topic: str | None, pair: tuple[str, str] | None
    ) -> None: ...


class AuditRepository(Protocol):
    async def record(
        self,
        *,
        actor: str,
        role: str | None,
        action: str,
        target: str | None,
        outcome: str,
        detail: dict[str, Any],
        trace_id: str | None,
    ) -> None: ...

    async def entries(self, which: AuditFilter) -> list[dict[str, Any]]:
        """The rows that match, newest first: id, at, actor, key_name, role, action, target,
        outcome, detail, trace_id."""

    async def changes(self, target: str, limit: int = 100) -> list[dict[str, Any]]:
        """What was done to ``target`` (outcome ``ok``), newest first: at, actor, key_name,
        role, action, detail, trace_id."""
