"""The ``Applier`` on a node held in memory (``fakes.py``): real contract events, encoded as
a partner's relay publishes them, applied batch by batch. No database, no broker.

Chaoyang (110105) hosts a member of Gushi (411525): it receives Gushi's origin group;
Gushi receives Chaoyang's host group and participations. Changping (110114) is a third
node that tries to write what it does not own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import (
    LINK_KEY,
    ActivityKind,
    ContractModel,
    HostGroup,
    HostGroupChanged,
    LinkDigest,
    LinkHeartbeat,
    OriginGroup,
    OriginGroupChanged,
    ParticipationRecorded,
    ReplayRequested,
    TopicNames,
    make_event,
    record_key,
)
from yixian.contracts.examples import (
    AT,
    CHAOYANG_BRANCH,
    MOVEMENT,
    TRACEPARENT,
    host_group,
    origin_group,
)
from yixian.sync.domain import buckets
from yixian.sync.domain.apply import MAX_VERSION_AHEAD
from yixian.sync.domain.link import epoch_of
from yixian.sync.service_layer.applier import Applier, SyncConfig
from yixian.sync.service_layer.links import LinkPolicy
from yixian.sync.service_layer.repositories import Inbound

from .fakes import DatabaseLost, FakeStore, FakeTransactions, MovementRow, NodeTables

GUSHI, CHAOYANG, CHANGPING = "411525", "110105", "110114"
TOPICS = TopicNames()
NOW = AT + timedelta(days=1)


@dataclass
class Partner:
    """A partner's side of one pair topic: it numbers its events as its relay would."""

    code: str
    node: str
    epoch: int = 0
    seq: int = 0
    offset: int = 0
    sent: list[Inbound] = field(default_factory=list)

    def record(self, payload: ContractModel, *, seq: int | None = None) -> Inbound:
        """The next record of the pair topic carrying ``payload`` (numbered ``seq``, or the
        next number)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        movement = getattr(payload, "movement_id", None) or getattr(
            getattr(payload, "group", None), "movement_id", None
        )
        event = make_event(
            payload,
            node=self.code,
            time=AT,
            traceparent=TRACEPARENT,
            subject=str(movement) if movement else None,
            correlationid=movement,
        ).with_pairseq(seq, self.epoch)
        return self.raw(event.encode(), key=str(movement).encode() if movement else b"")

    def raw(self, value: bytes, *, key: bytes = b"") -> Inbound:
        """The next record of the pair topic, whatever its bytes."""
        record = Inbound(TOPICS.pair(self.code, self.node), 0, self.offset, key, value)
        self.offset += 1
        self.sent.append(record)
        return record


@dataclass
class Node:
    tables: NodeTables
    transactions: FakeTransactions
    applier: Applier

    @classmethod
    def of(cls, code: str, *, rebuilding: bool = False) -> Node:
        tables = NodeTables(code, clock=lambda: NOW)
        transactions = FakeTransactions(tables, TOPICS)
        config = SyncConfig(code, TOPICS, LinkPolicy())
        return cls(tables, transactions, Applier(transactions, config, lambda: NOW,
                                                 rebuilding=rebuilding))  # fmt: skip

    def announced(self) -> list[Any]:
        return self.tables.announced(TOPICS)

    def dead_letters(self) -> list[str]:
        return [d.reason for d in self.tables.dead_letters.values()]

    def owns(self, group: OriginGroup) -> None:
        """The origin's own group, as its registry wrote it."""
        self.tables.movements[group.movement_id] = MovementRow(
            group.movement_id, group.origin, group.destination.jurisdiction,
            group.member.member_id, group.version, group.status.value,
            group.model_dump(mode="json"), group.origin_org.org_id,
        )  # fmt: skip


def _origin(version: int = 1, **changes: Any) -> OriginGroup:
    base = origin_group(version)
    return base.model_copy(update=changes) if changes else base


def _participation(participation_id: UUID | None = None) -> ParticipationRecorded:
    return ParticipationRecorded(
        participation_id=participation_id or uuid4(),
        movement_id=MOVEMENT,
        host=CHAOYANG,
        host_org=CHAOYANG_BRANCH,
        activity_id=None,
        kind=ActivityKind.THEME_DAY,
        title="三月主题党日",
        attended_at=AT,
        recorded_at=AT,
        recorded_by="secretary:chaoyang-gushi-3",
    )


