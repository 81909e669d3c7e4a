"""Lists a node may hold by the hundred thousand come a page at a time: members away and
visiting (`limit`, `after` a movement id, `name`), everyone present (`after` a member id)
and the audit log (`before` a row id)."""

from __future__ import annotations

from typing import Any

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
