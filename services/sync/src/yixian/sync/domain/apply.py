"""Applying a partner's event to this node's copy of a movement: who may send what, and
the version gate that makes apply idempotent and independent of delivery order.

The owner's copy is authoritative: a repair copy (``repair``, the owner's current group
sent by anti-entropy) replaces the replica's whenever the two differ, even at an equal
or lower version, so a replica frozen or hijacked by a bad version always comes back.
A repair copy is the owner's group *as it was when sent*: one the owner numbered before
the event that set the replica (its ``Mark``) is stale, so that a copy still in flight
when the owner wrote a newer version never rolls the replica back."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from yixian.contracts import (
    HostGroup,
    HostGroupChanged,
    OriginGroup,
    OriginGroupChanged,
    ParticipationRecorded,
)


class Refused(Exception):
    """The event may not be applied here; the reason goes to the dead-letter record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Mark = tuple[int, int]
"""(link epoch, pair number) of the partner's event that set a replica group: the order in
which the owner sent it (ADR 16). An event without an epoch is of epoch 0."""


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Replica:
    """This node's copy of one movement: both groups, either possibly not known yet."""

    origin: OriginGroup | None
    host: HostGroup | None

    @property
    def versions(self) -> tuple[int, int]:
        return (self.origin.version if self.origin else 0, self.host.version if self.host else 0)


@dataclass(frozen=True, slots=True)
class StoredMovement:
    """This node's copy of a shared movement as a partner's event finds it."""

    origin: str
    host: str
    replica: Replica
    set_by: Mark | None = None
    """(epoch, pair number) of the partner's event that set the partner's group here."""


def check_origin_group(group: OriginGroup, *, sender: str, node: str) -> None:
    if group.origin != sender:
        raise Refused(
            f"origin group of movement {group.movement_id} names origin {group.origin}, "
            f"but {sender} sent it: only the origin writes the origin group"
        )
    if group.destination.jurisdiction != node:
        raise Refused(
            f"origin group of movement {group.movement_id} is for host "
            f"{group.destination.jurisdiction}, not for this node {node}"
        )


def check_host_group(group: HostGroup, *, sender: str, node: str, origin: str | None) -> None:
    if group.host != sender:
        raise Refused(
            f"host group of movement {group.movement_id} names host {group.host}, "
            f"but {sender} sent it: only the host writes the host group"
        )
    if origin is None:
        raise Refused(f"movement {group.movement_id} is unknown here; this node is not its origin")
    if origin != node:
        raise Refused(f"movement {group.movement_id} has origin {origin}, not this node {node}")


def check_participation(
    p: ParticipationRecorded, *, sender: str, node: str, origin: str | None
) -> None:
    if p.host != sender:
        raise Refused(
            f"participation {p.participation_id} names host {p.host}, but {sender} sent it"
        )
    if origin != node:
        raise Refused(
            f"movement {p.movement_id} of participation {p.participation_id} is not this node's"
        )


MAX_VERSION_AHEAD = 1000
"""A group version further than this beyond the replica's is refused at apply: no owner
changes one group of a movement that often between two events, and a replica frozen at
a huge version would take every later real version for stale."""


def check_version(
    current: OriginGroup | HostGroup | None,
    incoming: OriginGroup | HostGroup,
    *,
    max_ahead: int = MAX_VERSION_AHEAD,
) -> None:
    """Refuse a version far beyond the replica's (a repair copy is not checked: the owner's
    copy replaces the replica's whatever the versions)."""
    have = current.version if current is not None else 0
    if incoming.version > have + max_ahead:
        name = "origin" if isinstance(incoming, OriginGroup) else "host"
        raise Refused(
            f"{name} group of movement {incoming.movement_id} has version {incoming.version},"
            f" more than {max_ahead} beyond this replica's {have}"
        )


def later_mark(held: Mark | None, incoming: Mark | None) -> Mark | None:
    """The mark a replica group keeps after an event marked ``incoming`` set it: the later
    of the two, so that no copy sent before either can roll it back."""
    if held is None or incoming is None:
        return incoming or held
    return max(held, incoming)


