"""Secretaries look after their members on a real registry: the search by each key, never
outside the key's subtree; a member's detail with movements and changes; a contact changed
field by field, audited once however often it is sent at once; a movement's contact too.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any, cast
from uuid import UUID, uuid4

import httpx
import pytest

from yixian.registry.adapters.postgres import Members
from yixian.registry.service_layer.repositories import MemberSearch
from yixian.runtime import DbConnection

from .conftest import Node, outflow

pytestmark = pytest.mark.integration

NATIONAL_ID = "11010519491231002X"
TIMES = 20


async def audit_rows(node: Node, action: str, target: UUID) -> list[dict[str, Any]]:
    async with node.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit_log WHERE action = $1 AND target = $2 ORDER BY id",
            action,
            str(target),
        )
    return [dict(r) for r in rows]


async def patch(
    node: Node, member_id: UUID, contact: Any, key: str | None = None, **kw: Any
) -> Any:
    return await node.call(
        "PATCH", f"/v1/members/{member_id}", key, json={"contact": contact}, **kw
    )


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


async def test_search_finds_by_each_key_and_never_outside_the_subtree(gushi: Node) -> None:
    first, second = await gushi.org("陈集镇第一党支部"), await gushi.org("陈集镇第二党支部")
    zhang = await gushi.member(
        first, "Zhang Jianguo", phone="+86 138 0000 0001", national_id=NATIONAL_ID
    )
    await gushi.member(first, "李明", phone="139-0000-0002", email="li@example.cn")
    wang = await gushi.member(second, "王建国", email="wang@example.cn")
    moved = await gushi.member(first, "赵建华", phone="137 0000 0003")
    await gushi.post("/v1/movements", outflow(moved), expect=201)

    assert names(await gushi.get("/v1/members?name=JIANGUO")) == ["Zhang Jianguo"]
    assert names(await gushi.get("/v1/members?name=建")) == ["王建国", "赵建华"]
    assert names(await gushi.get("/v1/members?phone=13800000001")) == ["Zhang Jianguo"]
    assert names(await gushi.get("/v1/members?phone=139%200000%200002")) == ["李明"]
    by_id = await gushi.get(f"/v1/members?national_id={NATIONAL_ID.lower()}")
    assert [i["member_id"] for i in by_id["items"]] == [str(zhang)]
    assert not any("national" in key for key in by_id["items"][0])
    in_org = await gushi.get(f"/v1/members?org_id={second}")
    assert [i["member_id"] for i in in_org["items"]] == [str(wang)]
    away = await gushi.get("/v1/members?status=away")
    assert [(i["name"], i["status"]) for i in away["items"]] == [("赵建华", "away")]
    assert len((await gushi.get("/v1/members?status=home"))["items"]) == 3
    assert names(await gushi.get(f"/v1/members?name=建国&org_id={first}")) == []

    stranger = await gushi.key("second-secretary", "secretary", second)
    for query in ("", "name=Zhang", "phone=13800000001", f"national_id={NATIONAL_ID}"):
        page = await gushi.get(f"/v1/members?{query}", stranger)
        assert all(i["member_id"] == str(wang) for i in page["items"]), query
    assert names(await gushi.get("/v1/members", stranger)) == ["王建国"]
    refused = await gushi.call("GET", f"/v1/members?org_id={first}", stranger, expect=403)
    assert refused.json()["error"] == "forbidden"


async def test_search_pages_in_one_stable_order(gushi: Node) -> None:
    branch = await gushi.org("支部")
    for i in range(7):
        await gushi.member(branch, f"成员{6 - i}", phone=f"1370000000{i}")
    seen: list[str] = []
    query = "/v1/members?limit=3"
    while True:
        page = await gushi.get(query)
        seen += names(page)
        if page["next_cursor"] is None:
            break
        query = f"/v1/members?limit=3&cursor={page['next_cursor']}"
    assert seen == [f"成员{i}" for i in range(7)]


async def test_the_detail_lists_movements_and_changes_and_hides_other_subtrees(
    gushi: Node,
) -> None:
    first, second = await gushi.org("第一支部"), await gushi.org("第二支部")
    member = await gushi.member(first, "张建国", phone="13800000001", national_id=NATIONAL_ID)
    created = await gushi.post("/v1/movements", outflow(member), expect=201)
    await gushi.post(f"/v1/movements/{created['movement_id']}/cancel", {}, expect=200)
    again = await gushi.post("/v1/movements", outflow(member), expect=201)
    await patch(gushi, member, {"email": "zhang@example.cn"}, expect=200)

    detail = await gushi.get(f"/v1/members/{member}")
    assert detail["status"] == "away"
    assert detail["national_id_masked"] == "110105********002X"
    assert [m["movement_id"] for m in detail["movements"]] == [
        created["movement_id"], again["movement_id"],
    ]  # fmt: skip
    assert [m["state"] for m in detail["movements"]] == ["cancelled", "awaiting_check_in"]
    assert [c["action"] for c in detail["changes"]] == ["member.update_contact", "member.add"]
    assert detail["changes"][0]["detail"]["changes"] == {
        "contact.email": {"before": None, "after": "zhang@example.cn"}
    }

    stranger = await gushi.key("second-secretary", "secretary", second)
    hidden = await gushi.call("GET", f"/v1/members/{member}", stranger, expect=404)
    unknown = await gushi.call("GET", f"/v1/members/{(fake := uuid4())}", stranger, expect=404)
    assert hidden.json()["message"].replace(str(member), "?") == unknown.json()["message"].replace(
        str(fake), "?"
    )
    assert hidden.json()["field"] == unknown.json()["field"] == "member_id"
    await patch(gushi, member, {"phone": "1"}, stranger, expect=404)


async def test_a_partial_update_keeps_the_email_and_the_last_contact_stays(gushi: Node) -> None:
    branch = await gushi.org("支部")
    member = await gushi.member(branch, "张建国", phone="13800000001", email="zhang@example.cn")
    changed = (
        await patch(gushi, member, {"phone": "13900000002", "address": "北京市朝阳区"}, expect=200)
    ).json()
    assert (changed["phone"], changed["email"], changed["address"]) == (
        "13900000002", "zhang@example.cn", "北京市朝阳区",
    )  # fmt: skip
    assert changed["changed"] == ["contact.address", "contact.phone"]
    assert (await gushi.get(f"/v1/members/{member}"))["email"] == "zhang@example.cn"

    await patch(gushi, member, {"phone": None, "address": None}, expect=200)
    last = await patch(gushi, member, {"email": None}, expect=422)
    assert (last.json()["error"], last.json()["field"]) == ("invalid", "contact.email")
    assert (await gushi.get(f"/v1/members/{member}"))["email"] == "zhang@example.cn"
    merge = await gushi.call(
        "PATCH",
        f"/v1/members/{member}",
        content=json.dumps({"contact": {"phone": "13700000003"}}).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
        expect=200,
    )
    assert (merge.json()["phone"], merge.json()["email"]) == ("13700000003", "zhang@example.cn")
    refused = await audit_rows(gushi, "member.update_contact", member)
    assert [r["outcome"] for r in refused] == ["ok", "ok", "refused", "ok"]


async def test_an_auditor_reads_but_does_not_update(gushi: Node) -> None:
    branch = await gushi.org("支部")
    member = await gushi.member(branch, "张建国", phone="13800000001")
    auditor = await gushi.key("auditor", "auditor", branch)
    assert (await gushi.get(f"/v1/members/{member}", auditor))["phone"] == "13800000001"
    refused = await patch(gushi, member, {"phone": "13900000002"}, auditor, expect=403)
    assert refused.json()["error"] == "forbidden"


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_identical_updates_at_once_have_one_effect(
    gushi: Node, idempotent: bool
) -> None:
    branch = await gushi.org("支部")
    member = await gushi.member(branch, "张建国", phone="13800000001")
    headers = {"Idempotency-Key": f"k-{uuid4()}"} if idempotent else {}
    body = {"contact": {"email": "zhang@example.cn", "phone": None}}

    async def one() -> httpx.Response:
        return await gushi.call("PATCH", f"/v1/members/{member}", json=body, headers=dict(headers))

    responses = await asyncio.gather(*(one() for _ in range(TIMES)))
    assert Counter(r.status_code for r in responses) == Counter({200: TIMES})
    changed = Counter(tuple(r.json()["changed"]) for r in responses)
    if idempotent:  # every retry gets the first answer
        assert changed == Counter({("contact.email", "contact.phone"): TIMES})
    else:  # the first changed it; the others found it so
        assert changed == Counter({("contact.email", "contact.phone"): 1, (): TIMES - 1})
    (row,) = await audit_rows(gushi, "member.update_contact", member)
    assert row["detail"]["changes"] == {
        "contact.phone": {"before": "13800000001", "after": None},
        "contact.email": {"before": None, "after": "zhang@example.cn"},
    }
    if idempotent:
        other = await gushi.call(
            "PATCH",
            f"/v1/members/{member}",
            json={"contact": {"email": "other@example.cn"}},
            headers=dict(headers),
            expect=422,
        )
        assert other.json()["field"] == "Idempotency-Key"
    assert (await gushi.get(f"/v1/members/{member}"))["email"] == "zhang@example.cn"


async def test_a_movements_contact_changes_field_by_field(gushi: Node) -> None:
    member = await gushi.member(await gushi.org("支部"))
    created = await gushi.post(
        "/v1/movements",
        outflow(member, contact={"phone": "+86 138 0000 0000", "email": "zhang@example.cn"}),
        expect=201,
    )
    details = f"/v1/movements/{created['movement_id']}/details"
    body = {"contact": {"phone": "+86 139 0000 0001", "address": "北京市朝阳区"}}
    updated = await gushi.post(details, body, expect=200)
    assert updated["origin_group"]["contact"] == {
        "phone": "+86 139 0000 0001", "email": "zhang@example.cn", "address": "北京市朝阳区",
    }  # fmt: skip
    last = await gushi.call(
        "POST", details, json={"contact": {"phone": None, "email": None, "address": None}}
    )
    assert (last.status_code, last.json()["field"]) == (422, "contact.phone")


class Recorder:
    """A connection that keeps each query it is given (and runs it)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.queries: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.queries.append((sql, args))
        return await self.conn.fetch(sql, *args)