@pytest.fixture
def chaoyang() -> Node:
    return Node.of(CHAOYANG)


@pytest.fixture
def gushi() -> Node:
    return Node.of(GUSHI)


@pytest.fixture
def from_gushi() -> Partner:
    return Partner(GUSHI, CHAOYANG)


@pytest.fixture
def from_chaoyang() -> Partner:
    return Partner(CHAOYANG, GUSHI)


# -- groups ---------------------------------------------------------------------------------


async def test_a_partners_group_is_applied_and_announced_on_the_local_topic(
    chaoyang: Node, from_gushi: Partner
) -> None:
    record = from_gushi.record(OriginGroupChanged(group=_origin()))

    assert await chaoyang.applier.handle_batch([record]) == ["applied"]

    stored = chaoyang.tables.group(MOVEMENT)
    assert stored is not None
    assert (stored.origin, stored.host) == (GUSHI, CHAOYANG)
    assert stored.replica.origin == _origin()
    assert stored.set_by == (0, 1)
    [announced] = chaoyang.announced()
    assert isinstance(announced.data, OriginGroupChanged)
    assert announced.data.group == _origin()
    assert announced.source_node == CHAOYANG
    assert announced.trace_id == TRACEPARENT.split("-")[1]  # the partner's trace goes on
    [inbox] = chaoyang.tables.inbox.values()
    assert (inbox.source, inbox.outcome, inbox.pairseq) == (GUSHI, "applied", 1)
    assert (MOVEMENT, "origin", 1) in chaoyang.tables.history
    assert (GUSHI, 0, 1) in chaoyang.tables.link_received
    assert chaoyang.transactions.committed == 1
    assert chaoyang.transactions.rolled_back == 0


async def test_a_rebuild_applies_without_announcing(from_gushi: Partner) -> None:
    node = Node.of(CHAOYANG, rebuilding=True)
    outcome = await node.applier.handle(from_gushi.record(OriginGroupChanged(group=_origin())))
    assert outcome == "applied"
    assert node.tables.group(MOVEMENT) is not None
    assert node.announced() == []


async def test_a_duplicate_event_is_ignored_in_the_batch_and_after(
    chaoyang: Node, from_gushi: Partner
) -> None:
    record = from_gushi.record(OriginGroupChanged(group=_origin()))

    assert await chaoyang.applier.handle_batch([record, record]) == ["applied", "duplicate"]
    assert await chaoyang.applier.handle(record) == "duplicate"

    assert len(chaoyang.announced()) == 1
    assert len(chaoyang.tables.inbox) == 1


async def test_an_older_version_is_not_applied(chaoyang: Node, from_gushi: Partner) -> None:
    newer = from_gushi.record(OriginGroupChanged(group=_origin(2)))
    older = from_gushi.record(OriginGroupChanged(group=_origin(1)))

    assert await chaoyang.applier.handle_batch([newer, older]) == ["applied", "stale"]

    stored = chaoyang.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica.origin is not None
    assert stored.replica.origin.version == 2
    assert [e.data.group.version for e in chaoyang.announced()] == [2]


async def test_versions_in_order_across_batches_each_apply(
    chaoyang: Node, from_gushi: Partner
) -> None:
    for version in (1, 2, 3):
        record = from_gushi.record(OriginGroupChanged(group=_origin(version)))
        assert await chaoyang.applier.handle(record) == "applied"
    assert [e.data.group.version for e in chaoyang.announced()] == [1, 2, 3]
    assert {k[2] for k in chaoyang.tables.history} == {1, 2, 3}


async def test_a_version_far_ahead_is_refused_and_the_rest_of_the_batch_applies(
    chaoyang: Node, from_gushi: Partner
) -> None:
    far = from_gushi.record(OriginGroupChanged(group=_origin(MAX_VERSION_AHEAD + 2)))
    next_one = from_gushi.record(OriginGroupChanged(group=_origin(1)))

    assert await chaoyang.applier.handle_batch([far, next_one]) == ["dead_letter", "applied"]

    # the fast path failed whole and rolled back; the careful one committed
    assert (chaoyang.transactions.rolled_back, chaoyang.transactions.committed) == (1, 1)
    [reason] = chaoyang.dead_letters()
    assert f"more than {MAX_VERSION_AHEAD} beyond" in reason
    stored = chaoyang.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica.origin == _origin(1)
    assert [e.data.group.version for e in chaoyang.announced()] == [1]
    outcomes = {r.pairseq: r.outcome for r in chaoyang.tables.inbox.values()}
    assert outcomes == {1: "dead_letter", 2: "applied"}
    [dlq] = [r for r in chaoyang.tables.outbox if r.topic == TOPICS.dead_letter(CHAOYANG, "sync")]
    assert json.loads(dlq.value)["offset"] == far.offset
    assert {(GUSHI, 0, 1), (GUSHI, 0, 2)} <= set(chaoyang.tables.link_received)


