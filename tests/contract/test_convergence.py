"""Two replicas of the shared movement record converge, whatever the network does.

Hypothesis drives an origin node and a host node through random schedules: each side
takes legal steps on its own group (the registry's domain), the network delivers,
reorders, duplicates and drops the resulting snapshots, and the receiver applies them
with the sync service's version gate. After one anti-entropy exchange (digests compared,
owners re-publish what the other side lacks) both replicas must be identical, and so must
the derived state.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yixian.contracts import (
    ActivityKind,
    Contact,
    DigestEntry,
    GroupName,
    HostGroupChanged,
    OriginGroupChanged,
    TransferDecision,
    movement_state,
)
from yixian.contracts.examples import CHAOYANG_BRANCH, GUSHI_BRANCH, origin_group
from yixian.registry.domain import Deadlines, DomainError, Movement
from yixian.registry.domain import HostGroupChanged as HostChanged
from yixian.registry.domain import OriginGroupChanged as OriginChanged
from yixian.sync.domain import Replica, apply_host, apply_origin, buckets, reconcile

GUSHI, CHAOYANG = "411525", "110105"
DEADLINES = Deadlines()
START = datetime(2026, 3, 1, tzinfo=UTC)
Message = tuple[str, OriginGroupChanged | HostGroupChanged]  # (to node, event)

ORIGIN_STEPS: list[Callable[[Movement, datetime], object]] = [
    lambda m, t: m.update_details(
        node=GUSHI, now=t, actor="o", contact=Contact(phone=str(t.hour)), deadlines=DEADLINES
    ),
    lambda m, t: m.cancel(node=GUSHI, now=t, actor="o"),
    lambda m, t: m.return_home(node=GUSHI, returned_on=date(2026, 3, 1), now=t, actor="o"),
    lambda m, t: m.request_transfer(node=GUSHI, note=None, deadlines=DEADLINES, now=t, actor="o"),
    lambda m, t: m.withdraw_transfer(node=GUSHI, now=t, actor="o"),
    lambda m, t: m.complete_transfer(node=GUSHI, now=t, actor="o"),
]
HOST_STEPS: list[Callable[[Movement, datetime], object]] = [
    lambda m, t: m.confirm_check_in(
        node=CHAOYANG, host_org=CHAOYANG_BRANCH, branch=None, checked_in_at=t, now=t, actor="h"
    ),
    lambda m, t: m.reject(node=CHAOYANG, reason="unknown", now=t, actor="h"),
    lambda m, t: m.forward(node=CHAOYANG, forwarded_to="110114", reason="moved", now=t, actor="h"),
    lambda m, t: m.mark_lost_contact(node=CHAOYANG, since=t.date(), now=t, actor="h"),
    lambda m, t: m.restore_contact(node=CHAOYANG, now=t, actor="h"),
    lambda m, t: m.record_participation(
        node=CHAOYANG,
        participation_id=uuid4(),
        activity_id=None,
        kind=ActivityKind.THEME_DAY,
        title="主题党日",
        attended_at=t,
        now=t,
        actor="h",
    ),
    lambda m, t: m.reply_transfer(
        node=CHAOYANG, decision=TransferDecision.ACCEPTED, reason=None, now=t, actor="h"
    ),
    lambda m, t: m.reply_transfer(
        node=CHAOYANG, decision=TransferDecision.REJECTED, reason="no", now=t, actor="h"
    ),
]


@dataclass
class Node:
    code: str
    movements: dict[UUID, Movement] = field(default_factory=dict)

    def replica(self, movement_id: UUID) -> Replica:
        m = self.movements.get(movement_id)
        return Replica(m.origin_group, m.host_group) if m else Replica(None, None)

    def receive(self, event: OriginGroupChanged | HostGroupChanged) -> None:
        movement_id = event.group.movement_id
        current = self.replica(movement_id)
        if isinstance(event, OriginGroupChanged):
            updated = apply_origin(current, event)
        else:
            updated = apply_host(current, event)
        if updated is None:
            return  # stale or duplicate: the version gate
        assert all(
            new >= old for new, old in zip(updated.versions, current.versions, strict=True)
        ), "a replica's group went back in version"
        m = self.movements.get(movement_id)
        if m is None:
            origin = event.group.origin if isinstance(event, OriginGroupChanged) else GUSHI
            m = self.movements[movement_id] = Movement(movement_id, origin, CHAOYANG, None, None)
        m.origin_group, m.host_group = updated.origin, updated.host

    def entries(self) -> list[DigestEntry]:
        return [
            DigestEntry(
                movement_id=m.movement_id,
                origin=m.origin,
                origin_version=m.origin_group.version if m.origin_group else 0,
                host_version=m.host_group.version if m.host_group else 0,
            )
            for m in self.movements.values()
        ]

    def snapshot(
        self, movement_id: UUID, group: GroupName
    ) -> OriginGroupChanged | HostGroupChanged:
        m = self.movements[movement_id]
        if group is GroupName.ORIGIN:
            assert m.origin_group is not None
            return OriginGroupChanged(group=m.origin_group)
        assert m.host_group is not None
        return HostGroupChanged(group=m.host_group)


def _register(origin: Node, now: datetime) -> list[Message]:
    card = origin_group()
    movement = Movement.register_outflow(
        node=GUSHI, origin_org=GUSHI_BRANCH, member=card.member, destination=card.destination,
        period=card.period, contact=card.contact, certificate=None, deadlines=DEADLINES,
        partners=frozenset({CHAOYANG}), now=now, actor="o",
    )  # fmt: skip
    origin.movements[movement.movement_id] = movement
    return _drain(movement, CHAOYANG)


def _drain(movement: Movement, to: str) -> list[Message]:
    out: list[Message] = []
    for event in movement.events:
        if isinstance(event, OriginChanged):
            out.append((to, OriginGroupChanged(group=event.group)))
        elif isinstance(event, HostChanged):
            out.append((to, HostGroupChanged(group=event.group)))
    movement.events.clear()
    return out


def anti_entropy(origin: Node, host: Node, rng: random.Random) -> list[Message]:
    """One digest exchange; the messages the owners send to repair differences."""
    nodes = {GUSHI: origin, CHAOYANG: host}
    mine, theirs = origin.entries(), host.entries()
    a, b = buckets(mine, 16), buckets(theirs, 16)
    differing = {n for n in set(a) | set(b) if a.get(n) != b.get(n)}
    in_buckets = [e for e in mine if buckets([e], 16).keys() & differing]
    their_in_buckets = [e for e in theirs if buckets([e], 16).keys() & differing]
    out: list[Message] = []
    for me, other_entries, my_entries, partner in (
        (origin, their_in_buckets, in_buckets, CHAOYANG),
        (host, in_buckets, their_in_buckets, GUSHI),
    ):
        repair = reconcile(me.code, my_entries, other_entries)
        out += [(partner, me.snapshot(mid, group)) for mid, group in repair.republish]
        for wanted in repair.request:  # the partner answers a resend request
            out.append((me.code, nodes[partner].snapshot(wanted.movement_id, wanted.group)))
    rng.shuffle(out)
    return out


Action = tuple[str, int]
actions = st.lists(
    st.tuples(
        st.sampled_from(["origin", "host", "deliver", "deliver", "deliver", "duplicate", "drop"]),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=60,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=actions,
    movements=st.integers(min_value=1, max_value=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_replicas_converge_whatever_the_delivery(
    schedule: list[Action], movements: int, seed: int
) -> None:
    rng = random.Random(seed)
    origin, host = Node(GUSHI), Node(CHAOYANG)
    now = START
    network: list[Message] = []
    for _ in range(movements):
        network += _register(origin, now)
    nodes = {GUSHI: origin, CHAOYANG: host}
    dropped = False
    for kind, n in schedule:
        now += timedelta(hours=1)
        if kind in ("origin", "host"):
            actor = origin if kind == "origin" else host
            steps = ORIGIN_STEPS if kind == "origin" else HOST_STEPS
            candidates = [m for m in actor.movements.values() if m.origin_group is not None]
            if not candidates:
                continue
            movement = candidates[n % len(candidates)]
            try:
                steps[n % len(steps)](movement, now)
            except DomainError:
                movement.events.clear()
                continue
            network += _drain(movement, CHAOYANG if kind == "origin" else GUSHI)
        elif network:
            i = n % len(network)
            if kind == "deliver":
                to, event = network.pop(i)
                nodes[to].receive(event)
            elif kind == "duplicate":
                network.insert(rng.randrange(len(network) + 1), network[i])
            else:
                network.pop(i)  # lost
                dropped = True
    rng.shuffle(network)
    for to, event in network:  # whatever is still in flight arrives, in any order
        nodes[to].receive(event)
    if not dropped:  # nothing lost: order and duplicates alone must not matter
        _assert_identical(origin, host)
    for to, event in anti_entropy(origin, host, rng):
        nodes[to].receive(event)
    _assert_identical(origin, host)


def _assert_identical(origin: Node, host: Node) -> None:
    for movement_id, mine in origin.movements.items():
        theirs = host.movements.get(movement_id)
        assert theirs is not None, "the host never learned of the movement"
        assert (theirs.origin_group, theirs.host_group) == (mine.origin_group, mine.host_group)
        assert movement_state(theirs.origin_group, theirs.host_group) is movement_state(
            mine.origin_group, mine.host_group
        )
    assert set(host.movements) == set(origin.movements)


def test_the_schedule_can_lose_everything_and_still_converge() -> None:
    """A deterministic worst case: every message is dropped, anti-entropy alone repairs."""
    origin, host = Node(GUSHI), Node(CHAOYANG)
    _register(origin, START)  # the registration is lost
    assert host.movements == {}
    for to, event in anti_entropy(origin, host, random.Random(1)):
        {GUSHI: origin, CHAOYANG: host}[to].receive(event)
    ((movement_id, movement),) = origin.movements.items()
    assert host.movements[movement_id].origin_group == movement.origin_group
