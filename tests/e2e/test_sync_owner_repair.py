"""A replica frozen, hijacked or damaged (issue #13): a huge version is refused at apply,
the owner's copy replaces a replica that differs whatever the versions, and an owner that
lost its own record takes it back from its partner's copy; a database recreated numbers
in a new link epoch, so no number names two events (ADR 16). Each case ends with both
databases' rows identical (of the movements written since, for the recreated one), and the
traffic after the hostile events flowing."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_link_hardening import _events, _view
from .test_sync_resilience import _register
from .test_sync_scenarios import CHAOYANG, GUSHI

pytestmark = pytest.mark.e2e

ROWS = (
    "SELECT movement_id, origin, host, member_id, origin_version, origin_status,"
    " origin_group, host_version, host_status, host_group FROM movements ORDER BY movement_id"
)


async def _rows(node: LocalNode) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await node.query(ROWS)]


async def _participations(node: LocalNode) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in await node.query(
            "SELECT participation_id, movement_id, host_org_id, host_org_name, activity_id,"
            " kind, title, attended_at, recorded_at, recorded_by FROM participations"
            " ORDER BY participation_id"
        )
    ]


async def _identical(a: LocalNode, b: LocalNode) -> bool:
    """Both databases hold the same rows of every movement and participation they share."""
    return await _rows(a) == await _rows(b) and await _participations(a) == await _participations(b)


async def _forge(gushi: LocalNode, topic_names: TopicNames, movement: str, **group: Any) -> UUID:
    """An origin group of ``movement`` changed as ``group`` says, sent on Gushi's pair topic
    through its relay (numbered like any other pair event), as a hostile or broken writer
    holding Gushi's principal would; the forged event's id."""
    row = (
        await gushi.query(
            "SELECT record_key, value, trace_id FROM outbox WHERE destination = $1"
            " AND event_type = 'yixian.movement.origin_group.v1' AND movement_id = $2"
            " ORDER BY id DESC LIMIT 1",
            CHAOYANG,
            UUID(movement),
        )
    )[0]
    event = json.loads(bytes(row["value"]))
    event.pop("pairseq", None)
    event["id"] = str(uuid4())
    event["data"]["group"] |= group
    await gushi.query(
        "INSERT INTO outbox (event_id, event_type, topic, destination, record_key, value,"
        " trace_id, movement_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        event["id"], event["type"], topic_names.pair(GUSHI, CHAOYANG), CHAOYANG,
        row["record_key"], json.dumps(event).encode(), row["trace_id"], UUID(movement),
    )  # fmt: skip
    return UUID(event["id"])


async def _version(node: LocalNode, movement: str, group: str = "origin") -> int:
    return int(
        await node.value(
            f"SELECT {group}_version FROM movements WHERE movement_id = $1",  # noqa: S608
            UUID(movement),
        )
        or 0
    )


async def test_a_huge_version_is_refused_and_a_reused_one_is_repaired_by_the_owner(
    network: NetworkFactory, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    frozen, hijacked, *_ = await _register(gushi, 4)
    await eventually(lambda: _identical(gushi, chaoyang), what="first convergence")

    # a version that would freeze the replica, and the owner's next version with other content
    await _forge(gushi, topic_names, frozen, version=2**31 - 1, changed_by="hostile")
    reused = await _version(gushi, hijacked) + 1
    hijack = await _forge(gushi, topic_names, hijacked, version=reused, changed_by="hostile")

    async def hijack_applied() -> bool:
        # the inbox, not the replica: the digests both nodes send at start may meet the
        # hijack and the owner's repair copy replace it before a look at the row sees it
        outcome = await chaoyang.value("SELECT outcome FROM inbox WHERE event_id = $1", hijack)
        return outcome == "applied"

    await eventually(hijack_applied, what="the reused version applied at the host")
    letters = await chaoyang.query("SELECT reason FROM dead_letters")
    assert len(letters) == 1
    assert "more than 1000 beyond" in letters[0]["reason"]

    # the owner's real changes: the frozen one goes through, the reused one is stale there
    # (unless a digest has already put the owner's copy back)
    for movement in (frozen, hijacked):
        await gushi.post(f"/v1/movements/{movement}/details", {"contact": {"phone": "137"}}, 200)
    later = await _register(gushi, 2)  # the other traffic flows on
    assert await _version(gushi, hijacked) == reused

    async def later_arrived() -> bool:
        return all([await _version(chaoyang, m) for m in later]) and await _version(
            chaoyang, frozen
        ) == await _version(gushi, frozen)

    await eventually(later_arrived, what="the later traffic and the real change of the first")
    # anti-entropy from the replica's side (a digest may have run already: the first is sent
    # at start): it asks for the owner's copy, which replaces its own
    await chaoyang.sync_post(f"/v1/links/{GUSHI}/anti-entropy")
    await eventually(lambda: _identical(gushi, chaoyang), what="the owner's copy back")
    assert (await chaoyang.replica(hijacked))[0]["changed_by"] != "hostile"

    # and from the owner's side, with the replica ahead of its owner this time
    await chaoyang.query(
        "UPDATE movements SET origin_version = 9999, origin_group = jsonb_set(origin_group,"
        " '{version}', '9999') WHERE movement_id = $1",
        UUID(frozen),
    )
    await gushi.sync_post(f"/v1/links/{CHAOYANG}/anti-entropy")
    await eventually(lambda: _identical(gushi, chaoyang), what="a replica ahead repaired")


async def test_an_owner_that_lost_its_row_takes_it_back_from_its_partner(
    network: NetworkFactory,
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    movement, origin_lost, third = await _register(gushi, 3)
    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")
    await eventually(lambda: _identical(gushi, chaoyang), what="the movements at the host")
    for m in (movement, origin_lost, third):
        await chaoyang.post(f"/v1/movements/{m}/check-in", {"host_org_id": str(committee)}, 200)
    for m in (movement, movement, third):
        body = {
            "participation_id": str(uuid4()),
            "kind": "theme_day",
            "title": "主题党日",
            "attended_at": "2026-03-01T01:00:00Z",
        }
        await chaoyang.post(f"/v1/movements/{m}/participations", body, 201)
    await eventually(lambda: _identical(gushi, chaoyang), what="first convergence")

    # damage: the host loses its row of one movement (and its attendances), the origin its
    # whole row of another and the attendance it received of a third
    lost_here = UUID(movement)
    await chaoyang.query("DELETE FROM participations WHERE movement_id = $1", lost_here)
    await chaoyang.query("DELETE FROM movements WHERE movement_id = $1", lost_here)
    await gushi.query("DELETE FROM participations WHERE movement_id = $1", UUID(third))
    await gushi.query("DELETE FROM movements WHERE movement_id = $1", UUID(origin_lost))
    assert not await _identical(gushi, chaoyang)

    await chaoyang.sync_post(f"/v1/links/{GUSHI}/anti-entropy")
    await eventually(lambda: _identical(gushi, chaoyang), what="both records whole again")
    restored = await chaoyang.query(
        "SELECT host_group, host_org_id FROM movements WHERE movement_id = $1", lost_here
    )
    assert restored[0]["host_org_id"] is not None
    assert len(await _participations(chaoyang)) == 3

    # and the host can act on it again; the change reaches the origin
    body = {
        "participation_id": str(uuid4()),
        "kind": "theme_day",
        "title": "主题党日 又一次",
        "attended_at": "2026-03-02T01:00:00Z",
    }
    await chaoyang.post(f"/v1/movements/{movement}/participations", body, 201)

    async def three() -> bool:
        return len(await _participations(gushi)) == 4

    await eventually(three, what="the host's new attendance at the origin")
    await eventually(lambda: _identical(gushi, chaoyang), what="identical after the change")


async def _recreate_database(node: LocalNode, stack: LocalStack) -> None:
    """The node's database dropped and created again empty, as a rebuilt host would have
    it, then ``yixian node init`` again; its topics stay on the broker as they were."""
    node.stop()
    if node.http is not None:
        await node.http.aclose()
    name = urlsplit(node.database_url).path.lstrip("/")
    conn = await asyncpg.connect(stack.config.database_dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    node.init()
    node.start()


async def test_a_recreated_database_numbers_in_a_new_epoch_and_no_number_names_two_events(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    before = await _register(gushi, 3)
    await eventually(lambda: _identical(gushi, chaoyang), what="first convergence")

    await _recreate_database(gushi, local_stack)
    after = await _register(gushi, 3)

    async def arrived() -> bool:
        return all([await _version(chaoyang, m) for m in after])

    await eventually(arrived, what="the rebuilt node's movements at the host")
    topic = topic_names.pair(GUSHI, CHAOYANG)
    events = await _events(local_stack, topic)
    named: dict[tuple[int, int], set[str]] = defaultdict(set)
    for event in events:
        named[(event.get("pairepoch", 0), event["pairseq"])].add(event["id"])
    assert all(len(ids) == 1 for ids in named.values()), "an (epoch, number) names two events"
    epochs = sorted({epoch for epoch, _ in named})
    assert len(epochs) == 2  # the first database's and the rebuilt one's
    assert (epochs[0], 1) in named  # number 1 in each epoch, naming two events apart
    assert (epochs[1], 1) in named

    async def followed() -> bool:
        view = await _view(chaoyang, GUSHI)
        return view["epoch"] == epochs[1] and view["state"] == "healthy" and not view["missing"]

    await eventually(followed, what="the host's link following the new epoch, healthy")
    assert await _rows_of(gushi, after) == await _rows_of(chaoyang, after)
    assert len(await _rows_of(chaoyang, before)) == len(before)  # the host kept the first ones


async def _rows_of(node: LocalNode, movements: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await _rows(node) if str(r[0]) in movements]
