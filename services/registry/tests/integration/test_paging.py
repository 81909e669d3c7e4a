"""Lists a node may hold by the hundred thousand come a page at a time: members away and
visiting (`limit`, `after` a movement id, `name`), everyone present (`after` a member id)
and the audit log (`before` a row id)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from yixian.contracts import OriginGroup

from .conftest import Node, outflow

pytestmark = pytest.mark.integration


def _ids(items: list[dict[str, Any]], key: str = "movement_id") -> list[str]:
    return [item[key] for item in items]


async def test_members_away_and_visiting_come_a_page_at_a_time(gushi: Node, chaoyang: Node) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    registered = []
    for name in ("张建国", "李明", "张伟", "王芳", "张磊"):
        member = await gushi.member(branch, name)
        registered.append(await gushi.post("/v1/movements", outflow(member), expect=201))
    everyone = await gushi.get("/v1/members/away")
    assert _ids(everyone) == [m["movement_id"] for m in registered]  # oldest first

    first = await gushi.get("/v1/members/away?limit=2")
    second = await gushi.get(f"/v1/members/away?limit=2&after={first[-1]['movement_id']}")
    third = await gushi.get(f"/v1/members/away?limit=2&after={second[-1]['movement_id']}")
    assert _ids(first) + _ids(second) + _ids(third) == _ids(everyone)
    assert len(third) == 1

    named = await gushi.get("/v1/members/away?name=张")
    assert [m["origin_group"]["member"]["name"] for m in named] == ["张建国", "张伟", "张磊"]
    page = await gushi.get(f"/v1/members/away?name=张&limit=1&after={named[0]['movement_id']}")
    assert _ids(page) == [named[1]["movement_id"]]

    for movement in registered:  # Chaoyang receives them as sync would
        await chaoyang.receive_origin_group(OriginGroup.model_validate(movement["origin_group"]))
    visiting = await chaoyang.get("/v1/members/visiting?limit=3")
    rest = await chaoyang.get(f"/v1/members/visiting?after={visiting[-1]['movement_id']}")
    assert sorted(_ids(visiting) + _ids(rest)) == sorted(_ids(everyone))
    assert len(visiting) == 3
    assert len(rest) == 2

    bad = await gushi.call("GET", "/v1/members/away?limit=0")
    assert bad.status_code == 422
    assert bad.json()["field"] == "limit"
    bad = await gushi.call("GET", "/v1/members/away?after=not-an-id")
    assert bad.status_code == 422
    assert bad.json()["field"] == "after"


async def test_present_and_audit_come_a_page_at_a_time(gushi: Node) -> None:
    branch = await gushi.org("城关镇党支部")
    for name in ("甲", "乙", "丙", "丁"):
        await gushi.member(branch, name)
    everyone = await gushi.get(f"/v1/organizations/{branch}/present")
    first = await gushi.get(f"/v1/organizations/{branch}/present?limit=3")
    rest = await gushi.get(
        f"/v1/organizations/{branch}/present?limit=3&after={first[-1]['member_id']}"
    )
    assert _ids(first, "member_id") + _ids(rest, "member_id") == _ids(everyone, "member_id")
    assert len(rest) == 1

    log = await gushi.get("/v1/audit")
    assert all(isinstance(row["id"], int) for row in log)
    page = await gushi.get("/v1/audit?limit=2")
    following = await gushi.get(f"/v1/audit?limit=2&before={page[-1]['id']}")
    assert _ids(page, "id") + _ids(following, "id") == _ids(log[:4], "id")


async def test_a_page_starts_only_after_what_the_caller_may_see(gushi: Node) -> None:
    mine, theirs = await gushi.org("城关镇党支部"), await gushi.org("陈集镇第一党支部")
    secretary = await gushi.key("chengguan-secretary", "secretary", mine)
    own = await gushi.post("/v1/movements", outflow(await gushi.member(mine, "甲")), expect=201)
    other = await gushi.post("/v1/movements", outflow(await gushi.member(theirs, "乙")), expect=201)
    page = await gushi.get(f"/v1/members/away?after={own['movement_id']}", secretary)
    assert page == []
    for path in (f"/v1/members/away?after={other['movement_id']}",
                 f"/v1/members/visiting?after={other['movement_id']}",
                 f"/v1/members/away?after={uuid4()}"):  # fmt: skip
        hidden = await gushi.call("GET", path, secretary)  # another branch's: no ordering oracle
        assert hidden.status_code == 422, path
        assert hidden.json()["field"] == "after"

    stranger = await gushi.member(theirs, "丙")
    present = await gushi.call(
        "GET", f"/v1/organizations/{mine}/present?after={stranger}", secretary
    )
    assert present.status_code == 422
    assert present.json()["field"] == "after"
    elsewhere = await gushi.call("GET", f"/v1/organizations/{mine}/present?after={stranger}")
    assert elsewhere.status_code == 422  # the operator sees 丙, but not in this area's list
    home = str(await gushi.member(mine, "丁"))  # at home, so present (甲 is away)
    listed = await gushi.get(f"/v1/organizations/{mine}/present", secretary)
    assert _ids(listed, "member_id") == [home]
    assert await gushi.get(f"/v1/organizations/{mine}/present?after={home}", secretary) == []

    for before in ("9223372036854775808", "99999999999999999999"):
        huge = await gushi.call("GET", f"/v1/audit?before={before}")
        assert huge.status_code == 422
        assert huge.json()["field"] == "before"
    assert (await gushi.call("GET", "/v1/audit?before=9223372036854775807")).status_code == 200
