"""The unregistered visitor (口袋党员, ADR 21) on live nodes: Chaoyang meets two people who
say they are Gushi's members. Gushi finds one (name and ID ending), its secretary confirms
and the outflow is registered: Chaoyang then expects the member through that movement and
never creates a member of its own (counted once). The other is answered no match at once
and stays in Chaoyang's to-do. Attacked: 20 identical claims at once (with and without one
Idempotency-Key) make one claim; bad input is a 4xx naming the field; and the national ID
is in no record of either pair topic, nor its birth-date part."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import httpx
import pytest

from yixian.contracts import TopicNames
from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.records import read_records

from .conftest import NetworkFactory
from .test_sync_scenarios import CHAOYANG, GUSHI

pytestmark = pytest.mark.e2e

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def national_id(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


ZHANG = national_id("41152519850312123")
LI = national_id("41152519920704567")


def _visitor(name: str, number: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "national_id": number, "contact": {"phone": "+86 139 0000 0002"}} | extra


async def _twenty(node: LocalNode, body: dict[str, Any], key: str | None) -> list[httpx.Response]:
    assert node.http is not None
    client = node.http
    headers = {"Idempotency-Key": key} if key else {}
    return await asyncio.gather(
        *(client.post("/v1/visitors", json=body, headers=headers) for _ in range(20))
    )


async def test_a_visitor_is_asked_of_the_origin_and_nothing_of_the_number_crosses(
    network: NetworkFactory, kafka_bootstrap: str, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, CHAOYANG])
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.post(
        "/v1/members",
        {"org_id": str(branch), "name": "张建国", "joined_on": "2008-07-01",
         "phone": "+86 138 0000 0001", "national_id": ZHANG},
        201,
    )  # fmt: skip

    # 20 identical claims at once, without and with one Idempotency-Key: one claim each
    for body, key in ((_visitor("张建国", ZHANG), None), (_visitor("李四", LI), uuid4().hex)):
        answers = await _twenty(chaoyang, body, key)
        assert sorted({r.status_code for r in answers}) in ([200, 201], [201]), answers[0].text
        assert sum(r.status_code == 201 for r in answers) == (1 if key is None else 20)
        assert len({r.json()["claim_id"] for r in answers}) == 1
    claims = {v["name"]: v for v in (await chaoyang.get("/v1/visitors"))["visitors"]}
    assert set(claims) == {"张建国", "李四"}
    assert {v["origin"] for v in claims.values()} == {GUSHI}  # from the numbers' region
    assert await chaoyang.value("SELECT count(*) FROM visitors") == 2
    zhang, li = claims["张建国"]["claim_id"], claims["李四"]["claim_id"]

    # bad input: a 4xx naming the field, nothing recorded
    bad = [
        (_visitor("王五", LI[:17] + ("0" if LI[17] != "0" else "1")), "national_id"),
        (_visitor("王五", national_id("35030019850312123")), "origin"),  # not a partner
        (_visitor("王五", LI, origin=CHAOYANG), "origin"),  # this node itself
        ({"name": "王五", "national_id": LI, "contact": {}}, "contact"),
        ({"name": "王五", "national_id": LI[:10], "contact": {"phone": "1"}}, "national_id"),
    ]
    assert chaoyang.http is not None
    for body, field in bad:
        response = await chaoyang.http.post("/v1/visitors", json=body)
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["field"] == field, response.text
    assert await chaoyang.value("SELECT count(*) FROM visitors") == 2

    # Gushi looks: one member fits 张建国 (waits for its secretary), none fits 李四
    async def looked() -> dict[str, dict[str, Any]] | None:
        found = {c["claim_id"]: c for c in (await gushi.get("/v1/visitor-claims"))["claims"]}
        looked_at = {zhang, li} <= found.keys() and all(found[c]["result"] for c in (zhang, li))
        return found if looked_at else None

    await eventually(looked, what="Gushi's look at both claims")
    found = await looked()
    assert found is not None
    assert (found[zhang]["result"], found[zhang]["member_id"]) == ("match", member["member_id"])
    assert found[li]["result"] == "no_match"
    assert found[zhang]["id_ending"] == ZHANG[-4:]

    async def li_to_do() -> bool:
        to_do = (await chaoyang.get("/v1/visitors?to_do=true"))["visitors"]
        return [(v["claim_id"], v["state"]) for v in to_do] == [(li, "no_match")]

    await eventually(li_to_do, what="the unmatched visitor in Chaoyang's to-do")

    confirmed = await gushi.post(
        f"/v1/visitor-claims/{zhang}/confirm", {"place": "北京市朝阳区"}, 201
    )
    movement = confirmed["movement_id"]
    again = await gushi.post(f"/v1/visitor-claims/{zhang}/confirm", {}, 200)
    assert again["movement_id"] == movement

    async def expected_at_host() -> bool:
        mine = {v["claim_id"]: v for v in (await chaoyang.get("/v1/visitors"))["visitors"]}
        origin_group, _ = await chaoyang.replica(movement)
        return (
            mine[zhang]["state"] == "matched"
            and mine[zhang]["movement_id"] == movement
            and origin_group is not None
        )

    await eventually(expected_at_host, what="the matched visitor expected at Chaoyang")
    visiting = await chaoyang.get("/v1/members/visiting")
    assert movement in str(visiting)
    # counted once: a member of Gushi, visiting Chaoyang; no member of Chaoyang made of it
    assert await chaoyang.value("SELECT count(*) FROM members") == 0
    assert await gushi.value("SELECT count(*) FROM members") == 1
    statistics = await gushi.get("/v1/statistics?from=2026-01-01&to=2030-12-31")
    assert statistics["members"] == 1, statistics

    # nothing of the numbers on either pair topic: not the number, not its birth-date part
    records = [
        *await read_records(kafka_bootstrap, topic_names.pair(CHAOYANG, GUSHI), expected=2),
        *await read_records(kafka_bootstrap, topic_names.pair(GUSHI, CHAOYANG), expected=3),
    ]
    types = {
        r.value.split(b'"type":"')[1].split(b'"')[0] for r in records if b'"type":"' in r.value
    }
    assert {b"yixian.visitor.claim_asked.v1", b"yixian.visitor.claim_answered.v1"} <= types
    for number in (ZHANG, LI):
        for secret in (number, number[:14], number[6:14]):
            assert not [r for r in records if secret.encode() in r.value], secret
