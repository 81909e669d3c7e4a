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
from yixian.sync.domain.apply import check_host_group, check_origin_group

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
    assert [(w.movement_id, w.group, w.have_version) for w in at_origin.request] == [
        (ahead, GroupName.HOST, 1)
    ]
    at_host = reconcile(CHAOYANG, theirs, mine)
    assert {(w.movement_id, w.group) for w in at_host.request} == {
        (behind, GroupName.ORIGIN),
        (missing_there, GroupName.ORIGIN),
    }
    assert at_host.republish == [(ahead, GroupName.HOST)]


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
