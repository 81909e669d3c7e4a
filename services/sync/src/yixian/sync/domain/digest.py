"""Anti-entropy: digests of the movements two nodes share, and what to do about differences.

Each entry is (movement id, origin, origin version, host version) and the content hashes
of both groups and of the participations. Entries fall into buckets by movement id; a
bucket's hash covers its sorted entries. Equal hashes mean equal buckets; for the others
the entries are exchanged and compared one by one (``reconcile``): the owner's copy of a
group wins whenever the two differ, and an owner that lost its own gets it back.
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


def entry_line(entry: DigestEntry, *, content: bool) -> str:
    """What a bucket hash covers of one entry: its versions and, with ``content``, the
    content hashes of both groups and of the participations."""
    line = f"{entry.movement_id}:{entry.origin}:{entry.origin_version}:{entry.host_version}"
    if content:
        line += f":{entry.origin_hash or ''}:{entry.host_hash or ''}"
        line += f":{entry.participations_hash or ''}"
    return line + "\n"


def buckets(
    entries: Iterable[DigestEntry], bucket_count: int, *, content: bool = False
) -> dict[int, DigestBucket]:
    grouped: dict[int, list[DigestEntry]] = defaultdict(list)
    for entry in entries:
        grouped[bucket_of(entry.movement_id, bucket_count)].append(entry)
    out = {}
    for number, members in grouped.items():
        lines = sorted(entry_line(e, content=content) for e in members)
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
    """Groups this node owns whose copy at the partner differs (or is missing): publish
    them again as repair copies (a host group with its participations)."""
    request: list[ResendWanted]
    """Groups the partner owns whose copy here differs (or is missing): ask for them. And
    groups this node owns but lost, that the partner holds: ask for the partner's copy
    back (``ResendWanted`` of this node's own group)."""
    give_back: list[UUID]
    """Movements whose group the partner owns but lost (or whose participations differ):
    send the partner this node's copy back."""


@dataclass(frozen=True, slots=True)
class _Copy:
    version: int
    hash: str | None

    @property
    def held(self) -> bool:
        return self.version > 0

    def differs(self, other: _Copy) -> bool:
        """Versions differ, or both hashes are known and differ (an entry of a node that
        hashes no content is compared by version)."""
        if self.version != other.version:
            return True
        return self.hash is not None and other.hash is not None and self.hash != other.hash


def _copy(entry: DigestEntry | None, group: GroupName) -> _Copy:
    if entry is None:
        return _Copy(0, None)
    if group is GroupName.ORIGIN:
        return _Copy(entry.origin_version, entry.origin_hash)
    return _Copy(entry.host_version, entry.host_hash)


def reconcile(node: str, mine: Iterable[DigestEntry], theirs: Iterable[DigestEntry]) -> Repair:
    """Compare this node's entries with the partner's for the same buckets.

    The owner's copy of a group is authoritative: whenever the two copies differ in any
    way (a replica ahead of its owner, equal versions with other content), the owner's
    replaces the replica's. An owner that lost its own group (or participations) gets the
    partner's copy back. Participations, append-only, end as the union of both sides'."""
    own = {e.movement_id: e for e in mine}
    other = {e.movement_id: e for e in theirs}
    republish: list[tuple[UUID, GroupName]] = []
    request: list[ResendWanted] = []
    give_back: list[UUID] = []
    for movement_id in sorted(set(own) | set(other)):
        a = own.get(movement_id)
        b = other.get(movement_id)
        origin = (a or b).origin  # type: ignore[union-attr]
        mine_group, their_group = (
            (GroupName.ORIGIN, GroupName.HOST)
            if origin == node
            else (GroupName.HOST, GroupName.ORIGIN)
        )
        my_own, their_copy_of_mine = _copy(a, mine_group), _copy(b, mine_group)
        their_own, my_copy_of_theirs = _copy(b, their_group), _copy(a, their_group)
        participations_differ = (
            a is not None
            and b is not None
            and a.participations_hash is not None
            and b.participations_hash is not None
            and a.participations_hash != b.participations_hash
        )
        host_here = mine_group is GroupName.HOST
        partner_lost_its_own = not their_own.held and my_copy_of_theirs.held
        if partner_lost_its_own or (participations_differ and not host_here):
            give_back.append(movement_id)  # with this node's own group as its repair copy
        elif my_own.held and (
            my_own.differs(their_copy_of_mine) or (participations_differ and host_here)
        ):
            republish.append((movement_id, mine_group))
        if (not my_own.held and their_copy_of_mine.held) or (participations_differ and host_here):
            # ask for the partner's copy of this node's own record back
            request.append(
                ResendWanted(movement_id=movement_id, group=mine_group, have_version=my_own.version)
            )
        if their_own.held and (
            their_own.differs(my_copy_of_theirs) or (participations_differ and not host_here)
        ):
            request.append(
                ResendWanted(
                    movement_id=movement_id,
                    group=their_group,
                    have_version=my_copy_of_theirs.version,
                )
            )
    return Repair(republish=republish, request=request, give_back=give_back)
