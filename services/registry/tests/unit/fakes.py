"""The registry's repositories in memory, and a unit of work over them: handlers and
queries run here without PostgreSQL.

Each fake keeps the rule its table's constraints keep (the unique indexes of
``migrations/0003_one_effect_per_request.sql``, the scope of a movement, the view
``people_present``) and answers a broken rule as ``adapters/postgres.py`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

from yixian.contracts import (
    OPEN_ORIGIN_STATUSES,
    REMOVED_STATUS,
    ActivityScheduled,
    Envelope,
    HostGroup,
    HostStatus,
    OriginGroup,
    OriginStatus,
    Topic,
    origin_open,
    recorded_status,
    require_route,
)
from yixian.registry.adapters.postgres import ORGANIZATION_CONTACTS, UNIQUE_RULES
from yixian.registry.domain import (
    Addressee,
    AlreadyExists,
    Answer,
    Concern,
    FeedbackState,
    GroupBy,
    Member,
    MemberStatus,
    Movement,
    NotFound,
    Organization,
    Participation,
    Queue,
    Side,
    away_during,
    classify,
    member_status,
)
from yixian.registry.domain.feedback import text_digest
from yixian.registry.service_layer.repositories import (
    AuditFilter,
    MemberSearch,
    MemberValues,
    QueueQuery,
    Report,
    ReportGroup,
    ReportQuery,
    ScopedMovement,
)
from yixian.registry.service_layer.unit_of_work import NodeConfig, Request, UnitOfWork
from yixian.runtime.apikeys import Role, new_api_key

_OPEN = tuple(status.value for status in OPEN_ORIGIN_STATUSES)


def _refuse(constraint: str) -> AlreadyExists:
    field_name, message = UNIQUE_RULES[constraint]
    return AlreadyExists(message, field=field_name)


@dataclass
class StoredMovement:
    """A row of ``movements``: both groups as this node holds them, and its links."""

    movement_id: UUID
    origin: str
    host: str
    member_id: UUID
    origin_org_id: UUID | None
    host_org_id: UUID | None
    origin_group: OriginGroup | None
    host_group: HostGroup | None

    def movement(self) -> Movement:
        return Movement(
            self.movement_id, self.origin, self.host, self.origin_group, self.host_group
        )

    @property
    def open_at_origin(self) -> bool:
        return self.origin_group is not None and origin_open(self.origin_group)

    @property
    def origin_status(self) -> str | None:
        """``movements.origin_status``: the recorded status (``recorded_status``)."""
        return recorded_status(self.origin_group) if self.origin_group else None


@dataclass
class NodeTables:
    """One node's tables, shared by the fakes of one test."""

    node: str
    organizations: dict[UUID, Organization] = field(default_factory=dict)
    contacts: dict[UUID, dict[str, str | None]] = field(default_factory=dict)
    members: dict[UUID, Member] = field(default_factory=dict)
    movements: dict[UUID, StoredMovement] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    participations: dict[UUID, Participation] = field(default_factory=dict)
    activities: dict[UUID, tuple[UUID, ActivityScheduled]] = field(default_factory=dict)
    api_keys: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    outbox: list[tuple[Envelope[Any], str | None, tuple[str, str] | None]] = field(
        default_factory=list
    )
    audit: list[dict[str, Any]] = field(default_factory=list)
    certificate_counters: dict[int, int] = field(default_factory=dict)
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: dict[UUID, Concern] = field(default_factory=dict)
    feedback_answers: list[Answer] = field(default_factory=list)
    visitors: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    visitor_claim_decisions: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    visitor_claims_asked: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    """sync's view: claims partners asked of this node (sync writes it, tests here)."""
    visitor_claim_answers: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    """sync's view: partners' answers to this node's claims."""

    def root(self) -> Organization | None:
        return next((o for o in self.organizations.values() if o.parent_id is None), None)

    def path_of(self, org_id: UUID | None) -> str | None:
        org = self.organizations.get(org_id) if org_id is not None else None
        return org.path if org else None

    def receive(self, group: OriginGroup) -> None:
        """A partner's origin group, as the sync service stores it."""
        self.movements[group.movement_id] = StoredMovement(
            movement_id=group.movement_id,
            origin=group.origin,
            host=group.destination.jurisdiction,
            member_id=group.member.member_id,
            origin_org_id=None,
            host_org_id=None,
            origin_group=group,
            host_group=None,
        )