async def test_a_reused_version_with_other_content_is_stale_unless_a_repair_copy(
    chaoyang: Node, from_gushi: Partner
) -> None:
    first = _origin(1)
    other = _origin(1, changed_by="secretary:someone-else")
    outcome = await chaoyang.applier.handle(from_gushi.record(OriginGroupChanged(group=first)))
    assert outcome == "applied"

    reused = from_gushi.record(OriginGroupChanged(group=other))
    assert await chaoyang.applier.handle(reused) == "stale"
    stored = chaoyang.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica.origin == first

    repair = from_gushi.record(OriginGroupChanged(group=other, repair=True))
    assert await chaoyang.applier.handle(repair) == "applied"
    stored = chaoyang.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica.origin == other
    assert stored.set_by == (0, 3)
    assert len(chaoyang.announced()) == 2


async def test_an_unknown_type_is_skipped_and_malformed_bytes_dead_lettered_and_others_go_on(
    chaoyang: Node, from_gushi: Partner
) -> None:
    future = json.loads(from_gushi.record(OriginGroupChanged(group=_origin())).value)
    future["type"] = "yixian.movement.something_new.v1"
    unknown = from_gushi.raw(json.dumps(future).encode())
    malformed = from_gushi.raw(b"\xff not an event")
    invalid = from_gushi.raw(b'{"type": "yixian.movement.origin_group.v1", "id": 3}')
    applied = from_gushi.record(OriginGroupChanged(group=_origin()))

    outcomes = await chaoyang.applier.handle_batch([unknown, malformed, invalid, applied])

    assert outcomes == ["skipped_unknown_type", "dead_letter", "dead_letter", "applied"]
    assert len(chaoyang.dead_letters()) == 2
    assert chaoyang.dead_letters()[0].startswith("not JSON")
    skipped = chaoyang.tables.inbox[(GUSHI, UUID(future["id"]))]
    assert (skipped.outcome, skipped.event_type) == ("skipped_unknown_type", future["type"])
    # the unknown event's number arrived: it is never asked for again
    assert (GUSHI, 0, future["pairseq"]) in chaoyang.tables.link_received
    assert chaoyang.tables.group(MOVEMENT) is not None


async def test_a_record_on_someone_elses_pair_topic_is_dead_lettered(chaoyang: Node) -> None:
    elsewhere = Partner(GUSHI, CHANGPING).record(OriginGroupChanged(group=_origin()))
    assert await chaoyang.applier.handle(elsewhere) == "dead_letter"
    assert chaoyang.dead_letters() == [f"{elsewhere.topic} is addressed to {CHANGPING}"]
    assert chaoyang.tables.movements == {}


# -- who owns what ----------------------------------------------------------------------------


async def test_a_partner_writing_a_group_it_does_not_own_is_refused(
    chaoyang: Node, from_gushi: Partner
) -> None:
    from_changping = Partner(CHANGPING, CHAOYANG)
    outcome = await chaoyang.applier.handle(from_gushi.record(OriginGroupChanged(group=_origin())))
    assert outcome == "applied"

    # Changping claims the origin group of Gushi's movement
    hijack = _origin(5, origin=CHANGPING)
    outcome = await chaoyang.applier.handle(from_changping.record(OriginGroupChanged(group=hijack)))
    assert outcome == "dead_letter"
    # Gushi writes the host group, Chaoyang's
    outcome = await chaoyang.applier.handle(
        from_gushi.record(HostGroupChanged(group=host_group(2)))
    )
    assert outcome == "dead_letter"

    first, second = chaoyang.dead_letters()
    assert f"belongs to origin {GUSHI}" in first
    assert "only the host writes the host group" in second
    stored = chaoyang.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica == type(stored.replica)(_origin(), None)
    assert len(chaoyang.announced()) == 1
    refused = [r for r in chaoyang.tables.inbox.values() if r.outcome == "dead_letter"]
    assert {r.source for r in refused} == {CHANGPING, GUSHI}


