"""The rebuild's set-wise replay (``service_layer.replay``) against the applier, on nodes
held in memory: the same pair topic applied live, record by record, and replayed in chunks
— into an empty node, and over the replicas live apply left (their groups cleared as the
replay goes) — leaves the same rows in every table sync writes, and each record the same
outcome. (Live apply in batches leaves the same but for the link's bookkeeping of an epoch
change, which a batch reads once.) The topics mix what a partner's link carries: versions out of order, the same
event twice, repair copies, attendances, heartbeats, a new link epoch, and poison records
(forged, refused by the rules, far ahead, not JSON, of an unknown type)."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import (
    HostGroupChanged,
    LinkHeartbeat,
    OriginGroupChanged,
    ParticipationRecorded,
)
from yixian.contracts.examples import AT, CHAOYANG_BRANCH, host_group, origin_group
from yixian.contracts.movement import ActivityKind
from yixian.sync.domain.apply import MAX_VERSION_AHEAD
from yixian.sync.domain.link import epoch_of
from yixian.sync.service_layer.replay import Forgotten, Replay
from yixian.sync.service_layer.repositories import Inbound

from .fakes import FakeStore, InboxRow, MovementRow, NodeTables
from .test_applier import CHANGPING, CHAOYANG, GUSHI, NOW, Node, Partner

MOVEMENTS = 8


def _origin(movement_id: UUID, version: int, *, origin: str = GUSHI) -> OriginGroupChanged:
    doc = origin_group(version).model_dump() | {"movement_id": movement_id, "origin": origin}
    doc["member"] = doc["member"] | {"member_id": movement_id}
    return OriginGroupChanged.model_validate({"group": doc})


def _host(movement_id: UUID, version: int, *, repair: bool = False) -> HostGroupChanged:
    doc = host_group(version).model_dump() | {"movement_id": movement_id}
    return HostGroupChanged.model_validate({"group": doc, "repair": repair or None})


def _attended(movement_id: UUID, participation_id: UUID) -> ParticipationRecorded:
    return ParticipationRecorded(
        participation_id=participation_id, movement_id=movement_id, host=CHAOYANG,
        host_org=CHAOYANG_BRANCH, activity_id=None, kind=ActivityKind.THEME_DAY,
        title="主题党日", attended_at=AT, recorded_at=AT, recorded_by="secretary:chaoyang-3",
    )  # fmt: skip


POISON = 5
"""Kinds of ``_poison``."""


def _poison(partner: Partner, kind: int, rng: random.Random, movements: list[UUID]) -> None:
    """One record no node may apply as it is, of ``kind``."""
    if kind == 0:
        partner.raw(b"{not json")
    elif kind == 1:
        partner.raw(b'{"type": "yixian.movement.of_a_later_release.v1", "id": "%s",'
                    b' "pairseq": %d}' % (str(uuid4()).encode(), partner.seq + 1))  # fmt: skip
        partner.seq += 1
    elif kind == 2 and partner.code == GUSHI:  # an origin group naming another origin
        partner.record(_origin(rng.choice(movements), 1, origin=CHANGPING))
    elif kind == 2:  # a host group of a movement the origin does not know
        partner.record(_host(uuid4(), 1))
    elif kind == 3 and partner.code == GUSHI:
        partner.record(_origin(rng.choice(movements), MAX_VERSION_AHEAD + 5))
    else:
        partner.record(LinkHeartbeat(source=partner.code, destination=partner.node,
                                     last_sequence=partner.seq, sent_at=AT))  # fmt: skip


def _topic(partner: Partner, rng: random.Random, movements: list[UUID]) -> list[Inbound]:
    """What ``partner`` sends over a while: every movement's groups, several versions each,
    in a shuffled order, some sent twice, some as repair copies, attendances (from a host),
    poison here and there, and a new link epoch half way."""
    events: list[Any] = []
    for movement_id in movements:
        top = rng.randint(1, 4)
        for version in rng.sample(range(1, top + 1), top):
            if partner.code == GUSHI:
                events.append(_origin(movement_id, version))
            else:
                events.append(_host(movement_id, version, repair=rng.random() < 0.15))
        if partner.code == CHAOYANG:
            for _ in range(rng.randint(0, 2)):
                events.append(_attended(movement_id, uuid4()))
    rng.shuffle(events)
    if partner.code == CHAOYANG:  # the host's groups follow the origin's registration
        events.sort(key=lambda e: not isinstance(e, HostGroupChanged))
    poison = {rng.randrange(len(events)): kind for kind in range(POISON)}
    for index, payload in enumerate(events):
        if index == len(events) // 2:
            partner.epoch, partner.seq = epoch_of(NOW) - 10, 0
        record = partner.record(payload)
        if index == len(events) // 3 or rng.random() < 0.1:
            partner.sent.append(record)  # delivered twice
        if index in poison:
            _poison(partner, poison[index], rng, movements)
    return partner.sent


def _rows(tables: NodeTables, *, links: bool = True) -> dict[str, Any]:
    """Every row sync writes, as comparable values (no time of writing, no serial id);
    ``links``: with the link's bookkeeping."""
    rows = {
        "movements": {k: asdict(v) for k, v in tables.movements.items()},
        "history": tables.history,
        "participations": tables.participations,
        "inbox": {k: asdict(v) for k, v in tables.inbox.items()},
        "link_received": set(tables.link_received),
        "links": {
            k: (v.epoch, v.older_highest, v.contiguous, v.partner_sent)
            for k, v in tables.links.items()
        },
        "dead_letters": sorted(
            (d.record.offset, d.reason, str(d.errors)) for d in tables.dead_letters.values()
        ),
    }
    if not links:
        del rows["link_received"], rows["links"]
    return rows