class FakeVisitors:
    """``visitors`` and ``visitor_claim_decisions``, over sync's two views (ADR 21)."""

    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def add(self, claim: Mapping[str, Any]) -> bool:
        key = (claim["origin"], claim["national_id_hash"])
        if any((v["origin"], v["national_id_hash"]) == key for v in self.tables.visitors.values()):
            return False
        self.tables.visitors[claim["claim_id"]] = dict(claim)
        return True

    def _with_answer(self, v: dict[str, Any]) -> dict[str, Any]:
        answer = self.tables.visitor_claim_answers.get(v["claim_id"], {})
        row = {k: v[k] for k in v if k != "national_id_hash"}
        return row | {
            "result": answer.get("result"),
            "movement_id": answer.get("movement_id"),
            "answered_at": answer.get("answered_at"),
        }

    async def of_person(self, origin: str, national_id_hash: str) -> dict[str, Any] | None:
        for v in self.tables.visitors.values():
            if (v["origin"], v["national_id_hash"]) == (origin, national_id_hash):
                return self._with_answer(v)
        return None

    async def within(self, path: str) -> list[dict[str, Any]]:
        rows = [
            self._with_answer(v)
            for v in self.tables.visitors.values()
            if (self.tables.path_of(v["org_id"]) or "").startswith(path)
        ]
        return sorted(rows, key=lambda r: (r["asked_at"], r["claim_id"]))

    async def unanswered(self, limit: int) -> list[UUID]:
        waiting = [
            a for a in self.tables.visitor_claims_asked.values()
            if a["claim_id"] not in self.tables.visitor_claim_decisions
        ]  # fmt: skip
        return [a["claim_id"] for a in sorted(waiting, key=lambda a: a["received_at"])][:limit]

    def _asked(self, a: dict[str, Any]) -> dict[str, Any]:
        d = self.tables.visitor_claim_decisions.get(a["claim_id"], {})
        names = ("result", "candidates", "member_id", "movement_id", "answered", "decided_at",
                 "decided_by")  # fmt: skip
        return dict(a) | {n: d.get(n) for n in names}

    async def asked(self, claim_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        a = self.tables.visitor_claims_asked.get(claim_id)
        return self._asked(a) if a else None

    async def asked_all(self) -> list[dict[str, Any]]:
        rows = sorted(
            self.tables.visitor_claims_asked.values(),
            key=lambda a: (a["received_at"], a["claim_id"]),
        )
        return [self._asked(a) for a in rows]

    async def candidates(self, name: str, id_ending: str) -> list[UUID]:
        return sorted(
            m.member_id
            for m in self.tables.members.values()
            if m.name == name and m.national_id_masked and m.national_id_masked[-4:] == id_ending
        )

    async def decide(self, decision: Mapping[str, Any]) -> bool:
        claim_id = decision["claim_id"]
        if claim_id in self.tables.visitor_claim_decisions and not decision["replace"]:
            return False
        self.tables.visitor_claim_decisions[claim_id] = {
            k: v for k, v in decision.items() if k != "replace"
        }
        return True


class FakeOrganizations:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def get(self, org_id: UUID) -> Organization:
        org = self.tables.organizations.get(org_id)
        if org is None:
            raise NotFound(f"organization {org_id} does not exist on this node", field="org_id")
        return org

    async def find(self, org_id: UUID) -> Organization | None:
        return self.tables.organizations.get(org_id)

    async def root(self) -> Organization | None:
        return self.tables.root()

    async def add(self, org: Organization, contacts: dict[str, str | None]) -> None:
        siblings = self.tables.organizations.values()
        if any(o.parent_id == org.parent_id and o.name == org.name for o in siblings):
            raise _refuse("organizations_sibling_name")
        self.tables.organizations[org.org_id] = org
        self.tables.contacts[org.org_id] = dict(contacts)

    async def ids_within(self, path: str) -> set[UUID]:
        return {o.org_id for o in self.tables.organizations.values() if o.path.startswith(path)}

    def _record(self, org: Organization) -> dict[str, Any]:
        contacts = self.tables.contacts.get(org.org_id, {})
        return {
            "org_id": org.org_id,
            "parent_id": org.parent_id,
            "kind": org.kind.value,
            "jurisdiction": org.jurisdiction,
            "path": org.path,
            "name": org.name,
            **{name: contacts.get(name) for name in ORGANIZATION_CONTACTS},
        }

    async def within(self, path: str) -> list[dict[str, Any]]:
        found = sorted(
            (o for o in self.tables.organizations.values() if o.path.startswith(path)),
            key=lambda o: o.path,
        )
        return [self._record(o) for o in found]

    async def record(self, org_id: UUID, *, lock: bool = False) -> dict[str, Any]:
        return self._record(await self.get(org_id))

    async def update(self, org_id: UUID, changes: Mapping[str, str | None]) -> None:
        assert set(changes) <= {"name", *ORGANIZATION_CONTACTS}, sorted(changes)
        org = self.tables.organizations[org_id]
        if "name" in changes:
            name = changes["name"]
            assert name is not None
            siblings = self.tables.organizations.values()
            if any(
                o.parent_id == org.parent_id and o.name == name and o.org_id != org_id
                for o in siblings
            ):
                raise _refuse("organizations_sibling_name")
            self.tables.organizations[org_id] = replace(org, name=name)
        contacts = self.tables.contacts.setdefault(org_id, {})
        contacts.update({k: v for k, v in changes.items() if k != "name"})


class FakeMembers:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def get(self, member_id: UUID, *, lock: bool = False) -> Member:
        member = self.tables.members.get(member_id)
        if member is None:
            raise NotFound(f"member {member_id} does not exist on this node", field="member_id")
        return member

    def _status(self, member_id: UUID) -> str:
        return member_status(
            recorded_status(m.origin_group)
            for m in self.tables.movements.values()
            if m.member_id == member_id and m.origin_org_id and m.origin_group
        ).value

    def _matches(self, member: Member, path: str, criteria: MemberSearch) -> bool:
        org_path = self.tables.path_of(member.org_id)
        digits = re.sub(r"[^0-9]", "", member.phone) if member.phone is not None else None
        return bool(
            org_path is not None
            and org_path.startswith(path)
            and (criteria.name is None or criteria.name.lower() in member.name.lower())
            and (
                criteria.phone_digits is None
                or (digits is not None and digits.endswith(criteria.phone_digits))
            )
            and (
                criteria.national_id_hash is None
                or member.national_id_hash == criteria.national_id_hash
            )
            and (criteria.status is None or self._status(member.member_id) == criteria.status)
        )

    async def search(
        self, path: str, criteria: MemberSearch, after: tuple[str, UUID] | None, limit: int
    ) -> list[dict[str, Any]]:
        found = sorted(
            (
                m
                for m in self.tables.members.values()
                if self._matches(m, path, criteria)
                and (after is None or (m.name, m.member_id) > after)
            ),
            key=lambda m: (m.name, m.member_id),  # code points, as COLLATE "C"
        )
        return [
            {
                "member_id": m.member_id,
                "org_id": m.org_id,
                "name": m.name,
                "joined_on": m.joined_on,
                "phone": m.phone,
                "email": m.email,
                "status": self._status(m.member_id),
            }
            for m in found[:limit]
        ]

    async def update_contact(self, member_id: UUID, contact: Mapping[str, str | None]) -> None:
        member = replace(
            self.tables.members[member_id],
            phone=contact.get("phone"),
            email=contact.get("email"),
            address=contact.get("address"),
        )
        others = [m for m in self.tables.members.values() if m.member_id != member_id]
        if member.national_id_hash is None and any(
            o.national_id_hash is None
            and (o.org_id, o.name, o.joined_on, o.phone or "")
            == (member.org_id, member.name, member.joined_on, member.phone or "")
            for o in others
        ):
            raise AlreadyExists(
                "another member of the organization has this name, joining date and phone",
                field="contact.phone",
            )
        self.tables.members[member_id] = member

    def _broken_rule(self, member: Member) -> str | None:
        def natural_key(m: Member) -> tuple[Any, ...]:
            return (m.org_id, m.name, m.joined_on, m.phone or "")

        for other in self.tables.members.values():
            if other.member_id == member.member_id:
                return "members_pkey"
            if (
                member.transfer_movement_id is not None
                and other.transfer_movement_id == member.transfer_movement_id
            ):
                return "members_transferred_in_once"
            if member.national_id_hash and other.national_id_hash == member.national_id_hash:
                return "members_national_id_hash_key"
            if (
                member.national_id_hash is None
                and other.national_id_hash is None
                and natural_key(other) == natural_key(member)
            ):
                return "members_natural_key"
        return None

    async def add(self, member: Member) -> None:
        if (rule := self._broken_rule(member)) is not None:
            raise _refuse(rule)
        self.tables.members[member.member_id] = member

    async def by_transfer(self, movement_id: UUID) -> Member | None:
        return next(
            (m for m in self.tables.members.values() if m.transfer_movement_id == movement_id),
            None,
        )

    async def count_by_status(self, path: str) -> dict[str, int]:
        counts = {status.value: 0 for status in MemberStatus} | {"transferred_in": 0}
        for member in self.tables.members.values():
            org_path = self.tables.path_of(member.org_id)
            if org_path is not None and org_path.startswith(path):
                counts[self._status(member.member_id)] += 1
                counts["transferred_in"] += member.transferred_from is not None
        return counts

    async def add_new(self, members: Sequence[MemberValues]) -> set[UUID]:
        inserted: set[UUID] = set()
        for values in members:
            member = Member(*values)
            if self._broken_rule(member) is None:
                self.tables.members[member.member_id] = member
                inserted.add(member.member_id)
        return inserted

    async def present_in(
        self, path: str, *, after: UUID | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        tables = self.tables
        away = {  # away, or transferred out: not present here (migration 0009)
            m.member_id
            for m in tables.movements.values()
            if m.origin_org_id
            and m.origin_group
            and (
                m.open_at_origin
                or recorded_status(m.origin_group)
                in (OriginStatus.TRANSFERRED.value, REMOVED_STATUS)
            )
        }
        people: list[dict[str, Any]] = []
        for member in tables.members.values():
            org_path = tables.path_of(member.org_id)
            if member.member_id not in away and org_path and org_path.startswith(path):
                people.append(
                    {
                        "member_id": member.member_id,
                        "name": member.name,
                        "phone": member.phone,
                        "email": member.email,
                        "org_id": member.org_id,
                        "org_path": org_path,
                        "presence": "local",
                        "movement_id": None,
                        "origin": None,
                    }
                )
        for stored in tables.movements.values():
            org_path = tables.path_of(stored.host_org_id)
            host, origin = stored.host_group, stored.origin_group
            if (
                origin is None
                or host is None
                or host.status is not HostStatus.CHECKED_IN
                or not stored.open_at_origin
                or org_path is None
                or not org_path.startswith(path)
            ):
                continue
            people.append(
                {
                    "member_id": stored.member_id,
                    "name": origin.member.name,
                    "phone": origin.contact.phone,
                    "email": origin.contact.email,
                    "org_id": stored.host_org_id,
                    "org_path": org_path,
                    "presence": "visiting",
                    "movement_id": stored.movement_id,
                    "origin": stored.origin,
                }
            )
        people.sort(key=lambda p: (p["presence"], p["name"], str(p["member_id"])))
        if after is not None:
            at = next((i for i, p in enumerate(people) if p["member_id"] == after), None)
            people = people[at + 1 :] if at is not None else []
        return people[:limit] if limit is not None else people


class FakeMovements:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    def _stored(self, movement_id: UUID) -> StoredMovement:
        stored = self.tables.movements.get(movement_id)
        if stored is None:
            raise NotFound(f"movement {movement_id} is not known on this node", field="movement_id")
        return stored

    async def get(self, movement_id: UUID, *, lock: bool = False) -> Movement:
        return self._stored(movement_id).movement()

    async def org_ids(self, movement_id: UUID) -> tuple[UUID | None, UUID | None]:
        stored = self.tables.movements.get(movement_id)
        return (stored.origin_org_id, stored.host_org_id) if stored else (None, None)

    async def member_id(self, movement_id: UUID) -> UUID:
        return self._stored(movement_id).member_id

    async def of_member(self, member_id: UUID) -> list[Movement]:
        return [m.movement() for m in self.tables.movements.values() if m.member_id == member_id]

    async def add(self, movement: Movement, member_id: UUID, origin_org_id: UUID) -> None:
        group = movement.origin_group
        assert group is not None
        assert movement.origin == self.tables.node
        stored = StoredMovement(
            movement.movement_id, movement.origin, movement.host, member_id, origin_org_id,
            None, group, None,
        )  # fmt: skip
        if stored.open_at_origin and any(
            m.member_id == member_id and m.origin_org_id and m.open_at_origin
            for m in self.tables.movements.values()
        ):
            raise _refuse("movements_one_open_per_member")
        self.tables.movements[movement.movement_id] = stored
        self._keep("origin", group)

    async def save_own_group(self, movement: Movement, host_org_id: UUID | None = None) -> None:
        stored = self._stored(movement.movement_id)
        if movement.side_of(self.tables.node) is Side.ORIGIN:
            assert movement.origin_group is not None
            assert stored.origin_group is None or (
                stored.origin_group.version < movement.origin_group.version
            ), "changed under a held lock"
            stored.origin_group = movement.origin_group
            self._keep("origin", movement.origin_group)
        else:
            assert movement.host_group is not None
            assert stored.host_group is None or (
                stored.host_group.version < movement.host_group.version
            ), "changed under a held lock"
            stored.host_group = movement.host_group
            stored.host_org_id = host_org_id or stored.host_org_id
            self._keep("host", movement.host_group)

    def _keep(self, group_name: str, group: OriginGroup | HostGroup) -> None:
        self.tables.history.append(
            {
                "movement_id": group.movement_id,
                "group_name": group_name,
                "version": group.version,
                "snapshot": group.model_dump(mode="json"),
                "recorded_at": group.changed_at,
            }
        )

    async def history(self, movement_id: UUID) -> list[dict[str, Any]]:
        return [h for h in self.tables.history if h["movement_id"] == movement_id]

    async def add_participation(self, p: Participation) -> bool:
        if p.participation_id in self.tables.participations:
            return False
        self.tables.participations[p.participation_id] = p
        return True

    @staticmethod
    def _row(p: Participation) -> dict[str, Any]:
        return {
            "participation_id": p.participation_id,
            "movement_id": p.movement_id,
            "activity_id": p.activity_id,
            "kind": p.kind.value,
            "title": p.title,
            "attended_at": p.attended_at,
        }

    async def participation(self, participation_id: UUID) -> dict[str, Any] | None:
        found = self.tables.participations.get(participation_id)
        return self._row(found) if found else None

    async def participations(self, movement_id: UUID) -> list[dict[str, Any]]:
        mine = [p for p in self.tables.participations.values() if p.movement_id == movement_id]
        return [self._row(p) for p in sorted(mine, key=lambda p: p.attended_at)]

    def _scope_path(self, stored: StoredMovement) -> str | None:
        tables = self.tables
        group = stored.origin_group
        hint = group.destination.host_org_hint if group else None
        candidates = (
            tables.path_of(stored.origin_org_id) if stored.origin == tables.node else None,
            tables.path_of(stored.host_org_id),
            tables.path_of(hint.org_id) if hint else None,
            root.path if (root := tables.root()) else None,
        )
        return next((path for path in candidates if path is not None), None)

    async def forwards_to_follow(
        self, partners: Sequence[str], limit: int
    ) -> list[tuple[UUID, int]]:
        found = [
            (m.movement_id, m.host_group.version)
            for m in self.tables.movements.values()
            if m.origin == self.tables.node
            and m.origin_org_id
            and m.origin_group is not None
            and m.origin_group.status is OriginStatus.REGISTERED
            and m.host_group is not None
            and m.host_group.status is HostStatus.FORWARDED
            and m.host_group.forwarded_to in partners
        ]
        return found[:limit]

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
        found: list[Movement] = []
        for stored in self.tables.movements.values():  # in the order they were added
            scope = self._scope_path(stored)
            if scope is None or not scope.startswith(path):
                continue
            if side is not None and (stored.origin if side is Side.ORIGIN else stored.host) != (
                self.tables.node
            ):
                continue
            status = stored.origin_status
            if open_statuses is not None and status not in open_statuses:
                continue
            member = stored.origin_group.member.name if stored.origin_group else ""
            if name is not None and name.lower() not in member.lower():
                continue
            found.append(stored.movement())
        if after is not None:  # the page starts after that movement, in the order added
            order = list(self.tables.movements)
            if after not in order:
                return []
            found = [m for m in found if order.index(m.movement_id) > order.index(after)]
        return found[:limit] if limit is not None else found

    def _scoped(self, stored: StoredMovement) -> ScopedMovement:
        by_path = {o.path: o.org_id for o in self.tables.organizations.values()}
        scope = self._scope_path(stored)
        assert scope is not None
        return ScopedMovement(stored.movement(), by_path[scope], stored.member_id)

    def _queued(self, which: QueueQuery) -> list[tuple[StoredMovement, Queue]]:
        """The domain's rules on every movement of the scope, in the order added."""
        found = []
        for stored in self.tables.movements.values():
            scope = self._scope_path(stored)
            if scope is None or not scope.startswith(which.path):
                continue
            side = stored.movement().side_of(self.tables.node)
            partner = stored.host if side is Side.ORIGIN else stored.origin
            if which.partner is not None and partner != which.partner:
                continue
            if stored.origin_status not in (*_OPEN, OriginStatus.TRANSFERRED.value):
                continue  # the movements the queues read (the index movements_queues)
            entry = classify(
                side, stored.origin_group, stored.host_group, which.today, which.deadlines
            )
            if entry is not None and which.queue in (None, entry.queue):
                found.append((stored, entry.queue))
        return found

    async def queued(
        self, which: QueueQuery, *, after: UUID | None = None, limit: int | None = None
    ) -> list[ScopedMovement]:
        found = [stored for stored, _ in self._queued(which)]
        if after is not None:  # the page starts after that movement, in the order added
            order = list(self.tables.movements)
            if after not in order:
                return []
            found = [m for m in found if order.index(m.movement_id) > order.index(after)]
        return [self._scoped(m) for m in (found[:limit] if limit is not None else found)]

    async def queue_counts(self, which: QueueQuery) -> dict[Queue, int]:
        counts = dict.fromkeys(Queue, 0)
        for _, queue in self._queued(which):
            counts[queue] += 1
        return counts

    async def report(self, which: ReportQuery) -> Report:
        found: list[tuple[StoredMovement, Side, str]] = []
        for stored in self.tables.movements.values():
            scope = self._scope_path(stored)
            side = stored.movement().side_of(self.tables.node)
            partner = stored.host if side is Side.ORIGIN else stored.origin
            if (
                scope is not None
                and scope.startswith(which.path)
                and (which.side is None or side is which.side)
                and (which.partner is None or partner == which.partner)
                and away_during(stored.origin_group, which.since, which.until)
            ):
                found.append((stored, side, partner))

        def key(group_by: GroupBy, stored: StoredMovement, partner: str) -> str:
            if group_by is GroupBy.BRANCH:
                return str(self._scoped(stored).org_id)
            if group_by is GroupBy.PARTNER:
                return partner
            if group_by is GroupBy.STATE:
                return stored.movement().state.value
            assert stored.origin_group is not None
            return stored.origin_group.period.departed_on.strftime("%Y-%m")

        def count(name: str | None, movements: list[StoredMovement], members: bool) -> ReportGroup:
            return ReportGroup(
                name,
                len(movements),
                sum(m.movement().state.is_open for m in movements),
                len({m.member_id for m in movements}) if members else None,
            )

        def grouped(group_by: GroupBy, members: bool) -> list[ReportGroup]:
            groups: dict[str, list[StoredMovement]] = {}
            for stored, _, partner in found:
                groups.setdefault(key(group_by, stored, partner), []).append(stored)
            return [count(k, v, members) for k, v in sorted(groups.items())]

        return Report(
            count(None, [m for m, _, _ in found], True),
            grouped(which.group_by, True) if which.group_by is not None else [],
            {b: grouped(b, False) for b in dict.fromkeys(which.breakdowns)},
        )


class FakeCertificates:
    """``certificate_counters`` and ``certificates``: a year's counter, and each number once
    (a unit of work that raises leaves them as they were only in PostgreSQL: here a failed
    registration keeps its number, which the tests of gaps run on the database)."""

    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def next_sequence(self, year: int) -> int:
        self.tables.certificate_counters[year] = self.tables.certificate_counters.get(year, 0) + 1
        return self.tables.certificate_counters[year]

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
        kept = self.tables.certificates.values()
        if number in self.tables.certificates or any(
            (c["year"], c["sequence"]) == (year, sequence) for c in kept
        ):
            raise _refuse("certificates_pkey")
        if any(c["movement_id"] == movement_id for c in kept):
            raise _refuse("certificates_movement_id_key")
        self.tables.certificates[number] = {
            "number": number,
            "year": year,
            "sequence": sequence,
            "movement_id": movement_id,
            "member_id": member_id,
            "issued_on": issued_on,
            "issued_by": issued_by,
        }


class FakeActivities:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def add(self, activity: ActivityScheduled, org_id: UUID) -> None:
        def key(org: UUID, a: ActivityScheduled) -> tuple[Any, ...]:
            return (org, a.kind, a.title, a.starts_at)

        if any(key(*kept) == key(org_id, activity) for kept in self.tables.activities.values()):
            raise _refuse("activities_once")
        self.tables.activities[activity.activity_id] = (org_id, activity)


class FakeFeedback:
    """``feedback`` and ``feedback_answers``, with their unique rules (``feedback_once``:
    one concern of a member, addressee and text not closed; ``feedback_answers_once``)."""

    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def add(self, concern: Concern) -> bool:
        if await self.same_open(concern.member_id, concern.addressed_to, concern.digest):
            return False
        self.tables.feedback[concern.feedback_id] = concern
        return True

    async def same_open(
        self, member_id: UUID, addressed_to: Addressee, digest: str
    ) -> Concern | None:
        return next(
            (
                c
                for c in self.tables.feedback.values()
                if (c.member_id, c.addressed_to, c.digest) == (member_id, addressed_to, digest)
                and c.state is not FeedbackState.CLOSED
            ),
            None,
        )

    async def get(self, feedback_id: UUID, *, lock: bool = False) -> Concern:
        concern = self.tables.feedback.get(feedback_id)
        if concern is None:
            raise NotFound(f"concern {feedback_id} is not known on this node", field="feedback_id")
        return concern

    async def save(self, concern: Concern) -> None:
        self.tables.feedback[concern.feedback_id] = concern

    async def add_answer(self, answer: Answer) -> bool:
        key = (answer.feedback_id, text_digest(answer.text))
        if any((a.feedback_id, text_digest(a.text)) == key for a in self.tables.feedback_answers):
            return False
        self.tables.feedback_answers.append(answer)
        return True

    async def answers(self, feedback_id: UUID) -> list[Answer]:
        kept = [a for a in self.tables.feedback_answers if a.feedback_id == feedback_id]
        return sorted(kept, key=lambda a: (a.answered_at, a.answer_id))

    async def count_answers(self, feedback_ids: Sequence[UUID]) -> int:
        wanted = set(feedback_ids)
        return sum(a.feedback_id in wanted for a in self.tables.feedback_answers)

    async def within(
        self,
        path: str,
        *,
        state: FeedbackState | None = None,
        raised_from: datetime | None = None,
        raised_before: datetime | None = None,
    ) -> list[Concern]:
        return sorted(
            (
                c
                for c in self.tables.feedback.values()
                if (self.tables.path_of(c.org_id) or "").startswith(path)
                and state in (None, c.state)
                and (raised_from is None or c.raised_at >= raised_from)
                and (raised_before is None or c.raised_at < raised_before)
            ),
            key=lambda c: (c.raised_at, c.feedback_id),
        )

    async def of_movement(self, movement_id: UUID, addressed_to: Addressee) -> list[Concern]:
        return sorted(
            (
                c
                for c in self.tables.feedback.values()
                if c.movement_id == movement_id and c.addressed_to is addressed_to
            ),
            key=lambda c: (c.raised_at, c.feedback_id),
        )


class FakeApiKeys:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def create(self, *, name: str, role: Role, org_id: UUID) -> tuple[UUID, str]:
        if any(k["name"] == name for k in self.tables.api_keys.values()):
            raise AlreadyExists(f"a key named {name!r} already exists on this node", field="name")
        key_id, key, _ = new_api_key()
        self.tables.api_keys[key_id] = {
            "key_id": key_id,
            "name": name,
            "role": role.value,
            "org_id": org_id,
            "created_at": datetime.now().astimezone(),
            "revoked_at": None,
        }
        return key_id, key

    def _with_org(self, key: dict[str, Any]) -> dict[str, Any]:
        org = self.tables.organizations[key["org_id"]]
        return {**key, "org_path": org.path, "node_wide": org.parent_id is None}

    async def within(self, org_path: str) -> list[dict[str, Any]]:
        return [
            dict(k)
            for k in self.tables.api_keys.values()
            if self._with_org(k)["org_path"].startswith(org_path)
        ]

    async def find(self, key_id: UUID) -> dict[str, Any] | None:
        key = self.tables.api_keys.get(key_id)
        return self._with_org(key) if key else None

    async def active_root_operator_keys(self) -> list[UUID]:
        return sorted(
            k["key_id"]
            for k in map(self._with_org, self.tables.api_keys.values())
            if k["node_wide"] and k["role"] == Role.OPERATOR.value and k["revoked_at"] is None
        )

    async def revoke(self, key_id: UUID, at: datetime) -> datetime:
        key = self.tables.api_keys[key_id]
        key["revoked_at"] = key["revoked_at"] or at
        revoked_at: datetime = key["revoked_at"]
        return revoked_at


class FakeOutbox:
    def __init__(self, tables: NodeTables) -> None:
        self.tables = tables

    async def add(
        self, event: Envelope[Any], *, local_topic: str | None, pair: tuple[str, str] | None
    ) -> None:
        """As ``yixian.record.outbox.Outbox.add``: only where the event's route goes."""
        for topic, target in ((Topic.LOCAL, local_topic), (Topic.PAIR, pair)):
            if target is not None:
                require_route(event.type, topic)
        self.tables.outbox.append((event, local_topic, pair))


class FakeAuditLog:
    """``audit_log``; a row is stamped with its request's time (PostgreSQL stamps the
    database's clock), so that tests of the time filters set the time."""

    def __init__(self, tables: NodeTables, now: datetime | None = None) -> None:
        self.tables = tables
        self.now = now

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
    ) -> None:
        self.tables.audit.append(
            {
                "id": len(self.tables.audit) + 1,
                "at": self.now or datetime.now().astimezone(),
                "actor": actor,
                "key_name": None,
                "role": role,
                "action": action,
                "target": target,
                "outcome": outcome,
                "detail": detail,
                "trace_id": trace_id,
            }
        )

    async def entries(self, which: AuditFilter) -> list[dict[str, Any]]:
        return [
            e
            for e in reversed(self.tables.audit)
            if which.target in (None, e["target"])
            and which.actor in (None, e["actor"])
            and (which.since is None or e["at"] >= which.since)
            and (which.until is None or e["at"] < which.until)
            and (which.before is None or e["id"] < which.before)
        ][: which.limit]

    async def changes(self, target: str, limit: int = 100) -> list[dict[str, Any]]:
        newest_first = reversed(self.tables.audit)
        return [e for e in newest_first if e["target"] == target and e["outcome"] == "ok"][:limit]


class FakeUnitOfWork(UnitOfWork):
    """A unit of work over one node's tables in memory (``tables``, shared by the units of
    work of one test, as one database is)."""

    def __init__(self, config: NodeConfig, request: Request, tables: NodeTables) -> None:
        super().__init__(
            config=config,
            request=request,
            organizations=FakeOrganizations(tables),
            members=FakeMembers(tables),
            movements=FakeMovements(tables),
            activities=FakeActivities(tables),
            api_keys=FakeApiKeys(tables),
            outbox=FakeOutbox(tables),
            audit=FakeAuditLog(tables, request.now),
            certificates=FakeCertificates(tables),
            feedback=FakeFeedback(tables),
            visitors=FakeVisitors(tables),
        )
        self.tables = tables