async def test_a_forged_source_is_dead_lettered(chaoyang: Node) -> None:
    """An event that says it is from Changping, on Gushi's pair topic."""
    from_gushi = Partner(GUSHI, CHAOYANG)
    forged = Partner(CHANGPING, CHAOYANG).record(OriginGroupChanged(group=_origin()))
    record = from_gushi.raw(forged.value)
    assert await chaoyang.applier.handle(record) == "dead_letter"
    assert chaoyang.dead_letters()[0].startswith("forged source")
    assert chaoyang.tables.movements == {}


# -- the host's side --------------------------------------------------------------------------


async def test_the_hosts_group_applies_at_the_origin(gushi: Node, from_chaoyang: Partner) -> None:
    gushi.owns(_origin())
    checked_in = host_group(1)

    outcome = await gushi.applier.handle(from_chaoyang.record(HostGroupChanged(group=checked_in)))
    assert outcome == "applied"

    stored = gushi.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica == type(stored.replica)(_origin(), checked_in)
    [announced] = gushi.announced()
    assert isinstance(announced.data.group, HostGroup)


async def test_participations_are_recorded_once(gushi: Node, from_chaoyang: Partner) -> None:
    gushi.owns(_origin())
    attended = _participation()
    first = from_chaoyang.record(attended)
    again = from_chaoyang.record(attended)  # the same attendance in another event

    assert await gushi.applier.handle_batch([first, again, first]) == [
        "applied",
        "stale",
        "duplicate",
    ]

    [row] = gushi.tables.participations.values()
    assert row["participation_id"] == attended.participation_id
    assert row["kind"] == ActivityKind.THEME_DAY.value
    assert len(gushi.announced()) == 1


async def test_a_participation_for_a_movement_not_this_nodes_is_refused(
    gushi: Node, from_chaoyang: Partner
) -> None:
    assert await gushi.applier.handle(from_chaoyang.record(_participation())) == "dead_letter"
    assert gushi.tables.participations == {}
    assert "is not this node's" in gushi.dead_letters()[0]


# -- retries ----------------------------------------------------------------------------------


async def test_a_retried_dead_letter_applies_once_its_cause_is_fixed(
    gushi: Node, from_chaoyang: Partner
) -> None:
    early = from_chaoyang.record(HostGroupChanged(group=host_group(1)))
    assert await gushi.applier.handle(early) == "dead_letter"
    [dead_letter_id] = gushi.tables.dead_letters
    assert "unknown here" in gushi.dead_letters()[0]

    gushi.owns(_origin())  # the origin's registry had not committed it yet
    assert await gushi.applier.retry_dead_letter(dead_letter_id) == "applied"

    dead = gushi.tables.dead_letters[dead_letter_id]
    assert (dead.retry_outcome, dead.retried_at) == ("applied", NOW)
    [inbox] = gushi.tables.inbox.values()
    assert inbox.outcome == "applied"
    stored = gushi.tables.group(MOVEMENT)
    assert stored is not None
    assert stored.replica.host == host_group(1)
    assert await gushi.applier.retry_dead_letter(dead_letter_id) == "duplicate"
    assert await gushi.applier.retry_dead_letter(dead_letter_id + 1) == "unknown"


async def test_a_retry_refused_again_keeps_the_dead_letter(
    gushi: Node, from_chaoyang: Partner
) -> None:
    outcome = await gushi.applier.handle(from_chaoyang.record(HostGroupChanged(group=host_group())))
    assert outcome == "dead_letter"
    [dead_letter_id] = gushi.tables.dead_letters
    assert await gushi.applier.retry_dead_letter(dead_letter_id) == "dead_letter"
    assert list(gushi.tables.dead_letters) == [dead_letter_id]
    assert gushi.tables.dead_letters[dead_letter_id].retry_outcome == "dead_letter"