def _owns(node: Node, movements: list[UUID]) -> None:
    """Gushi is the origin of the movements Chaoyang's host groups are about."""
    for movement_id in movements:
        group = _origin(movement_id, 1).group
        node.tables.movements[movement_id] = MovementRow(
            movement_id, GUSHI, CHAOYANG, movement_id, 1, "registered",
            group.model_dump(mode="json"), group.origin_org.org_id,
        )  # fmt: skip


def _clear_partner_data(tables: NodeTables, partner: str) -> None:
    """What ``rebuild.clear_partner_data`` deletes (the groups and the inbox rows are the
    replay's to forget)."""
    for key in [k for k in tables.link_received if k[0] == partner]:
        del tables.link_received[key]
    received = {
        m for m, row in tables.movements.items() if (row.origin, row.host) == (tables.node, partner)
    }
    for key in [k for k, p in tables.participations.items() if p["movement_id"] in received]:
        del tables.participations[key]
    link = tables.links.get(partner)
    if link is not None:
        link.epoch = link.contiguous = link.partner_sent = 0
        link.missing_since = None


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("node_code", [CHAOYANG, GUSHI])
async def test_a_replay_leaves_the_rows_live_apply_leaves(seed: int, node_code: str) -> None:
    rng = random.Random(seed)
    movements = [uuid4() for _ in range(MOVEMENTS)]
    partner = Partner(GUSHI, CHAOYANG) if node_code == CHAOYANG else Partner(CHAOYANG, GUSHI)
    records = _topic(partner, rng, movements)

    live, batched, fresh = (Node.of(node_code), Node.of(node_code),
                            Node.of(node_code, rebuilding=True))  # fmt: skip
    if node_code == GUSHI:
        for node in (live, batched, fresh):
            _owns(node, movements)
    live_outcomes = [await live.applier.handle(record) for record in records]
    batched_outcomes: list[str] = []
    start = 0
    while start < len(records):  # consumer batches of any size
        size = rng.randint(1, 15)
        batched_outcomes += await batched.applier.handle_batch(records[start : start + size])
        start += size
    # batches change only the link's bookkeeping of an epoch change: the older epoch's
    # highest number and arrivals, read once a batch
    assert batched_outcomes == live_outcomes
    assert _rows(batched.tables, links=False) == _rows(live.tables, links=False)

    replay = Replay(fresh.applier)
    replayed: list[str] = []
    for start in range(0, len(records), 17):
        replayed += await replay.apply(records[start : start + 17])
    await replay.finish()

    assert replayed == live_outcomes
    assert {"applied", "stale", "duplicate", "dead_letter"} <= set(live_outcomes)
    assert _rows(fresh.tables) == _rows(live.tables)
    assert fresh.announced() == []

    # a rebuild over what live apply left: cleared as the replay goes, the same rows again
    again = Node.of(node_code, rebuilding=True)
    again.tables.restore(live.tables.snapshot())
    for row in again.tables.outbox:
        row.published = True
    stray = uuid4()  # an event the topic no longer holds (retention)
    again.tables.inbox[(partner.code, stray)] = InboxRow(
        partner.code, stray, "yixian.link.heartbeat.v1", records[0].topic, 0, 0, 1, "link"
    )
    _clear_partner_data(again.tables, partner.code)
    async with again.transactions() as uow:
        forgotten = Forgotten.held(await uow.store.partner_groups_held(partner.code))
    assert forgotten.groups
    replay = Replay(again.applier, forgotten={partner.code: forgotten})
    assert await replay.apply(records) == live_outcomes
    await replay.finish()
    assert forgotten.groups == {}
    assert _rows(again.tables) == _rows(live.tables)


