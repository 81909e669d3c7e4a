"""The link protocol in a deterministic simulation: two or three nodes, one clock, a hostile
network, and the real rules of ``yixian.sync.domain``.

Each node keeps what its database would: the groups it owns and its replicas of its
partners' groups, per partner an outbox numbered by the relay (``pairseq``), the inbox of
event ids, the receiver's ``SequenceTracker``, the replay attempts and the replays it
answered lately. The network loses (some numbers for good: the sender cannot send them
again), duplicates, reorders, partitions pairs of nodes for a while, restarts nodes (a
node down holds its deliveries; on the way up it rebuilds its trackers from what was
stored, its relay sends its last rows again and its consumer reads its last records
again), restores nodes' databases (a restart that loses the relay's numbering and outbox:
it numbers from 1 again in a new link epoch, ADR 16), and a node now and then makes false
link claims (a heartbeat or digest claiming numbers it has not sent, a pair number far
ahead, an epoch years ahead). Everything random comes from one
``random.Random(seed)``, so a schedule is its seed (plus a deliberately broken rule, if
any) and replays exactly.

After the active phase the network heals (no loss, no partition) and the simulation runs
until every link is whole and every replica equals its owner's copy, then checks:

- every node's copy of every group it shares equals the owner's (content, not versions);
- every link reports healthy and has received or settled every number sent on it;
- the extra traffic (replay requests, replayed rows, digests beyond the periodic ones,
  digest entries, resend requests, groups sent again) is at most a small multiple of the
  messages lost plus a constant per disruption;
- no (epoch, pair number) names two different events;
- no replica moves (and so announces) an older state of its owner's group than one it had
  from a later-numbered event (a stale repair copy).

``python -m yixian.sync.simulation --seed N`` replays one schedule and prints its trace;
``--schedules N`` runs many (``make simulate``).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from uuid import UUID

from yixian.contracts import (
    Contact,
    DigestEntry,
    GroupName,
    HostGroup,
    HostGroupChanged,
    LinkDigest,
    LinkState,
    OriginGroup,
    OriginGroupChanged,
    ParticipationSummary,
    ResendWanted,
)
from yixian.contracts.examples import host_group, origin_group

from .domain import (
    Refused,
    Replica,
    apply_host,
    apply_origin,
    bucket_of,
    buckets,
    differing_buckets,
    reconcile,
)
from .domain.apply import Mark, check_host_group, check_origin_group, later_mark
from .domain.link import (
    LinkPolicy,
    Numbering,
    Run,
    SequenceTracker,
    answer_replay,
    check_claim,
    check_epoch,
    epoch_of,
    numbering,
    plan_replay,
    replay_needs_digest,
)

NODES = ("411525", "110105", "110114")
START = datetime(2026, 3, 1, tzinfo=UTC)
TICK = 1.0
"""The link keeper runs every second, as the service's does."""
CONFIRM = 30.0
"""Seconds a converged state must last (three heartbeats) to count."""
HEAL_LIMIT = 1800.0
"""Seconds of a healed network within which every schedule must converge."""
BROKEN_RULES = ("claims", "reach", "settle", "backoff", "stale", "epochs")
"""Rules a schedule can switch off, to see the simulation catch it."""

ORIGIN_BASE = origin_group()
HOST_BASE = host_group()


class ScheduleFailed(AssertionError):
    """A schedule broke an invariant; the message names the seed and how to replay it."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """One run: its seed, and the parameters drawn from it."""

    seed: int
    nodes: int
    movements: int
    writes: int
    active: float
    """Seconds of writes and faults before the network heals."""
    loss: float
    lost_for_good: float
    """Of the messages lost, the share the sender can never send again."""
    duplication: float
    max_delay: float
    partitions: int
    restarts: int
    false_claims: int
    restores: int = 0
    """Restarts that lose the node's numbering and outbox (a database recreated or
    restored from a backup while its pair topics persist)."""
    broken: str | None = None

    @classmethod
    def from_seed(cls, seed: int, broken: str | None = None) -> Schedule:
        rng = Random(seed)  # noqa: S311 - seeded on purpose: a schedule must replay exactly
        return cls(
            seed=seed,
            nodes=2 if rng.random() < 0.6 else 3,
            movements=rng.randint(1, 4),
            writes=rng.randint(2, 25),
            active=rng.uniform(10.0, 60.0),
            loss=rng.choice((0.0, 0.02, 0.1, 0.3)),
            lost_for_good=rng.choice((0.0, 0.2, 1.0)),
            duplication=rng.choice((0.0, 0.05, 0.3)),
            max_delay=rng.choice((0.05, 1.0, 4.0, 8.0)),
            partitions=rng.choice((0, 0, 1, 2)),
            restarts=rng.choice((0, 0, 1, 2)),
            false_claims=rng.choice((0, 0, 1, 3)),
            restores=rng.choice((0, 0, 0, 1)),
            broken=broken,
        )

    @property
    def replay_command(self) -> str:
        broken = f" --broken {self.broken}" if self.broken else ""
        return f"uv run --frozen python -m yixian.sync.simulation --seed {self.seed}{broken}"


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupSent:
    group: OriginGroup | HostGroup
    repair: bool = False
    """The owner's current copy sent by anti-entropy: it replaces a replica that differs."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    last_sequence: int


