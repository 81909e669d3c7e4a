"""The registry's domain: pure rules, no I/O."""

from .deadlines import Deadlines
from .errors import Conflict, DomainError, Invalid, InvalidTransition, NotFound, NotOwner
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
    "Conflict",
    "Deadlines",
    "DomainError",
    "DomainEvent",
    "HostGroupChanged",
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
    "classify",
    "national_id_hash",
    "normalise_national_id",
]
