"""The registry's domain: pure rules, no I/O."""

from yixian.contracts import Deadlines

from .errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    InProgress,
    Invalid,
    InvalidTransition,
    NotFound,
    NotOwner,
    WouldLockOut,
)
from .member import Member, Organization, OrgKind, national_id_hash, normalise_national_id
from .movement import (
    DomainEvent,
    HostGroupChanged,
    Movement,
    OriginGroupChanged,
    Participation,
    ParticipationAdded,
    Side,
)
from .queues import Queue, QueueEntry, classify

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Deadlines",
    "DomainError",
    "DomainEvent",
    "HostGroupChanged",
    "InProgress",
    "Invalid",
    "InvalidTransition",
    "Member",
    "Movement",
    "NotFound",
    "NotOwner",
    "OrgKind",
    "Organization",
    "OriginGroupChanged",
    "Participation",
    "ParticipationAdded",
    "Queue",
    "QueueEntry",
    "Side",
    "WouldLockOut",
    "classify",
    "national_id_hash",
    "normalise_national_id",
]