@dataclass(frozen=True, slots=True)
class Digest:
    digest: LinkDigest


@dataclass(frozen=True, slots=True)
class DigestEntries:
    buckets: tuple[int, ...]
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True, slots=True)
class ResendRequest:
    wanted: tuple[ResendWanted, ...]


@dataclass(frozen=True, slots=True)
class ReplicaReturn:
    """A node's copy of a movement, sent back to an owner that seems to lack its group."""

    movement_id: UUID
    origin: OriginGroup | None
    host: HostGroup | None


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    runs: tuple[Run, ...]
    epoch: int
    """The epoch of the numbers wanted (the asked node's numbering space)."""


Body = (
    GroupSent | Heartbeat | Digest | DigestEntries | ResendRequest | ReplicaReturn | ReplayRequest
)


@dataclass(frozen=True, slots=True)
class Message:
    source: str
    destination: str
    pairseq: int
    event_id: int
    body: Body
    epoch: int = 0
    """The sender's link epoch: its numbering space (ADR 16)."""

    @property
    def mark(self) -> Mark:
        return (self.epoch, self.pairseq)

    def __str__(self) -> str:
        kind = type(self.body).__name__
        return (
            f"{self.source}→{self.destination} #{self.epoch}.{self.pairseq} e{self.event_id} {kind}"
        )


# -- the nodes ----------------------------------------------------------------------------------


@dataclass
class Link:
    """What a node's database holds about one partner."""

    tracker: SequenceTracker = field(default_factory=SequenceTracker)
    partner_epoch: int = 0
    """The partner's numbering space ``tracker`` follows."""
    epoch: int = epoch_of(START)
    """This node's numbering space towards the partner (the relay's, ADR 16)."""
    outbox: list[Message] = field(default_factory=list)
    """Pair events of ``epoch`` sent to the partner; ``outbox[n - 1]`` carries number n."""
    gone: set[int] = field(default_factory=set)
    """Numbers the sender cannot send again (lost for good: parked, discarded, expired)."""
    last_sent_at: datetime | None = None
    last_digest_at: datetime | None = None
    replay_attempts: int = 0
    replay_requested_at: datetime | None = None
    answered: list[tuple[int, int, datetime]] = field(default_factory=list)
    named: dict[Mark, int] = field(default_factory=dict)
    """Received: which event each (epoch, pair number) named (the invariant's record)."""

    @property
    def last_sent(self) -> int:
        return len(self.outbox)


@dataclass
class Node:
    code: str
    partners: tuple[str, ...]
    replicas: dict[UUID, Replica] = field(default_factory=dict)
    """Both groups of every movement this node knows, its own included."""
    owners: dict[UUID, tuple[str, str]] = field(default_factory=dict)
    """(origin, host) of every movement this node knows."""
    inbox: set[int] = field(default_factory=set)
    marks: dict[UUID, Mark] = field(default_factory=dict)
    """The (epoch, number) of the partner's event that set each replica group here."""
    links: dict[str, Link] = field(default_factory=dict)
    up: bool = True
    crashed_at: float = 0.0
    held: list[Message] = field(default_factory=list)
    """Deliveries waiting while the node is down (the broker keeps them)."""
    recent: list[tuple[float, Message]] = field(default_factory=list)
    """Deliveries of the last moments: read again after a crash (offsets not committed)."""

    def __post_init__(self) -> None:
        self.links = {p: Link() for p in self.partners}

    def own_group(self, movement_id: UUID) -> OriginGroup | HostGroup | None:
        replica = self.replicas.get(movement_id)
        if replica is None:
            return None
        return replica.origin if self.owners[movement_id][0] == self.code else replica.host

    def entries(
        self, partner: str, bucket_count: int, only: set[int] | None = None
    ) -> list[DigestEntry]:
        out = []
        for movement_id, (origin, host) in self.owners.items():
            if {origin, host} != {self.code, partner}:
                continue
            if only is not None and bucket_of(movement_id, bucket_count) not in only:
                continue
            replica = self.replicas[movement_id]
            o, h = replica.versions
            out.append(
                DigestEntry.model_construct(
                    movement_id=movement_id,
                    origin=origin,
                    origin_version=o,
                    host_version=h,
                    origin_hash=content_hash(replica.origin),
                    host_hash=content_hash(replica.host),
                    participations_hash=None,
                )
            )
        return out


def content_hash(group: OriginGroup | HostGroup | None) -> str | None:
    """A group's content hash (the service hashes its stored JSON; any stable form does)."""
    if group is None:
        return None
    return hashlib.sha256(group.model_dump_json().encode()).hexdigest()