async def test_a_replay_takes_an_applier_that_is_rebuilding() -> None:
    with pytest.raises(ValueError, match="rebuilding"):
        Replay(Node.of(CHAOYANG).applier)


@pytest.mark.parametrize("interleaved", [False, True])
async def test_records_of_an_older_epoch_after_the_newer_are_not_read_again_each(
    monkeypatch: pytest.MonkeyPatch, interleaved: bool
) -> None:
    """A partition read after another whose records moved the link to a new epoch: each of
    its older records is the applier's. The rest of the run is not read again after each
    (that made a 5,000-record chunk read 12 million rows), the applier takes them in one
    batch, and the outcomes and rows are live apply's, record by record."""
    movements = [uuid4() for _ in range(80)]
    partner = Partner(GUSHI, CHAOYANG)
    older = [partner.record(_origin(m, 1)) for m in movements]
    partner.epoch, partner.seq = epoch_of(NOW) - 10, 0
    newer = [partner.record(_origin(m, 2)) for m in movements]
    records = newer[:10] + older + newer[10:]
    if interleaved:  # two partitions read a record of each in turn
        records = newer[:10] + [
            r for pair in zip(older, newer[10:] + newer[:10], strict=True) for r in pair
        ]
        records = records[: len(older) + len(newer)]

    live, fresh = Node.of(CHAOYANG), Node.of(CHAOYANG, rebuilding=True)
    live_outcomes = [await live.applier.handle(record) for record in records]
    read: list[int] = []
    copies = FakeStore.partner_copies

    async def counted(store: FakeStore, partner: str, movement_ids: set[UUID]) -> Any:
        read.append(len(movement_ids))
        return await copies(store, partner, movement_ids)

    monkeypatch.setattr(FakeStore, "partner_copies", counted)
    batches: list[int] = []
    handle_batch = fresh.applier.handle_batch

    async def batch(records: list[Inbound]) -> list[str]:
        batches.append(len(records))
        return await handle_batch(records)

    monkeypatch.setattr(fresh.applier, "handle_batch", batch)
    replay = Replay(fresh.applier)
    assert await replay.apply(records) == live_outcomes
    await replay.finish()

    assert _rows(fresh.tables) == _rows(live.tables)
    assert sum(read) <= 3 * len(records)  # each older record read again: 80 × ~80 / 2
    if not interleaved:  # the new epoch's first record, then the stragglers in one batch
        assert batches == [1, len(older)]
