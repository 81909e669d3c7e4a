"""What two linked nodes tell each other about the link itself: liveness, digests for
anti-entropy, and requests to replay or resend what went missing."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from ._base import ContractModel, JurisdictionCode, LongText, Sequence, ShortText, UtcDateTime
from .movement import HostGroup, OriginGroup, ParticipationRecorded

MAX_BUCKETS = 65536
MAX_ENTRIES = 5000
MAX_RANGES = 1000


class GroupName(StrEnum):
    ORIGIN = "origin"
    HOST = "host"


class LinkHeartbeat(ContractModel):
    """Sent on an idle link so that silence can be told apart from no news."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.heartbeat.v1"
    source: JurisdictionCode
    destination: JurisdictionCode
    last_sequence: Sequence = Field(description="Last pair sequence number sent before this.")
    sent_at: UtcDateTime


class DigestBucket(ContractModel):
    bucket: int = Field(ge=0, lt=MAX_BUCKETS)
    movements: int = Field(ge=0)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 over the bucket's entries.")


class LinkDigest(ContractModel):
    """A summary of every movement the two nodes share, bucketed by movement id.

    Each entry hashed is (movement id, origin, origin version, host version and, with
    ``content``, the content hashes), sorted; the receiver compares bucket hashes with its
    own and sends the entries of those that differ.
    """

    EVENT_TYPE: ClassVar[str] = "yixian.link.digest.v1"
    digest_id: UUID
    bucket_count: int = Field(ge=1, le=MAX_BUCKETS)
    buckets: tuple[DigestBucket, ...]
    as_of_sequence: Sequence
    as_of_epoch: int | None = Field(
        default=None,
        ge=0,
        description="The link epoch of as_of_sequence (ADR 16); absent: the epoch of the"
        " event carrying the digest.",
    )
    computed_at: UtcDateTime
    content: bool | None = Field(
        default=None,
        description="True: each bucket hash also covers the entries' content hashes (compare"
        " with the same); absent: versions only, as the first v1 nodes hash.",
    )

    @model_validator(mode="after")
    def _buckets_in_range(self) -> LinkDigest:
        if self.bucket_count & (self.bucket_count - 1):
            raise ValueError("bucket_count must be a power of two")
        seen: set[int] = set()
        for b in self.buckets:
            if b.bucket >= self.bucket_count:
                raise ValueError(f"bucket {b.bucket} is outside bucket_count {self.bucket_count}")
            if b.bucket in seen:
                raise ValueError(f"bucket {b.bucket} appears twice")
            seen.add(b.bucket)
        return self


ContentHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class DigestEntry(ContractModel):
    movement_id: UUID
    origin: JurisdictionCode = Field(
        description="The movement's origin node (who owns which group)."
    )
    origin_version: int = Field(ge=0, description="0 when this side has no origin group yet.")
    host_version: int = Field(ge=0, description="0 when this side has no host group yet.")
    origin_hash: ContentHash | None = Field(
        default=None, description="SHA-256 of this side's copy of the origin group, if any."
    )
    host_hash: ContentHash | None = Field(
        default=None, description="SHA-256 of this side's copy of the host group, if any."
    )
    participations_hash: ContentHash | None = Field(
        default=None, description="SHA-256 of the ids of the participations this side holds."
    )