# -- the simulation -----------------------------------------------------------------------------

_DELIVER, _TICK, _WRITE, _CRASH, _RESTART, _CLAIM, _RESTORE = range(7)


@dataclass
class Traffic:
    written: int = 0
    heartbeats: int = 0
    periodic_digests: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    refused: int = 0
    false_claims: int = 0
    restored: int = 0
    """Own groups taken back from a partner's copy."""
    rolled_back: int = 0
    """Replicas a repair copy set to an older version than they held (the owner's copy
    replacing a replica ahead of it; never one sent before the replica's)."""
    new_epochs: int = 0
    """Numbering spaces a receiver moved on to (a partner's database restored)."""

    def add(self, kind: str) -> None:
        self.extra[kind] = self.extra.get(kind, 0) + 1

    @property
    def extra_total(self) -> int:
        return sum(self.extra.values())


@dataclass(frozen=True, slots=True)
class Result:
    schedule: Schedule
    converged_at: float
    traffic: Traffic
    trace_hash: str


class Simulation:
    def __init__(
        self, schedule: Schedule, policy: LinkPolicy | None = None, *, trace: bool = False
    ) -> None:
        self.schedule = schedule
        self.policy = policy or LinkPolicy()
        self.rng = Random(f"yixian-link-{schedule.seed}")  # noqa: S311 - seeded on purpose
        codes = NODES[: schedule.nodes]
        self.nodes = {c: Node(c, tuple(p for p in codes if p != c)) for c in codes}
        self.queue: list[tuple[float, int, int, object]] = []
        self.order = 0
        self.now = 0.0
        self.flying: Counter[tuple[str, str, int, int]] = Counter()
        """Copies of each (source, destination, epoch, number) on their way."""
        self.next_event = 0
        self.traffic = Traffic()
        self.partitions: list[tuple[frozenset[str], float, float]] = []
        self.violations: list[str] = []
        self.hash = hashlib.blake2b(digest_size=16)
        self.lines: list[str] | None = [] if trace else None
        self.healed = False

    # -- plumbing ---------------------------------------------------------------------------

    def at(self, when: float, kind: int, payload: object) -> None:
        self.order += 1
        heapq.heappush(self.queue, (when, self.order, kind, payload))

    def clock(self) -> datetime:
        return START + timedelta(seconds=self.now)

    def note(self, line: str) -> None:
        self.hash.update(f"{self.now:.6f} {line}\n".encode())
        if self.lines is not None:
            self.lines.append(f"{self.now:9.3f} {line}")

    def fail(self, reason: str) -> ScheduleFailed:
        s = self.schedule
        return ScheduleFailed(
            f"link simulation, seed {s.seed}: {reason}\n  schedule: {s}\n"
            f"  replay it: {s.replay_command}"
        )

    # -- the network ------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Lose (during the active phase), duplicate and delay ``message``."""
        s = self.schedule
        pair = frozenset((message.source, message.destination))
        cut = any(p == pair and a <= self.now < b for p, a, b in self.partitions)
        if not self.healed and (cut or self.rng.random() < s.loss):
            self.traffic.lost += 1
            link = self.nodes[message.source].links[message.destination]
            if self.rng.random() < s.lost_for_good and message.epoch == link.epoch:
                link.gone.add(message.pairseq)
            self.note(f"lost {message}")
            return
        copies = 2 if self.rng.random() < s.duplication else 1
        for _ in range(copies):
            self.fly(message, self.now + self.rng.uniform(0.001, s.max_delay))

    def fly(self, message: Message, arrival: float) -> None:
        self.flying[message.source, message.destination, message.epoch, message.pairseq] += 1
        self.at(arrival, _DELIVER, message)

    def publish(self, node: Node, partner: str, body: Body, kind: str | None) -> Message:
        """The relay numbers the event and sends it; ``kind`` names extra traffic."""
        link = node.links[partner]
        self.next_event += 1
        message = Message(
            node.code, partner, link.last_sent + 1, self.next_event, body, epoch=link.epoch
        )
        link.outbox.append(message)
        link.last_sent_at = self.clock()
        if kind is not None:
            self.traffic.add(kind)
        self.send(message)
        return message

    # -- a node receiving (the applier) -----------------------------------------------------

    def deliver(self, message: Message) -> None:
        node = self.nodes[message.destination]
        if not node.up:
            node.held.append(message)
            return
        node.recent.append((self.now, message))
        if len(node.recent) > 16:
            del node.recent[:8]
        self.note(f"deliver {message}")
        now = self.clock()
        link = node.links[message.source]
        step = numbering(link.partner_epoch, message.epoch)
        if step is Numbering.NEWER:
            try:
                if self.schedule.broken != "claims":
                    check_epoch(message.epoch, now, self.policy)
            except Refused as refusal:
                self.traffic.refused += 1
                self.note(f"refused: {refusal.reason}")
                return
            self.new_epoch(node, message.source, message.epoch)
        current = step is not Numbering.OLDER
        if (
            current
            and self.schedule.broken != "reach"
            and not self.policy.within_reach(message.pairseq, link.tracker.max_seen)
        ):
            self.traffic.refused += 1
            return
        named = link.named.setdefault(message.mark, message.event_id)
        if named != message.event_id:
            self.violations.append(
                f"{message.source}→{message.destination} number {message.epoch}.{message.pairseq}"
                f" names events {named} and {message.event_id}"
            )
        if current:
            link.tracker.receive(message.pairseq, now)
        if message.event_id in node.inbox:
            return
        node.inbox.add(message.event_id)
        try:
            self.dispatch(node, message, now, current=current)
        except Refused as refusal:
            self.traffic.refused += 1
            self.note(f"refused: {refusal.reason}")

    def new_epoch(self, node: Node, partner: str, epoch: int) -> None:
        """The partner numbers from 1 again: follow its new numbering space. Numbers of the
        older one still missing are given up; a digest, sent at once, repairs what they
        carried."""
        link = node.links[partner]
        missing = link.partner_epoch and link.tracker.lag() > 0
        self.note(f"{node.code} follows {partner}'s epoch {epoch} (missing: {bool(missing)})")
        self.traffic.new_epochs += bool(link.partner_epoch)
        link.partner_epoch = epoch
        link.tracker = SequenceTracker()
        link.replay_attempts, link.replay_requested_at = 0, None
        if missing:
            self.send_digest(node, partner, "digest")

    def dispatch(self, node: Node, message: Message, now: datetime, *, current: bool) -> None:
        """Apply a delivered event; ``current``: of the partner's numbering space followed
        (a straggler of an older one is applied, but what it claims counts for nothing)."""
        partner, body, link = message.source, message.body, node.links[message.source]
        if isinstance(body, GroupSent):
            self.apply_group(node, partner, body.group, repair=body.repair, mark=message.mark)
        elif isinstance(body, Heartbeat):
            if self.schedule.broken != "claims":
                check_claim("heartbeat", body.last_sequence, message.pairseq)
            if current:
                link.tracker.heartbeat(body.last_sequence, now)
        elif isinstance(body, Digest):
            if self.schedule.broken != "claims":
                check_claim("digest", body.digest.as_of_sequence, message.pairseq)
            self.compare_digest(node, partner, body.digest, now, settle=current)
        elif isinstance(body, DigestEntries):
            mine = node.entries(partner, self.policy.bucket_count, set(body.buckets))
            repair = reconcile(node.code, mine, body.entries)
            self.resend(node, partner, [(m, g) for m, g in repair.republish])
            if repair.request:
                self.publish(node, partner, ResendRequest(tuple(repair.request)), "resend_request")
            for movement_id in repair.give_back:
                self.give_back(node, partner, movement_id)
        elif isinstance(body, ResendRequest):
            self.resend(node, partner, [(w.movement_id, w.group) for w in body.wanted])
        elif isinstance(body, ReplicaReturn):
            self.take_back(node, partner, body, message.mark)
        else:
            self.answer_replay(node, partner, body, now)

    def apply_group(
        self,
        node: Node,
        partner: str,
        group: OriginGroup | HostGroup,
        *,
        repair: bool,
        mark: Mark,
    ) -> None:
        known = node.owners.get(group.movement_id)
        current = node.replicas.get(group.movement_id, Replica(None, None))
        held = node.marks.get(group.movement_id)
        set_by = None if self.schedule.broken == "stale" else held
        if isinstance(group, OriginGroup):
            check_origin_group(group, sender=partner, node=node.code)
            if known is not None and known[0] != partner:
                raise Refused(f"movement {group.movement_id} belongs to origin {known[0]}")
            updated = apply_origin(
                current,
                OriginGroupChanged.model_construct(group=group, repair=repair),
                mark=mark,
                set_by=set_by,
            )
            owners = (partner, node.code)
        else:
            check_host_group(
                group, sender=partner, node=node.code, origin=known[0] if known else None
            )
            assert known is not None
            if known[1] != partner:
                raise Refused(f"movement {group.movement_id} is hosted by {known[1]}")
            updated = apply_host(
                current,
                HostGroupChanged.model_construct(group=group, repair=repair),
                mark=mark,
                set_by=set_by,
            )
            owners = known
        if updated is not None:
            old = current.origin if isinstance(group, OriginGroup) else current.host
            if old is not None and old.version > group.version:
                self.traffic.rolled_back += 1
                if held is not None and mark < held:
                    # the owner never goes back: an older state sent before the one held
                    self.violations.append(
                        f"{node.code}'s copy of {partner}'s group of {group.movement_id} went"
                        f" back from v{old.version} to v{group.version} (announced) by a copy"
                        f" sent at {mark}, before the event at {held} that set it"
                    )
            node.replicas[group.movement_id] = updated
            node.owners[group.movement_id] = owners
            node.marks[group.movement_id] = later_mark(held, mark) or mark

    def compare_digest(
        self, node: Node, partner: str, digest: LinkDigest, now: datetime, *, settle: bool
    ) -> None:
        mine = node.entries(partner, digest.bucket_count)
        content = bool(digest.content)
        differing = differing_buckets(buckets(mine, digest.bucket_count, content=content), digest)
        if not differing:
            if settle and self.schedule.broken != "settle":
                node.links[partner].tracker.settle_up_to(digest.as_of_sequence, now)
            return
        wanted = set(differing)
        chosen = tuple(e for e in mine if bucket_of(e.movement_id, digest.bucket_count) in wanted)
        self.publish(node, partner, DigestEntries(tuple(differing), chosen), "digest_entries")

    def resend(self, node: Node, partner: str, wanted: list[tuple[UUID, GroupName]]) -> None:
        """Publish again, as the owner's repair copy, the current snapshot of each wanted
        group this node owns."""
        for movement_id, name in wanted:
            group = node.own_group(movement_id)
            if group is None or partner not in node.owners[movement_id]:
                continue
            if name is not (GroupName.ORIGIN if isinstance(group, OriginGroup) else GroupName.HOST):
                self.give_back(node, partner, movement_id)  # the asker's own group, back
                continue
            self.publish(node, partner, GroupSent(group, repair=True), "resent_group")

    def give_back(self, node: Node, partner: str, movement_id: UUID) -> None:
        """Send ``partner`` this node's copy of a movement whose group the partner owns."""
        replica = node.replicas.get(movement_id)
        if replica is None or partner not in node.owners[movement_id]:
            return
        body = ReplicaReturn(movement_id, replica.origin, replica.host)
        self.publish(node, partner, body, "replica_returned")

    def take_back(self, node: Node, partner: str, body: ReplicaReturn, mark: Mark) -> None:
        """The partner's group in a returned copy is its owner's repair copy; this node's
        own group in it is taken only where this node has none."""
        by_origin = body.origin is not None and body.origin.origin == partner
        theirs = body.origin if by_origin else body.host
        mine = body.host if by_origin else body.origin
        if theirs is not None:
            self.apply_group(node, partner, theirs, repair=True, mark=mark)
        known = node.owners.get(body.movement_id)
        if mine is None or known is None or partner not in known:
            return
        if node.code not in (getattr(mine, "origin", None), getattr(mine, "host", None)):
            raise Refused(f"the group returned for {body.movement_id} is not {node.code}'s")
        if node.own_group(body.movement_id) is None:
            replica = node.replicas[body.movement_id]
            node.replicas[body.movement_id] = (
                Replica(mine, replica.host)
                if isinstance(mine, OriginGroup)
                else Replica(replica.origin, mine)
            )
            self.traffic.restored += 1

    def answer_replay(self, node: Node, partner: str, body: ReplayRequest, now: datetime) -> None:
        link = node.links[partner]
        wanted = list(body.runs)
        if body.epoch != link.epoch:  # numbers of a space this node no longer has
            self.send_digest(node, partner, "digest")
            return
        since = now - self.policy.replay_interval
        link.answered = [a for a in link.answered if a[2] >= since]
        lately = [(first, last) for first, last, _ in link.answered]
        runs = answer_replay(wanted, lately)
        if not runs:
            return
        held = 0
        for first, last in runs:
            for seq in range(first, min(last, link.last_sent) + 1):
                if seq in link.gone:
                    continue
                held += 1
                self.traffic.add("replayed")
                self.send(link.outbox[seq - 1])
        link.answered.extend((first, last, now) for first, last in runs)
        if replay_needs_digest(runs, held):
            self.send_digest(node, partner, "digest")

    def digest(self, node: Node, partner: str) -> LinkDigest:
        """A digest of what ``node`` shares with ``partner``, as of the last number sent."""
        count = self.policy.bucket_count
        mine = buckets(node.entries(partner, count), count, content=True)
        return LinkDigest.model_construct(
            content=True,
            digest_id=UUID(int=self.next_event + 1),
            bucket_count=count,
            buckets=tuple(sorted(mine.values(), key=lambda b: b.bucket)),
            as_of_sequence=node.links[partner].last_sent,
            computed_at=self.clock(),
        )

    def send_digest(self, node: Node, partner: str, kind: str | None) -> None:
        self.publish(node, partner, Digest(self.digest(node, partner)), kind)
        node.links[partner].last_digest_at = self.clock()

    # -- a node's own work (registry writes, the link keeper) -------------------------------

    def tick(self, node: Node) -> None:
        if not node.up:
            return
        now, policy = self.clock(), self.policy
        for partner in node.partners:
            link = node.links[partner]
            if policy.heartbeat_due(link.last_sent_at, now):
                self.traffic.heartbeats += 1
                self.publish(node, partner, Heartbeat(link.last_sent), None)
            link.tracker.refresh(now)
            plan = plan_replay(
                link.tracker,
                now,
                policy,
                attempts=0 if self.schedule.broken == "backoff" else link.replay_attempts,
                asked_at=link.replay_requested_at,
            )
            link.replay_attempts = plan.attempts
            if plan.runs:
                request = ReplayRequest(tuple(plan.runs), link.partner_epoch)
                self.publish(node, partner, request, "replay_request")
                link.replay_requested_at = now
                if plan.with_digest:
                    self.send_digest(node, partner, "digest")
            if policy.digest_due(link.last_digest_at, now):
                self.traffic.periodic_digests += 1
                self.send_digest(node, partner, None)

    def write(self, node: Node) -> None:
        """The owner changes one of its groups (or registers a new movement)."""
        if not node.up:
            return
        rng = self.rng
        mine = [
            m
            for m, (origin, host) in node.owners.items()
            if origin == node.code or node.replicas[m].origin is not None
        ]
        if not mine or rng.random() < 0.15:
            self.register(node, rng.choice(node.partners))
            return
        movement_id = rng.choice(mine)
        origin, host = node.owners[movement_id]
        replica = node.replicas[movement_id]
        stamp = self.clock()
        if origin == node.code:
            assert replica.origin is not None
            changed_origin = replica.origin.model_copy(
                update={
                    "version": replica.origin.version + 1,
                    "contact": Contact(phone=f"+86 138 {rng.randrange(10**8):08d}"),
                    "changed_at": stamp,
                }
            )
            node.replicas[movement_id] = Replica(changed_origin, replica.host)
            group: OriginGroup | HostGroup = changed_origin
        else:
            version = replica.host.version + 1 if replica.host else 1
            changed_host = HOST_BASE.model_copy(
                update={
                    "movement_id": movement_id,
                    "version": version,
                    "host": host,
                    "participation": ParticipationSummary(attended=rng.randrange(100)),
                    "changed_at": stamp,
                }
            )
            node.replicas[movement_id] = Replica(replica.origin, changed_host)
            group = changed_host
        partner = host if origin == node.code else origin
        self.traffic.written += 1
        self.publish(node, partner, GroupSent(group), None)

    def register(self, node: Node, host: str) -> None:
        movement_id = UUID(int=self.rng.getrandbits(128))
        group = ORIGIN_BASE.model_copy(
            update={
                "movement_id": movement_id,
                "origin": node.code,
                "destination": ORIGIN_BASE.destination.model_copy(update={"jurisdiction": host}),
                "changed_at": self.clock(),
            }
        )
        node.replicas[movement_id] = Replica(group, None)
        node.owners[movement_id] = (node.code, host)
        self.traffic.written += 1
        self.publish(node, host, GroupSent(group), None)

    def false_claim(self, node: Node) -> None:
        """The node claims what it has not sent; the partner must refuse every claim."""
        if not node.up:
            return
        rng = self.rng
        partner = rng.choice(node.partners)
        link = node.links[partner]
        kind = rng.randrange(4)
        self.traffic.false_claims += 1
        if kind == 0:  # a heartbeat claiming numbers beyond its own
            self.publish(node, partner, Heartbeat(link.last_sent + 1 + rng.randrange(1, 50)), None)
        elif kind == 1:  # a digest claiming as much (its own number, or beyond)
            forged = self.digest(node, partner).model_copy(
                update={"as_of_sequence": link.last_sent + 1 + rng.randrange(1 << 40)}
            )
            self.publish(node, partner, Digest(forged), None)
        elif kind == 2:  # a pair number far ahead of anything sent, unnumbered by the relay
            self.next_event += 1
            seq = link.last_sent + self.policy.max_ahead + 1 + rng.randrange(1 << 20)
            message = Message(
                node.code, partner, seq, self.next_event, Heartbeat(seq - 1), epoch=link.epoch
            )
            self.send(message)
        else:  # a link epoch that starts years from now: every real number a straggler
            self.next_event += 1
            future = epoch_of(self.clock() + timedelta(days=rng.randint(2, 20_000)))
            self.send(Message(node.code, partner, 1, self.next_event, Heartbeat(0), epoch=future))

    def crash(self, node: Node) -> None:
        node.up = False
        node.crashed_at = self.now
        self.note(f"crash {node.code}")

    def restart(self, node: Node) -> None:
        """Up again: trackers rebuilt from what was stored, held deliveries read, the
        consumer's uncommitted records read again, the relay's last rows sent again."""
        node.up = True
        now = self.clock()
        self.note(f"restart {node.code}")
        for link in node.links.values():
            old = link.tracker
            link.tracker = SequenceTracker(
                contiguous=old.contiguous,
                ahead=set(old.ahead),
                partner_sent=old.partner_sent,
                missing_since=old.missing_since,
                last_event_at=old.last_event_at,
                last_heartbeat_at=old.last_heartbeat_at,
            )
            link.tracker.refresh(now)
        again = [m for t, m in node.recent if t > node.crashed_at - 2.0]
        for message in [*node.held, *again]:
            self.fly(message, self.now + self.rng.uniform(0.001, 0.5))
        node.held.clear()
        for link in node.links.values():
            unmarked = self.rng.randint(0, 3)  # sent, but not yet marked sent at the crash
            for message in link.outbox[len(link.outbox) - unmarked :] if unmarked else []:
                if message.pairseq not in link.gone:
                    self.traffic.add("relay_resent")
                    self.send(message)

    def restore(self, node: Node) -> None:
        """Up again from a database recreated or restored while its pair topics persist:
        its relay numbers from 1 again, in a new epoch (``--broken epochs``: in the old one);
        the old epoch's rows are gone, nothing of them can be sent again."""
        self.restart(node)
        now = self.clock()
        for partner, link in node.links.items():
            if self.schedule.broken != "epochs":
                link.epoch = epoch_of(now)
            self.note(f"{node.code} numbers to {partner} from 1 in epoch {link.epoch}")
            link.outbox, link.gone, link.answered = [], set(), []

    # -- running ----------------------------------------------------------------------------

    def plan(self) -> None:
        s, rng = self.schedule, self.rng
        codes = sorted(self.nodes)
        for i, code in enumerate(codes):
            self.at(rng.uniform(0.0, TICK) + i * 1e-6, _TICK, code)
        for _ in range(s.movements):
            self.at(rng.uniform(0.0, 1.0), _WRITE, rng.choice(codes))
        for _ in range(s.writes):
            self.at(rng.uniform(1.0, s.active), _WRITE, rng.choice(codes))
        for _ in range(s.partitions):
            a, b = rng.sample(codes, 2)
            start = rng.uniform(0.0, s.active)
            self.partitions.append(
                (frozenset((a, b)), start, min(s.active, start + rng.uniform(1, 40)))
            )
        for _ in range(s.restarts):
            code = rng.choice(codes)
            start = rng.uniform(0.0, s.active)
            self.at(start, _CRASH, code)
            self.at(min(s.active, start + rng.uniform(0.5, 45)) + 1e-3, _RESTART, code)
        for _ in range(s.false_claims):
            self.at(rng.uniform(0.0, s.active), _CLAIM, rng.choice(codes))
        for _ in range(s.restores):
            code = rng.choice(codes)
            start = rng.uniform(0.0, s.active)
            self.at(start, _CRASH, code)
            self.at(min(s.active, start + rng.uniform(0.5, 45)) + 2e-3, _RESTORE, code)

    def run(self) -> Result:
        """Run the schedule: the active phase, then a healed network until every link and
        replica is whole and stays so for ``CONFIRM`` seconds; then the keepers stop, the
        network drains, and the invariants are checked."""
        self.plan()
        s = self.schedule
        converged_at: float | None = None
        whole_at: float | None = None
        next_look = s.active
        while self.queue:
            when, _, kind, payload = heapq.heappop(self.queue)
            self.now = when
            if not self.healed and when >= s.active:
                self.healed = True
                self.note("network healed")
            if kind == _DELIVER:
                assert isinstance(payload, Message)
                self.flying[
                    payload.source, payload.destination, payload.epoch, payload.pairseq
                ] -= 1
                self.deliver(payload)
                continue
            assert isinstance(payload, str)
            node = self.nodes[payload]
            if kind == _TICK:
                if converged_at is not None:
                    continue  # draining: the keepers have stopped
                self.tick(node)
                if self.healed and when >= next_look:
                    next_look = when + TICK
                    if not self.whole():
                        whole_at = None
                    elif whole_at is None:
                        whole_at = when
                    elif when >= whole_at + CONFIRM:
                        converged_at = whole_at
                        self.note("converged; draining")
                        continue
                if when <= s.active + HEAL_LIMIT:
                    self.at(when + TICK, _TICK, payload)
            elif kind == _WRITE:
                self.write(node)
            elif kind == _CRASH:
                self.crash(node)
            elif kind == _RESTART:
                self.restart(node)
            elif kind == _RESTORE:
                self.restore(node)
            else:
                self.false_claim(node)
        self.check(converged_at)
        assert converged_at is not None
        return Result(s, converged_at, self.traffic, self.hash.hexdigest())

    def whole(self) -> bool:
        """Every node up, every number sent received (or settled) or on its way, no link
        in a gap or silent, every replica equal to its owner's copy."""
        if any(n.held or not n.up for n in self.nodes.values()):
            return False
        now = self.clock()
        for receiver in self.nodes.values():
            for partner, link in receiver.links.items():
                sender = self.nodes[partner].links[receiver.code]
                t, sent, epoch = link.tracker, sender.last_sent, sender.epoch
                if link.partner_epoch != epoch:
                    return False
                if t.contiguous > sent or t.state(
                    now, grace=self.policy.gap_grace, silence=self.policy.silence
                ) in (LinkState.GAP, LinkState.SILENT):
                    return False
                for seq in range(t.contiguous + 1, sent + 1):
                    if seq not in t.ahead and not self.flying[partner, receiver.code, epoch, seq]:
                        return False
        return not self.replica_faults()

    def link_faults(self) -> list[str]:
        faults = []
        now = self.clock()
        for receiver in self.nodes.values():
            for partner, link in receiver.links.items():
                sender = self.nodes[partner].links[receiver.code]
                sent = sender.last_sent
                t = link.tracker
                state = t.state(now, grace=self.policy.gap_grace, silence=self.policy.silence)
                if t.contiguous != sent or t.ahead or state is not LinkState.HEALTHY:
                    faults.append(
                        f"link {partner}→{receiver.code} is {state.value}: received up to"
                        f" {t.contiguous} (ahead {sorted(t.ahead)[:5]}, partner says"
                        f" {t.partner_sent}) of {sent} sent"
                    )
                if link.partner_epoch != sender.epoch:
                    faults.append(
                        f"link {partner}→{receiver.code} follows epoch {link.partner_epoch},"
                        f" the partner numbers in {sender.epoch}"
                    )
        return faults

    def replica_faults(self) -> list[str]:
        faults = []
        for owner in self.nodes.values():
            for movement_id, (origin, host) in owner.owners.items():
                if owner.code not in (origin, host):
                    continue
                mine = owner.own_group(movement_id)
                other = self.nodes[host if owner.code == origin else origin]
                replica = other.replicas.get(movement_id)
                theirs = None
                if replica is not None:
                    theirs = replica.host if owner.code == host else replica.origin
                if mine != theirs:
                    faults.append(
                        f"movement {movement_id}: {other.code}'s copy of {owner.code}'s group"
                        f" (v{getattr(theirs, 'version', 0)}) differs from the owner's"
                        f" (v{getattr(mine, 'version', 0)})"
                    )
        return faults

    def check(self, converged_at: float | None) -> None:
        if self.violations:
            raise self.fail("; ".join(self.violations[:3]))
        if converged_at is None:
            faults = [*self.link_faults(), *self.replica_faults()]
            raise self.fail(
                f"not converged {HEAL_LIMIT:.0f} s after the network healed: "
                + "; ".join(faults[:4] or ["deliveries still pending"])
            )
        faults = self.link_faults()
        if faults:
            raise self.fail("; ".join(faults[:4]))
        t = self.traffic
        restarts = self.schedule.restarts + self.schedule.restores
        bound = EXTRA_PER_LOST * t.lost + EXTRA_PER_RESTART * restarts + EXTRA_BASE
        if t.extra_total > bound:
            raise self.fail(
                f"extra traffic {t.extra_total} {dict(sorted(t.extra.items()))} exceeds"
                f" {bound} ({t.lost} lost, {restarts} restarts)"
            )


