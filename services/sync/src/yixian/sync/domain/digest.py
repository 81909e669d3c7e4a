"""Anti-entropy: digests of the movements two nodes share, and what to do about differences.

Each entry is (movement id, origin, origin version, host version). Entries fall into
buckets by movement id; a bucket's hash covers its sorted entries. Equal hashes mean equal
buckets; for the others the entries are exchanged and compared one by one: each side
re-publishes the groups it owns that the other holds older, and asks for those it holds
older itself.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from yixian.contracts import DigestBucket, DigestEntry, GroupName, LinkDigest, ResendWanted

DEFAULT_BUCKETS = 256


def bucket_of(movement_id: UUID, bucket_count: int) -> int:
    return int.from_bytes(movement_id.bytes[:4], "big") % bucket_count


def buckets(entries: Iterable[DigestEntry], bucket_count: int) -> dict[int, DigestBucket]:
    grouped: dict[int, list[DigestEntry]] = defaultdict(list)
    for entry in entries:
        grouped[bucket_of(entry.movement_id, bucket_count)].append(entry)
    out = {}
    for number, members in grouped.items():
        lines = sorted(
            f"{e.movement_id}:{e.origin}:{e.origin_version}:{e.host_version}\n" for e in members
        )
        out[number] = DigestBucket(
            bucket=number,
            movements=len(members),
            hash=hashlib.sha256("".join(lines).encode()).hexdigest(),
        )
    return out


def differing_buckets(mine: dict[int, DigestBucket], theirs: LinkDigest) -> list[int]:
    """Buckets whose content differs, including those only one side has."""
    their = {b.bucket: b.hash for b in theirs.buckets}
    numbers = set(mine) | set(their)
    return sorted(n for n in numbers if (mine[n].hash if n in mine else None) != their.get(n))


@dataclass(frozen=True, slots=True)
class Repair:
    republish: list[tuple[UUID, GroupName]]
    """Groups this node owns that the partner holds older (or lacks): publish them again."""
    request: list[ResendWanted]
    """Groups the partner owns that this node holds older (or lacks): ask for them."""


def reconcile(node: str, mine: Iterable[DigestEntry], theirs: Iterable[DigestEntry]) -> Repair:
    """Compare this node's entries with the partner's for the same buckets."""
    own = {e.movement_id: e for e in mine}
    other = {e.movement_id: e for e in theirs}
    republish: list[tuple[UUID, GroupName]] = []
    request: list[ResendWanted] = []
    for movement_id in sorted(set(own) | set(other)):
        a = own.get(movement_id)
        b = other.get(movement_id)
        origin = (a or b).origin  # type: ignore[union-attr]
        my_origin, my_host = (a.origin_version, a.host_version) if a else (0, 0)
        their_origin, their_host = (b.origin_version, b.host_version) if b else (0, 0)
        mine_group, their_group = (
            (GroupName.ORIGIN, GroupName.HOST)
            if origin == node
            else (GroupName.HOST, GroupName.ORIGIN)
        )
        my_own, their_copy_of_mine = (
            (my_origin, their_origin) if mine_group is GroupName.ORIGIN else (my_host, their_host)
        )
        their_own, my_copy_of_theirs = (
            (their_host, my_host) if their_group is GroupName.HOST else (their_origin, my_origin)
        )
        if my_own > their_copy_of_mine:
            republish.append((movement_id, mine_group))
        if their_own > my_copy_of_theirs:
            request.append(
                ResendWanted(
                    movement_id=movement_id, group=their_group, have_version=my_copy_of_theirs
                )
            )
    return Repair(republish=republish, request=request)