@pytest.mark.parametrize(
    ("criteria", "index"),
    [
        ({"name": "建国"}, "members_name_grams"),
        ({"phone_digits": "13800000001"}, "members_phone_digits"),
        ({"national_id_hash": "0" * 64}, "members_national_id_hash_key"),
    ],
    ids=["name", "phone", "national_id"],
)
async def test_each_search_key_can_use_its_index(
    gushi: Node, criteria: dict[str, Any], index: str
) -> None:
    """On 20,000 members of one organization, the plan of the adapter's own query uses the
    index migration 0008 (or 0001) made for the key: the condition matches the index."""
    async with gushi.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO members (member_id, org_id, name, joined_on, phone, national_id_hash)"
            " SELECT gen_random_uuid(), $1, chr(19968 + i % 5000) || chr(19968 + i * 7 % 5000),"
            " DATE '2000-07-01', '+86 138 ' || lpad(i::text, 8, '0'), md5(i::text) || md5('' || i)"
            " FROM generate_series(1, 20000) AS i",
            gushi.root_id,
        )
        await conn.execute("ANALYZE members")
        recorder = Recorder(conn)
        members = Members(cast(DbConnection, recorder))
        await members.search("/", MemberSearch(**criteria), None, 51)
        ((sql, args),) = recorder.queries
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        await conn.execute("RESET enable_seqscan")
    assert index in json.dumps(plan), plan
