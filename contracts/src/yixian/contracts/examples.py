"""One valid example of every event type: documentation for partners, fixtures for tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from ._base import ContractModel
from .envelope import Envelope, make_event
from .link import (
    DigestBucket,
    DigestEntry,
    GroupName,
    LinkDigest,
    LinkDigestEntries,
    LinkHeartbeat,
    LinkState,
    LinkStatusReported,
    LinkStatusRequested,
    ReplayRequested,
    ReplicaReturned,
    ResendRequested,
    ResendWanted,
)
from .movement import (
    ActivityKind,
    ActivityScheduled,
    Certificate,
    Contact,
    Destination,
    HostGroup,
    HostGroupChanged,
    HostStatus,
    MemberCard,
    MovementStep,
    OrganizationRef,
    OriginGroup,
    OriginGroupChanged,
    OriginStatus,
    OutflowReason,
    OutflowReasonKind,
    ParticipationRecorded,
    ParticipationSummary,
    Period,
)
from .routes import LOCAL, ROUTES
from .visitor import ClaimResult, VisitorClaimAnswered, VisitorClaimAsked

GUSHI = "411525"
CHAOYANG = "110105"
MOVEMENT = UUID("5d1f7a3e-2c4b-4e8a-9f10-6b7c8d9e0a1b")
CLAIM = UUID("c1a1e0b2-7d4f-4a3e-8b2c-5f6e7d8c9b0a")
MEMBER = UUID("0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d")
AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

GUSHI_BRANCH = OrganizationRef(
    org_id=UUID("7e6d5c4b-3a29-4817-a6b5-c4d3e2f1a0b9"), name="固始县陈集镇第一党支部"
)
CHAOYANG_BRANCH = OrganizationRef(
    org_id=UUID("1b2c3d4e-5f60-4718-89a0-b1c2d3e4f5a6"), name="固始县驻京流动党员第三支部"
)


def origin_group(version: int = 1, status: OriginStatus = OriginStatus.REGISTERED) -> OriginGroup:
    return OriginGroup(
        movement_id=MOVEMENT,
        version=version,
        status=status,
        origin=GUSHI,
        origin_org=GUSHI_BRANCH,
        member=MemberCard(
            member_id=MEMBER,
            name="张建国",
            joined_on=date(2008, 7, 1),
        ),
        destination=Destination(jurisdiction=CHAOYANG, place="北京市朝阳区十八里店乡"),
        period=Period(departed_on=date(2026, 2, 20), expected_return_on=date(2027, 1, 31)),
        contact=Contact(phone="+86 138 0000 0000"),
        certificate=Certificate(number="411525-2026-000123", issued_on=date(2026, 2, 18)),
        reason=OutflowReason(kind=OutflowReasonKind.WORK, text="在北京务工"),
        check_in_due_on=date(2026, 3, 22),
        changed_at=AT,
        changed_by="secretary:gushi-chenji-1",
    )


def host_group(version: int = 1, status: HostStatus = HostStatus.CHECKED_IN) -> HostGroup:
    checked_in = status is HostStatus.CHECKED_IN
    return HostGroup(
        movement_id=MOVEMENT,
        version=version,
        status=status,
        host=CHAOYANG,
        host_org=CHAOYANG_BRANCH if checked_in else None,
        checked_in_at=AT if checked_in else None,
        participation=ParticipationSummary(attended=0),
        changed_at=AT,
        changed_by="secretary:chaoyang-gushi-3",
    )


def example_payloads() -> list[ContractModel]:
    """A valid payload of every event type of the catalogue."""
    request = UUID("3c2b1a09-8f7e-4d6c-9b5a-49382716a5b4")
    digest = UUID("8e7d6c5b-4a39-4281-9f0e-d1c2b3a49586")
    activity = UUID("2f3e4d5c-6b7a-4981-8a0b-c1d2e3f4a5b6")
    return [
        OriginGroupChanged(group=origin_group(), step=MovementStep.REGISTERED),
        HostGroupChanged(group=host_group(), step=MovementStep.CHECKED_IN),
        ParticipationRecorded(
            participation_id=UUID("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"),
            movement_id=MOVEMENT,
            host=CHAOYANG,
            host_org=CHAOYANG_BRANCH,
            activity_id=activity,
            kind=ActivityKind.THEME_DAY,
            title="三月主题党日：学习雷锋志愿服务",
            attended_at=AT,
            recorded_at=AT,
            recorded_by="secretary:chaoyang-gushi-3",
        ),
        ActivityScheduled(
            activity_id=activity,
            jurisdiction=CHAOYANG,
            organizer=CHAOYANG_BRANCH,
            kind=ActivityKind.THEME_DAY,
            title="三月主题党日：学习雷锋志愿服务",
            starts_at=datetime(2026, 3, 5, 1, 0, tzinfo=UTC),
            location="十八里店乡党群服务中心",
            scheduled_by="secretary:chaoyang-gushi-3",
        ),
        LinkHeartbeat(source=GUSHI, destination=CHAOYANG, last_sequence=42, sent_at=AT),
        LinkDigest(
            digest_id=digest,
            bucket_count=4,
            buckets=(DigestBucket(bucket=1, movements=1, hash="ab" * 32),),
            as_of_sequence=42,
            computed_at=AT,
        ),
        LinkDigestEntries(
            digest_id=digest,
            bucket_count=4,
            buckets=(1,),
            entries=(
                DigestEntry(movement_id=MOVEMENT, origin=GUSHI, origin_version=3, host_version=2),
            ),
            computed_at=AT,
        ),
        ReplayRequested(request_id=request, from_sequence=40, to_sequence=42, reason="gap 40..42"),
        ResendRequested(
            request_id=request,
            wanted=(ResendWanted(movement_id=MOVEMENT, group=GroupName.ORIGIN, have_version=2),),
            reason="digest bucket 1 differs",
        ),
        LinkStatusRequested(request_id=request),
        LinkStatusReported(
            request_id=request,
            state=LinkState.HEALTHY,
            last_sequence_sent=42,
            last_sequence_received=17,
            outbox_backlog=0,
            shared_movements=1,
            reported_at=AT,
        ),
        ReplicaReturned(
            movement_id=MOVEMENT,
            origin_group=origin_group(),
            host_group=host_group(),
            reason="this node holds a copy of a group its owner lost",
        ),
        VisitorClaimAsked(
            claim_id=CLAIM, host=CHAOYANG, origin=GUSHI, name="张三", id_ending="123X", asked_at=AT
        ),
        VisitorClaimAnswered(
            claim_id=CLAIM,
            host=CHAOYANG,
            origin=GUSHI,
            result=ClaimResult.MATCH,
            movement_id=MOVEMENT,
            answered_at=AT,
        ),
    ]


def example_events() -> list[Envelope[ContractModel]]:
    """Every example payload in an envelope as its producer publishes it: from the node
    that sends it, with the subject and correlation id the producer gives it, and numbered
    (``pairseq``) as on a pair topic unless the type travels only on local topics."""
    events = []
    for i, payload in enumerate(example_payloads(), start=1):
        sender = (
            CHAOYANG
            if isinstance(
                payload,
                HostGroupChanged | ParticipationRecorded | VisitorClaimAsked | ActivityScheduled,
            )
            else GUSHI
        )
        subject: UUID | None
        correlated: UUID | None
        if isinstance(payload, ActivityScheduled):
            subject, correlated = payload.activity_id, None
        elif isinstance(payload, VisitorClaimAsked | VisitorClaimAnswered):
            subject = correlated = payload.claim_id
        else:
            subject = correlated = getattr(payload, "movement_id", None) or getattr(
                getattr(payload, "group", None), "movement_id", None
            )
        event = make_event(
            payload,
            node=sender,
            time=AT,
            traceparent=TRACEPARENT,
            subject=str(subject) if subject else None,
            correlationid=correlated,
            event_id=UUID(int=i),
        )
        events.append(event if ROUTES[event.type].topics == LOCAL else event.with_pairseq(i))
    return events


def origin_group_stream(
    source: str, movements: int, versions: int = 1
) -> list[tuple[bytes, bytes]]:
    """(key, value) records of ``movements`` × ``versions`` origin-group events from
    ``source``, version by version, numbered 1..n on the pair: load for tests and benchmarks."""
    base = origin_group()
    ids = [uuid4() for _ in range(movements)]
    out = []
    seq = 0
    for version in range(1, versions + 1):
        for movement_id in ids:
            seq += 1
            doc = base.model_dump() | {"movement_id": movement_id, "version": version}
            doc["member"] = base.member.model_dump() | {"member_id": movement_id}
            event = make_event(
                OriginGroupChanged(group=OriginGroup.model_validate(doc)),
                node=source,
                time=datetime.now(UTC),
                correlationid=movement_id,
            ).with_pairseq(seq)
            out.append((str(movement_id).encode(), event.encode()))
    return out