async def test_a_lost_database_rolls_the_batch_back_and_raises(
    chaoyang: Node, from_gushi: Partner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost(self: FakeStore, event: Any) -> None:
        raise DatabaseLost("connection reset")

    monkeypatch.setattr(FakeStore, "publish_local", lost)
    records = [from_gushi.record(OriginGroupChanged(group=_origin(v))) for v in (1, 2)]

    with pytest.raises(DatabaseLost):
        await chaoyang.applier.handle_batch(records)

    # never dead-lettered, never applied the careful way: the batch comes again
    assert (chaoyang.transactions.rolled_back, chaoyang.transactions.committed) == (1, 0)
    assert chaoyang.tables.inbox == {}
    assert chaoyang.tables.movements == {}
    assert chaoyang.tables.dead_letters == {}

    monkeypatch.undo()
    assert await chaoyang.applier.handle_batch(records) == ["applied", "applied"]


# -- the link ---------------------------------------------------------------------------------


async def test_a_heartbeat_says_what_the_partner_sent_and_one_claiming_too_much_is_refused(
    chaoyang: Node, from_gushi: Partner
) -> None:
    group = from_gushi.record(OriginGroupChanged(group=_origin()))
    beat = from_gushi.record(  # 2..5 are on the way
        LinkHeartbeat(source=GUSHI, destination=CHAOYANG, last_sequence=5, sent_at=AT), seq=6
    )
    assert await chaoyang.applier.handle_batch([group, beat]) == ["applied", "link"]
    assert chaoyang.tables.links[GUSHI].partner_sent == 5

    boast = from_gushi.record(
        LinkHeartbeat(source=GUSHI, destination=CHAOYANG, last_sequence=50, sent_at=AT), seq=7
    )
    assert await chaoyang.applier.handle(boast) == "dead_letter"
    assert chaoyang.tables.links[GUSHI].partner_sent == 5
    assert "heartbeat claims 50" in chaoyang.dead_letters()[0]


async def test_a_number_far_beyond_reach_is_refused(chaoyang: Node, from_gushi: Partner) -> None:
    policy = LinkPolicy()
    far = from_gushi.record(OriginGroupChanged(group=_origin()), seq=policy.max_ahead + 10)
    assert await chaoyang.applier.handle(far) == "dead_letter"
    assert "beyond reach" in chaoyang.dead_letters()[0]
    assert chaoyang.tables.movements == {}
    assert chaoyang.tables.link_received == {}


async def test_a_replay_request_requeues_the_numbers_asked_for_once_an_interval(
    gushi: Node, from_chaoyang: Partner
) -> None:
    epoch = epoch_of(datetime(2026, 1, 1, tzinfo=UTC))
    async with gushi.transactions() as uow:
        for version in (1, 2, 3):
            event = make_event(OriginGroupChanged(group=_origin(version)), node=GUSHI, time=AT)
            await uow.store.publish_to(CHAOYANG, event)
    gushi.tables.publish(CHAOYANG, epoch=epoch)
    ask = ReplayRequested(
        request_id=uuid4(), from_sequence=2, to_sequence=3, epoch=epoch, reason="gap 2..3"
    )

    assert await gushi.applier.handle(from_chaoyang.record(ask)) == "link"

    rows = [r for r in gushi.tables.outbox if r.destination == CHAOYANG]
    assert [(r.pairseq, r.published) for r in rows] == [(1, True), (2, False), (3, False)]
    assert [(f, la) for _, f, la, _ in gushi.tables.replays_answered] == [(2, 3)]

    # sent again; asked again within the interval: not sent a third time
    gushi.tables.publish(CHAOYANG, epoch=epoch)
    assert await gushi.applier.handle(from_chaoyang.record(ask)) == "link"
    assert all(r.published for r in rows)
    assert not [r for r in gushi.tables.outbox if r.destination == CHAOYANG and r.event
                and isinstance(r.event.data, LinkDigest)]  # fmt: skip


async def test_a_replay_asked_in_another_epoch_is_answered_with_a_digest(
    gushi: Node, from_chaoyang: Partner
) -> None:
    gushi.owns(_origin())
    gushi.tables.pair_sequences[CHAOYANG] = (2, 7)
    ask = ReplayRequested(request_id=uuid4(), from_sequence=1, to_sequence=3, epoch=1, reason="x")

    assert await gushi.applier.handle(from_chaoyang.record(ask)) == "link"

    [digest] = [e.data for e in gushi.tables.sent_to(CHAOYANG)]
    assert isinstance(digest, LinkDigest)
    assert (digest.as_of_sequence, digest.as_of_epoch) == (7, 2)
    assert sum(b.movements for b in digest.buckets) == 1
    assert gushi.tables.links[CHAOYANG].last_digest_sent_at == NOW


async def test_a_matching_digest_settles_the_numbers_the_link_misses(
    chaoyang: Node, from_gushi: Partner
) -> None:
    outcome = await chaoyang.applier.handle(
        from_gushi.record(OriginGroupChanged(group=_origin()), seq=1)
    )
    assert outcome == "applied"
    async with chaoyang.transactions() as uow:
        mine = await uow.store.entries(GUSHI, 16)
    digest = LinkDigest(
        digest_id=uuid4(),
        bucket_count=16,
        buckets=tuple(buckets(mine, 16, content=True).values()),
        as_of_sequence=4,  # 2..4 lost on the way
        computed_at=AT,
        content=True,
    )

    assert await chaoyang.applier.handle(from_gushi.record(digest, seq=5)) == "link"

    assert chaoyang.tables.links[GUSHI].contiguous >= 4
    assert chaoyang.tables.sent_to(GUSHI) == []  # nothing differs, nothing to repair


async def test_a_differing_digest_sends_the_entries_of_the_differing_buckets(
    chaoyang: Node, from_gushi: Partner
) -> None:
    outcome = await chaoyang.applier.handle(from_gushi.record(OriginGroupChanged(group=_origin())))
    assert outcome == "applied"
    digest = LinkDigest(
        digest_id=uuid4(), bucket_count=16, buckets=(), as_of_sequence=1, computed_at=AT,
        content=True,
    )  # fmt: skip

    assert await chaoyang.applier.handle(from_gushi.record(digest)) == "link"

    [entries] = [e.data for e in chaoyang.tables.sent_to(GUSHI)]
    [entry] = entries.entries
    assert (entry.movement_id, entry.origin_version, entry.host_version) == (MOVEMENT, 1, 0)
    assert len(entry.origin_hash or "") == 64
    assert entry.host_hash is None


async def test_a_newer_link_epoch_starts_the_numbering_afresh(
    chaoyang: Node, from_gushi: Partner
) -> None:
    for version in (1, 2, 3):
        await chaoyang.applier.handle(from_gushi.record(OriginGroupChanged(group=_origin(version))))
    restored = Partner(GUSHI, CHAOYANG, epoch=epoch_of(datetime(2026, 2, 1, tzinfo=UTC)))
    restored.offset = from_gushi.offset

    outcome = await chaoyang.applier.handle(restored.record(OriginGroupChanged(group=_origin(4))))
    assert outcome == "applied"

    link = chaoyang.tables.links[GUSHI]
    assert (link.epoch, link.older_highest) == (restored.epoch, 3)
    assert {k for k in chaoyang.tables.link_received if k[0] == GUSHI} == {
        (GUSHI, restored.epoch, 1)
    }


# -- what sync itself sends -----------------------------------------------------------------


async def test_what_the_applier_sends_is_keyed_by_its_movement_or_by_link(
    chaoyang: Node, gushi: Node, from_gushi: Partner, from_chaoyang: Partner
) -> None:
    """The keys the outbox gives (``record_key``) to what sync produces: a partner's group
    or attendance announced on the local topic by the movement (its ``correlationid``),
    the link's own answers by ``link`` (ADR 4)."""
    await chaoyang.applier.handle(from_gushi.record(OriginGroupChanged(group=_origin())))
    digest = LinkDigest(
        digest_id=uuid4(), bucket_count=16, buckets=(), as_of_sequence=1, computed_at=AT,
        content=True,
    )  # fmt: skip
    await chaoyang.applier.handle(from_gushi.record(digest))
    gushi.owns(_origin())
    await gushi.applier.handle_batch(
        [
            from_chaoyang.record(HostGroupChanged(group=host_group())),
            from_chaoyang.record(_participation()),
        ]
    )
    sent = [row.event for node in (chaoyang, gushi) for row in node.tables.outbox if row.event]
    assert sorted((e.type, record_key(e)) for e in sent) == [
        ("yixian.link.digest_entries.v1", LINK_KEY),
        ("yixian.movement.host_group.v1", str(MOVEMENT).encode()),
        ("yixian.movement.origin_group.v1", str(MOVEMENT).encode()),
        ("yixian.movement.participation_recorded.v1", str(MOVEMENT).encode()),
    ]
    assert all(e.correlationid == MOVEMENT for e in sent if not e.type.startswith("yixian.link"))
