"""Digests, reconciliation and the ownership rules of apply."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from yixian.contracts import (
    DigestEntry,
    GroupName,
    HostGroupChanged,
    LinkDigest,
    OriginGroupChanged,
)
from yixian.contracts.examples import AT, host_group, origin_group
from yixian.sync.domain import (
    Refused,
    Replica,
    apply_host,
    apply_origin,
    bucket_of,
    buckets,
    differing_buckets,
    reconcile,
)
from yixian.sync.domain.apply import check_host_group, check_origin_group, later_mark

GUSHI, CHAOYANG = "411525", "110105"


def entry(
    movement: UUID, origin_version: int, host_version: int, origin: str = GUSHI
) -> DigestEntry:
    return DigestEntry(
        movement_id=movement,
        origin=origin,
        origin_version=origin_version,
        host_version=host_version,
    )


def test_equal_entries_give_equal_buckets() -> None:
    ids = [uuid4() for _ in range(50)]
    mine = [entry(i, 2, 1) for i in ids]
    theirs = list(reversed(mine))
    digest = LinkDigest(
        digest_id=uuid4(),
        bucket_count=16,
        buckets=tuple(buckets(theirs, 16).values()),
        as_of_sequence=9,
        computed_at=AT,
    )
    assert differing_buckets(buckets(mine, 16), digest) == []


def test_a_difference_shows_in_exactly_its_bucket() -> None:
    ids = [uuid4() for _ in range(50)]
    mine = [entry(i, 2, 1) for i in ids]
    theirs = [entry(i, 2, 1) for i in ids[1:]] + [entry(ids[0], 1, 1)]
    digest = LinkDigest(
        digest_id=uuid4(),
        bucket_count=16,
        buckets=tuple(buckets(theirs, 16).values()),
        as_of_sequence=9,
        computed_at=AT,
    )
    assert differing_buckets(buckets(mine, 16), digest) == [bucket_of(ids[0], 16)]


def test_reconcile_republishes_own_groups_and_requests_the_partners() -> None:
    behind, ahead, missing_there, missing_here = (uuid4() for _ in range(4))
    mine = [entry(behind, 3, 1), entry(ahead, 1, 1), entry(missing_there, 1, 0)]
    theirs = [entry(behind, 2, 1), entry(ahead, 1, 2), entry(missing_here, 1, 0)]
    at_origin = reconcile(GUSHI, mine, theirs)
    assert sorted(at_origin.republish) == sorted(
        [(behind, GroupName.ORIGIN), (missing_there, GroupName.ORIGIN)]
    )
    assert sorted((w.movement_id, w.group, w.have_version) for w in at_origin.request) == sorted(
        [
            (ahead, GroupName.HOST, 1),
            (missing_here, GroupName.ORIGIN, 0),  # the origin lost its own: asks it back
        ]
    )
    assert at_origin.give_back == []
    at_host = reconcile(CHAOYANG, theirs, mine)
    assert {(w.movement_id, w.group) for w in at_host.request} == {
        (behind, GroupName.ORIGIN),
        (missing_there, GroupName.ORIGIN),
    }
    assert at_host.republish == [(ahead, GroupName.HOST)]
    assert at_host.give_back == [missing_here]  # the host returns the origin's lost group


A, B, P, Q = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def hashed(
    movement: UUID, versions: tuple[int, int], hashes: tuple[str | None, str | None, str | None]
) -> DigestEntry:
    return DigestEntry(
        movement_id=movement,
        origin=GUSHI,
        origin_version=versions[0],
        host_version=versions[1],
        origin_hash=hashes[0],
        host_hash=hashes[1],
        participations_hash=hashes[2],
    )


def test_the_owners_copy_wins_whatever_the_versions() -> None:
    frozen, reused = uuid4(), uuid4()
    owner = [hashed(frozen, (3, 1), (A, P, P)), hashed(reused, (4, 1), (A, P, P))]
    replica = [
        hashed(frozen, (2**31 - 1, 1), (B, P, P)),  # a replica ahead of its owner
        hashed(reused, (4, 1), (B, P, P)),  # the same version, other content
    ]
    at_origin = reconcile(GUSHI, owner, replica)
    assert sorted(at_origin.republish) == sorted(
        [(frozen, GroupName.ORIGIN), (reused, GroupName.ORIGIN)]
    )
    assert at_origin.request == []
    assert at_origin.give_back == []
    at_host = reconcile(CHAOYANG, replica, owner)
    assert sorted((w.movement_id, w.group) for w in at_host.request) == sorted(
        [(frozen, GroupName.ORIGIN), (reused, GroupName.ORIGIN)]
    )
    assert at_host.republish == []
    assert at_host.give_back == []
    # an entry without content hashes (a node that hashes none) is compared by version
    unhashed = [hashed(reused, (4, 1), (None, None, None))]
    assert reconcile(GUSHI, owner[1:], unhashed) == reconcile(GUSHI, unhashed, unhashed)


def test_participations_end_as_the_union_of_both_sides() -> None:
    movement = uuid4()
    origin_side = [hashed(movement, (2, 2), (A, B, P))]
    host_side = [hashed(movement, (2, 2), (A, B, Q))]
    at_host = reconcile(CHAOYANG, host_side, origin_side)
    assert at_host.republish == [(movement, GroupName.HOST)]  # with its participations
    assert [(w.movement_id, w.group) for w in at_host.request] == [(movement, GroupName.HOST)]
    at_origin = reconcile(GUSHI, origin_side, host_side)
    assert [(w.movement_id, w.group) for w in at_origin.request] == [(movement, GroupName.HOST)]
    assert at_origin.give_back == [movement]


def test_content_shows_in_the_buckets_only_when_hashed() -> None:
    movement = uuid4()
    mine, theirs = [hashed(movement, (2, 1), (A, P, P))], [hashed(movement, (2, 1), (B, P, P))]
    assert buckets(mine, 4) == buckets(theirs, 4)
    assert buckets(mine, 4, content=True) != buckets(theirs, 4, content=True)


def test_a_repair_copy_replaces_and_a_far_version_is_refused() -> None:
    real = origin_group(3)
    hijacked = Replica(origin_group(2**31 - 1), None)
    assert apply_origin(hijacked, OriginGroupChanged(group=real)) is None  # stale by version
    repaired = apply_origin(hijacked, OriginGroupChanged(group=real, repair=True))
    assert repaired is not None
    assert repaired.origin == real
    assert apply_origin(repaired, OriginGroupChanged(group=real, repair=True)) is None
    other = real.model_copy(update={"changed_by": "someone else"})
    assert apply_origin(Replica(other, None), OriginGroupChanged(group=real, repair=True))
    with pytest.raises(Refused, match="more than 1000 beyond"):
        apply_origin(Replica(real, None), OriginGroupChanged(group=origin_group(2**31 - 1)))
    assert apply_origin(Replica(real, None), OriginGroupChanged(group=origin_group(1003)))
    with pytest.raises(Refused, match="more than 5 beyond this replica's 0"):
        apply_host(Replica(real, None), HostGroupChanged(group=host_group(6)), max_ahead=5)


def test_a_repair_copy_sent_before_the_event_that_set_the_replica_is_stale() -> None:
    """The owner sent its v3 as a repair copy (number 10), then wrote v4 (number 11); v4
    arrived first. The copy in flight must not take the replica back to v3."""
    v4 = Replica(origin_group(4), None)
    copy = OriginGroupChanged(group=origin_group(3), repair=True)
    assert apply_origin(v4, copy, mark=(0, 10), set_by=(0, 11)) is None
    # sent after the event that set the replica: the owner's copy, whatever the versions
    assert apply_origin(v4, copy, mark=(0, 12), set_by=(0, 11)) == Replica(origin_group(3), None)
    # a later numbering space (the owner's database restored) comes after every number
    assert apply_origin(v4, copy, mark=(2, 1), set_by=(1, 11)) is not None
    assert apply_origin(v4, copy, mark=(1, 900), set_by=(2, 1)) is None
    # no mark kept yet (set before marks were kept): taken as before
    assert apply_origin(v4, copy, mark=(0, 10), set_by=None) is not None
    # an ordinary event is gated by its version only, and the later mark is kept
    assert apply_origin(v4, OriginGroupChanged(group=origin_group(5)), mark=(0, 9), set_by=(0, 11))
    assert later_mark((0, 11), (0, 9)) == (0, 11)
    assert later_mark(None, (0, 9)) == (0, 9)
    assert later_mark((1, 3), (2, 1)) == (2, 1)


def test_the_version_gate() -> None:
    v1, v2 = OriginGroupChanged(group=origin_group(1)), OriginGroupChanged(group=origin_group(2))
    replica = apply_origin(Replica(None, None), v2)
    assert replica is not None
    assert apply_origin(replica, v1) is None  # older
    assert apply_origin(replica, v2) is None  # the same again
    h1 = HostGroupChanged(group=host_group(1))
    with_host = apply_host(replica, h1)
    assert with_host is not None
    assert with_host.origin == replica.origin
    assert apply_host(with_host, h1) is None


def test_only_the_owner_may_send_a_group() -> None:
    check_origin_group(origin_group(), sender=GUSHI, node=CHAOYANG)
    with pytest.raises(Refused, match="only the origin writes"):
        check_origin_group(origin_group(), sender="350300", node=CHAOYANG)
    with pytest.raises(Refused, match="not for this node"):
        check_origin_group(origin_group(), sender=GUSHI, node="110114")
    check_host_group(host_group(), sender=CHAOYANG, node=GUSHI, origin=GUSHI)
    with pytest.raises(Refused, match="only the host writes"):
        check_host_group(host_group(), sender=GUSHI, node=CHAOYANG, origin=GUSHI)
    with pytest.raises(Refused, match="unknown here"):
        check_host_group(host_group(), sender=CHAOYANG, node=GUSHI, origin=None)
