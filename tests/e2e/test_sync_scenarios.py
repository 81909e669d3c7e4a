"""Brief scenarios 1, 2, 5 and 6 on live nodes: both replicas converge."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory

pytestmark = pytest.mark.e2e

GUSHI, CHAOYANG, PUTIAN, CHANGPING = "411525", "110105", "350300", "110114"


def outflow(member: UUID, host: str) -> dict[str, Any]:
    return {
        "member_id": str(member),
        "destination": {"jurisdiction": host, "place": "北京"},
        "period": {"departed_on": "2026-02-20"},
        "contact": {"phone": "+86 138 0000 0000"},
        "reason": {"kind": "business", "text": "经商"},
    }


async def converged(a: LocalNode, b: LocalNode, movement_id: str) -> bool:
    one, two = await a.replica(movement_id), await b.replica(movement_id)
    return one == two and one[0] is not None


async def state_at(node: LocalNode, movement_id: str) -> str:
    return str((await node.get(f"/v1/movements/{movement_id}"))["state"])


async def test_scenario_1_outflow_check_in_participation_return(network: NetworkFactory) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.member(branch, "张建国")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]

    async def expected_at_host() -> bool:
        return any(v["movement_id"] == movement for v in await chaoyang.get("/v1/members/visiting"))

    await eventually(expected_at_host, what="Chaoyang sees M as expected")
    assert await state_at(chaoyang, movement) == "awaiting_check_in"

    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200)

    async def active_at_origin() -> bool:
        return await state_at(gushi, movement) == "active"

    await eventually(active_at_origin, what="Gushi sees the check-in")
    for n in range(3):
        body = {
            "participation_id": str(uuid4()),
            "kind": "theme_day",
            "title": f"主题党日 第{n + 1}次",
            "attended_at": "2026-03-01T01:00:00Z",
        }
        await chaoyang.post(f"/v1/movements/{movement}/participations", body, 201)

    async def three_at_origin() -> bool:
        return len((await gushi.get(f"/v1/movements/{movement}"))["participations"]) == 3

    await eventually(three_at_origin, what="Gushi sees three attendances")
    await gushi.post(f"/v1/movements/{movement}/return", {"returned_on": "2026-06-30"}, 200)

    async def closed_on_both() -> bool:
        return await state_at(chaoyang, movement) == "closed_returned" and await converged(
            gushi, chaoyang, movement
        )

    await eventually(closed_on_both, what="both sides closed")
    assert await state_at(gushi, movement) == "closed_returned"
    assert await chaoyang.value("SELECT count(*) FROM participations") == 3
    # each event applied once: one local announcement per applied partner event
    applied = await gushi.value("SELECT count(*) FROM inbox WHERE outcome = 'applied'")
    assert applied == 1 + 3 + 3  # check-in; per attendance a record and a new host group


async def test_scenario_2_relocation_closes_one_host_and_opens_another(
    network: NetworkFactory,
) -> None:
    nodes = await network([PUTIAN, CHANGPING, CHAOYANG])
    putian, changping, chaoyang = nodes[PUTIAN], nodes[CHANGPING], nodes[CHAOYANG]
    member = await putian.member(await putian.org("城厢区党支部"), "林志强")
    first = (await putian.post("/v1/movements", outflow(member, CHANGPING), 201))["movement_id"]

    async def at_changping() -> bool:
        return await changping.value("SELECT count(*) FROM movements") == 1

    await eventually(at_changping, what="Changping expects the member")
    second = (
        await putian.post(
            f"/v1/movements/{first}/relocate",
            {
                "destination": {"jurisdiction": CHAOYANG, "place": "朝阳区"},
                "departed_on": "2026-04-01",
            },
            201,
        )
    )["movement_id"]

    async def both_hosts_follow() -> bool:
        return (
            await converged(putian, changping, first)
            and await converged(putian, chaoyang, second)
            and await state_at(changping, first) == "closed_relocated"
        )

    await eventually(both_hosts_follow, what="Changping closes, Chaoyang opens")
    assert await state_at(chaoyang, second) == "awaiting_check_in"
    assert (await chaoyang.get(f"/v1/movements/{second}"))["origin_group"][
        "previous_movement_id"
    ] == first
    assert (
        await chaoyang.value("SELECT count(*) FROM movements WHERE movement_id = $1", UUID(first))
        == 0
    )


async def test_scenario_6_lost_contact_and_restored(network: NetworkFactory) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    member = await gushi.member(await gushi.org("支部"), "王伟")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]
    await eventually(lambda: _known(chaoyang, movement), what="host knows M")
    committee = await chaoyang.org("工委", kind="working_committee")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200)
    await chaoyang.post(f"/v1/movements/{movement}/lost-contact", {"since": "2026-02-25"}, 200)

    async def origin_told() -> bool:
        return await state_at(gushi, movement) == "lost_contact"

    await eventually(origin_told, what="origin told of lost contact")
    queue = await gushi.get("/v1/queues")
    assert any(e["movement_id"] == movement for e in queue["waiting"] + queue["to_do"])
    await chaoyang.post(f"/v1/movements/{movement}/restore-contact", None, 200)

    async def restored() -> bool:
        return await state_at(gushi, movement) == "active" and await converged(
            gushi, chaoyang, movement
        )

    await eventually(restored, what="contact restored on both sides")


async def _known(node: LocalNode, movement: str) -> bool:
    return bool(
        await node.value("SELECT count(*) FROM movements WHERE movement_id = $1", UUID(movement))
    )
