"""Applying a partner's event to this node's copy of a movement: who may send what, and
the version gate that makes apply idempotent and independent of delivery order."""

from __future__ import annotations

from dataclasses import dataclass
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


def apply_origin(replica: Replica, event: OriginGroupChanged) -> Replica | None:
    """The replica with the incoming origin group, or None if it is not newer."""
    if replica.origin is not None and replica.origin.version >= event.group.version:
        return None
    return Replica(origin=event.group, host=replica.host)


def apply_host(replica: Replica, event: HostGroupChanged) -> Replica | None:
    """The replica with the incoming host group, or None if it is not newer."""
    if replica.host is not None and replica.host.version >= event.group.version:
        return None
    return Replica(origin=replica.origin, host=event.group)