def _takes(
    current: OriginGroup | HostGroup | None,
    incoming: OriginGroup | HostGroup,
    *,
    repair: bool,
    max_ahead: int,
    mark: Mark | None,
    set_by: Mark | None,
) -> bool:
    """Whether the replica takes ``incoming``: the owner's repair copy whenever it differs
    in any way, unless the owner sent it before the event that set the replica (``mark``
    before ``set_by``: stale); any other copy only if newer, and not far beyond
    (``check_version``)."""
    if repair:
        if mark is not None and set_by is not None and mark < set_by:
            return False
        return current != incoming
    if current is not None and current.version >= incoming.version:
        return False
    check_version(current, incoming, max_ahead=max_ahead)
    return True


def apply_origin(
    replica: Replica,
    event: OriginGroupChanged,
    *,
    max_ahead: int = MAX_VERSION_AHEAD,
    mark: Mark | None = None,
    set_by: Mark | None = None,
) -> Replica | None:
    """The replica with the incoming origin group, or None if it does not take it; ``mark``:
    the event's (epoch, number), ``set_by``: that of the event that set the replica's."""
    takes = _takes(
        replica.origin,
        event.group,
        repair=bool(event.repair),
        max_ahead=max_ahead,
        mark=mark,
        set_by=set_by,
    )
    if not takes:
        return None
    return Replica(origin=event.group, host=replica.host)


def apply_host(
    replica: Replica,
    event: HostGroupChanged,
    *,
    max_ahead: int = MAX_VERSION_AHEAD,
    mark: Mark | None = None,
    set_by: Mark | None = None,
) -> Replica | None:
    """The replica with the incoming host group, or None if it does not take it; ``mark``:
    the event's (epoch, number), ``set_by``: that of the event that set the replica's."""
    takes = _takes(
        replica.host,
        event.group,
        repair=bool(event.repair),
        max_ahead=max_ahead,
        mark=mark,
        set_by=set_by,
    )
    if not takes:
        return None
    return Replica(origin=replica.origin, host=event.group)


def receive_origin(
    stored: StoredMovement | None,
    event: OriginGroupChanged,
    *,
    sender: str,
    node: str,
    mark: Mark | None,
    max_ahead: int = MAX_VERSION_AHEAD,
) -> StoredMovement | None:
    """This node's copy once it takes the origin's group ``event`` that ``sender`` sent
    (numbered ``mark``); None if it does not take it (stale). ``Refused`` if the sender may
    not send it here. A movement not known here is created by it."""
    group = event.group
    check_origin_group(group, sender=sender, node=node)
    if stored is not None and stored.origin != sender:
        raise Refused(f"movement {group.movement_id} belongs to origin {stored.origin}")
    set_by = stored.set_by if stored else None
    updated = apply_origin(
        stored.replica if stored else Replica(None, None),
        event,
        max_ahead=max_ahead,
        mark=mark,
        set_by=set_by,
    )
    if updated is None:
        return None
    return StoredMovement(
        group.origin, group.destination.jurisdiction, updated, later_mark(set_by, mark)
    )


def receive_host(
    stored: StoredMovement | None,
    event: HostGroupChanged,
    *,
    sender: str,
    node: str,
    mark: Mark | None,
    max_ahead: int = MAX_VERSION_AHEAD,
) -> StoredMovement | None:
    """This node's copy once it takes the host's group ``event`` that ``sender`` sent
    (numbered ``mark``); None if it does not take it (stale). ``Refused`` if the sender may
    not send it here, or the movement is not this node's."""
    group = event.group
    check_host_group(group, sender=sender, node=node, origin=stored.origin if stored else None)
    assert stored is not None
    if stored.host != sender:
        raise Refused(f"movement {group.movement_id} is hosted by {stored.host}, not {sender}")
    updated = apply_host(
        stored.replica, event, max_ahead=max_ahead, mark=mark, set_by=stored.set_by
    )
    if updated is None:
        return None
    return replace(stored, replica=updated, set_by=later_mark(stored.set_by, mark))


def receive_participation(
    stored: StoredMovement | None, p: ParticipationRecorded, *, sender: str, node: str
) -> None:
    """``Refused`` if ``sender`` may not send this attendance here; one that may is kept
    once (by its id)."""
    check_participation(p, sender=sender, node=node, origin=stored.origin if stored else None)
