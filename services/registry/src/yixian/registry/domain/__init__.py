"""The registry's domain: pure rules, no I/O."""

from yixian.contracts import Deadlines

from .certificate import certificate_number
from .changes import field_changes
from .contact import CONTACT_FIELDS, contact_changes, merge_contact
from .dues import dues_paid_where
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
from .feedback import Addressee, Answer, Concern, FeedbackState
from .member import (
    Member,
    MemberStatus,
    Organization,
    OrgKind,
    member_status,
    national_id_hash,
    normalise_national_id,
    phone_digits,
)
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
from .reporting import GroupBy, away_during, closed_on

__all__ = [
    "CONTACT_FIELDS",
    "Addressee",
    "AlreadyExists",
    "Answer",
    "Concern",
    "Conflict",
    "Deadlines",
    "DomainError",
    "DomainEvent",
    "FeedbackState",
    "GroupBy",
    "HostGroupChanged",
    "InProgress",
    "Invalid",
    "InvalidTransition",
    "Member",
    "MemberStatus",
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
    "away_during",
    "certificate_number",
    "classify",
    "closed_on",
    "contact_changes",
    "dues_paid_where",
    "field_changes",
    "member_status",
    "merge_contact",
    "national_id_hash",
    "normalise_national_id",
    "phone_digits",
]