EXTRA_PER_LOST = 6
EXTRA_PER_RESTART = 10
EXTRA_BASE = 40
"""Extra traffic allowed: per message lost, per restart (its relay sends its last rows
again), and once (reordering beyond the grace, digests meeting writes on their way)."""


def run_schedule(seed: int, broken: str | None = None, *, trace: bool = False) -> Result:
    """Run one schedule; raises ``ScheduleFailed`` (with the seed and the command that
    replays it) when an invariant does not hold."""
    return Simulation(Schedule.from_seed(seed, broken), trace=trace).run()


def run_many(first: int, count: int, broken: str | None = None) -> tuple[int, list[str]]:
    """Run ``count`` schedules from seed ``first``; (passed, failure messages)."""
    failures = []
    for seed in range(first, first + count):
        try:
            run_schedule(seed, broken)
        except ScheduleFailed as failure:
            failures.append(str(failure))
    return count - len(failures), failures


def _chunks(first: int, count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(first, first + count, size):
        yield start, min(size, first + count - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m yixian.sync.simulation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seed", type=int, help="replay this one schedule and print its trace")
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--broken", choices=BROKEN_RULES, help="switch a rule off")
    args = parser.parse_args(argv)
    if args.seed is not None:
        sim = Simulation(Schedule.from_seed(args.seed, args.broken), trace=True)
        try:
            result = sim.run()
        except ScheduleFailed as failure:
            print("\n".join(sim.lines or []))
            print(failure)
            return 1
        print("\n".join(sim.lines or []))
        print(
            f"converged {result.converged_at - result.schedule.active:.1f} s after healing;"
            f" traffic {result.traffic}"
        )
        return 0
    started = time.perf_counter()
    passed, failures = 0, []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(run_many, start, size, args.broken)
            for start, size in _chunks(args.first_seed, args.schedules, 1000)
        ]
        for future in futures:
            ok, failed = future.result()
            passed += ok
            failures.extend(failed)
    elapsed = time.perf_counter() - started
    for reason in failures[:10]:
        print(reason, file=sys.stderr)
    print(
        f"{passed} of {args.schedules} schedules converged (seeds {args.first_seed}.."
        f"{args.first_seed + args.schedules - 1}) in {elapsed:.1f} s,"
        f" {args.schedules / elapsed:.0f} a second"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