class LinkDigestEntries(ContractModel):
    """The entries behind some buckets of a digest, sent when the hashes differed."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.digest_entries.v1"
    digest_id: UUID
    bucket_count: int = Field(ge=1, le=MAX_BUCKETS)
    buckets: tuple[int, ...] = Field(min_length=1)
    entries: tuple[DigestEntry, ...] = Field(max_length=MAX_ENTRIES)
    computed_at: UtcDateTime


class SequenceRange(ContractModel):
    """A run of pair sequence numbers, both ends included."""

    first: int = Field(ge=1)
    last: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> SequenceRange:
        if self.last < self.first:
            raise ValueError("last must not be before first")
        return self


class ReplayRequested(ContractModel):
    """Asks the partner to publish again a range of its pair sequence numbers."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.replay_requested.v1"
    request_id: UUID
    from_sequence: int = Field(ge=1)
    to_sequence: int | None = Field(default=None, ge=1, description="Inclusive; open if absent.")
    reason: LongText
    ranges: tuple[SequenceRange, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RANGES,
        description="Exactly the numbers wanted, in order, within from_sequence..to_sequence;"
        " absent: all of from_sequence..to_sequence. Sent only when the numbers wanted are"
        " more than one run, so that a sender that predates it reads a one-run request.",
    )
    epoch: int | None = Field(
        default=None,
        ge=0,
        description="The link epoch whose numbers are wanted (ADR 16); absent: epoch 0. A"
        " sender numbering in another epoch cannot replay them and answers with a digest.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ReplayRequested:
        if self.to_sequence is not None and self.to_sequence < self.from_sequence:
            raise ValueError("to_sequence must not be before from_sequence")
        if self.ranges is not None:
            if self.to_sequence is None:
                raise ValueError("ranges need a to_sequence")
            bound = self.from_sequence - 1
            for run in self.ranges:
                if run.first <= bound:
                    raise ValueError("ranges must be in order, apart, and not before from_sequence")
                bound = run.last
            if bound > self.to_sequence:
                raise ValueError("ranges must not go beyond to_sequence")
        return self

    def runs(self, last_sent: int) -> list[tuple[int, int]]:
        """The numbers wanted as (first, last) runs, an open end read as ``last_sent``."""
        if self.ranges is not None:
            return [(run.first, run.last) for run in self.ranges]
        return [(self.from_sequence, self.to_sequence or max(last_sent, self.from_sequence))]


class ResendWanted(ContractModel):
    movement_id: UUID
    group: GroupName
    have_version: int = Field(ge=0, description="The version the asking side holds (0: none).")


class ResendRequested(ContractModel):
    """Asks the owner of some groups to publish their current snapshots again."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.resend_requested.v1"
    request_id: UUID
    wanted: tuple[ResendWanted, ...] = Field(min_length=1, max_length=MAX_ENTRIES)
    reason: LongText


class ReplicaReturned(ContractModel):
    """A node's copy of a movement sent back to the owner of a group that lost it
    (its database restored or damaged): the owner takes back its own group if it has none,
    and its participations it lacks. The sender's own group comes along as its owner's
    current copy. Sent when a digest shows the partner lacks a group it owns, or when the
    owner asks (``ResendWanted`` of the asker's own group)."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.replica_returned.v1"
    movement_id: UUID
    origin_group: OriginGroup | None = None
    host_group: HostGroup | None = None
    participations: tuple[ParticipationRecorded, ...] = Field(default=(), max_length=MAX_ENTRIES)
    reason: LongText

    @model_validator(mode="after")
    def _one_movement(self) -> ReplicaReturned:
        for group in (self.origin_group, self.host_group):
            if group is not None and group.movement_id != self.movement_id:
                raise ValueError("every group returned is of movement_id")
        if any(p.movement_id != self.movement_id for p in self.participations):
            raise ValueError("every participation returned is of movement_id")
        return self


class LinkStatusRequested(ContractModel):
    """Asks the partner how it sees the link."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.status_requested.v1"
    request_id: UUID


class LinkState(StrEnum):
    HEALTHY = "healthy"
    LAGGING = "lagging"
    GAP = "gap"
    SILENT = "silent"


class LinkStatusReported(ContractModel):
    """The partner's view of the link, answering a status request."""

    EVENT_TYPE: ClassVar[str] = "yixian.link.status_reported.v1"
    request_id: UUID
    state: LinkState
    last_sequence_sent: Sequence
    last_sequence_received: Sequence
    outbox_backlog: int = Field(ge=0)
    shared_movements: int = Field(ge=0)
    software_version: ShortText | None = None
    reported_at: UtcDateTime
