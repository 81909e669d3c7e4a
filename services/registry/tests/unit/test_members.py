"""Members in memory (``fakes.py``): the search and its keys, pages and subtree; a
member's detail; a contact changed field by field, audited, with one way to reach the
member kept; and the same merge on a movement's contact. No database."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.registry.domain import AlreadyExists, Invalid, MemberStatus, NotFound, Organization
from yixian.registry.entrypoints import schemas as s
from yixian.registry.service_layer import handlers, queries
from yixian.registry.service_layer.unit_of_work import Denied
from yixian.runtime.apikeys import Role

from .fakes import FakeUnitOfWork
from .test_handlers import GUSHI, Node, World, make_node

NATIONAL_ID = "11010519491231002X"


async def add(node: Node, name: str, org: Organization | None = None, **extra: Any) -> UUID:
    body = s.NewMember(
        org_id=(org or node.branch).org_id, name=name, joined_on=date(2008, 7, 1), **extra
    )
    result = await node.run(lambda uow: handlers.add_member(uow, **s.fields(body)))
    return UUID(result.body["member_id"])


async def search(node: Node, who: Any = None, **keys: Any) -> dict[str, Any]:
    found: dict[str, Any] = await node.run(lambda uow: queries.search_members(uow, **keys), who)
    return found


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


async def patch(node: Node, member_id: UUID, who: Any = None, **contact: Any) -> Any:
    body = s.MemberUpdate.model_validate({"contact": contact})
    uow = node.uow(who)
    result = await handlers.update_member_contact(uow, member_id, **s.fields(body))
    return result, uow


# -- search ----------------------------------------------------------------------------------


async def test_search_finds_by_each_key() -> None:
    node = make_node(GUSHI)
    zhang = await add(node, "Zhang Jianguo", phone="+86 138 0000 0001", national_id=NATIONAL_ID)
    await add(node, "李明", phone="+86 139 0000 0002")
    wang = await add(node, "王建国", node.other_branch, email="wang@example.cn")

    assert names(await search(node, name="jianGUO")) == ["Zhang Jianguo"]
    assert names(await search(node, name="建国")) == ["王建国"]
    assert names(await search(node, phone="13800000001")) == ["Zhang Jianguo"]
    assert names(await search(node, phone="0002")) == ["李明"]
    by_id = await search(node, national_id=NATIONAL_ID.lower())
    assert [i["member_id"] for i in by_id["items"]] == [str(zhang)]
    in_org = await search(node, org_id=node.other_branch.org_id)
    assert [i["member_id"] for i in in_org["items"]] == [str(wang)]
    assert names(await search(node, status=MemberStatus.HOME)) == [
        "Zhang Jianguo", "李明", "王建国",
    ]  # fmt: skip
    assert names(await search(node, name="建国", org_id=node.branch.org_id)) == []


async def test_a_summary_tells_nothing_of_the_national_id() -> None:
    node = make_node(GUSHI)
    await add(node, "王芳", national_id=NATIONAL_ID)
    (item,) = (await search(node, national_id=NATIONAL_ID))["items"]
    assert not any("national" in key for key in item)
    assert "002X" not in str(item)


async def test_a_bad_key_is_refused_naming_it() -> None:
    node = make_node(GUSHI)
    for keys, field in [
        ({"national_id": "11010519491231002Y"}, "national_id"),
        ({"phone": "13x"}, "phone"),
        ({"phone": "１３８００００００００"}, "phone"),  # full-width digits
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),  # ["x"]: no member id
    ]:
        with pytest.raises(Invalid) as refused:
            await search(node, **keys)
        assert refused.value.field == field, keys


async def test_the_status_follows_the_members_movement() -> None:
    world = World()
    await world.register()  # 张建国 of Gushi's first branch leaves for Chaoyang
    await add(world.gushi, "李明")
    away = await search(world.gushi, status=MemberStatus.AWAY)
    assert [(i["name"], i["status"]) for i in away["items"]] == [("张建国", "away")]
    assert names(await search(world.gushi, status=MemberStatus.HOME)) == ["李明"]
    await world.step("return")
    assert names(await search(world.gushi, status=MemberStatus.AWAY)) == []


async def test_search_pages_through_in_one_order() -> None:
    node = make_node(GUSHI)
    for name in ("赵", "钱", "孙", "李", "周", "吴", "郑"):
        await add(node, name)
    seen: list[str] = []
    cursor = None
    for _ in range(4):
        page = await search(node, limit=3, cursor=cursor)
        seen += names(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(["赵", "钱", "孙", "李", "周", "吴", "郑"])
    assert len(seen) == 7


async def test_search_never_leaves_the_subtree() -> None:
    node = make_node(GUSHI)
    await add(node, "张建国", phone="13800000001", national_id=NATIONAL_ID)
    stranger = node.key(Role.SECRETARY, node.other_branch)
    for keys in ({}, {"name": "建国"}, {"phone": "13800000001"}, {"national_id": NATIONAL_ID}):
        assert (await search(node, stranger, **keys))["items"] == [], keys
    with pytest.raises(Denied):
        await search(node, stranger, org_id=node.branch.org_id)
    auditor = node.key(Role.AUDITOR, node.branch)
    assert names(await search(node, auditor, name="建国")) == ["张建国"]


# -- detail ----------------------------------------------------------------------------------


async def test_the_detail_lists_the_movements_and_the_changes() -> None:
    world = World()
    await world.register()
    _, uow = await patch(world.gushi, world.member_id, email="zhang@example.cn")
    for outcome in ("ok", "refused"):  # as the runner audits a change, and a refusal
        await uow.audit.record(
            actor="key:x", role="secretary", action="member.update_contact",
            target=str(world.member_id), outcome=outcome, detail=uow.audit_detail,
            trace_id=None,
        )  # fmt: skip
    detail = await world.gushi.run(lambda uow: queries.get_member(uow, world.member_id))
    assert detail["status"] == "away"
    assert detail["email"] == "zhang@example.cn"
    assert [m["movement_id"] for m in detail["movements"]] == [str(world.movement_id)]
    assert detail["movements"][0]["side"] == "origin"
    (change,) = detail["changes"]
    assert change["detail"]["changes"] == {
        "contact.email": {"before": None, "after": "zhang@example.cn"}
    }


async def test_a_member_outside_the_subtree_is_not_found_as_an_unknown_one() -> None:
    node = make_node(GUSHI)
    member_id = await add(node, "张建国")
    stranger = node.key(Role.SECRETARY, node.other_branch)
    refusals = []
    for who, wanted in ((stranger, member_id), (None, uuid4())):
        with pytest.raises(NotFound) as refused:
            await node.run(lambda uow, w=wanted: queries.get_member(uow, w), who)
        refusals.append((refused.value.field, refused.value.message.replace(str(wanted), "?")))
    assert refusals[0] == refusals[1] == ("member_id", "member ? does not exist in your subtree")


# -- a contact, field by field ---------------------------------------------------------------


async def test_a_partial_update_keeps_what_it_does_not_name() -> None:
    node = make_node(GUSHI)
    member_id = await add(node, "张建国", phone="13800000001", email="zhang@example.cn")
    result, uow = await patch(node, member_id, phone="13900000002", address="北京市朝阳区")
    assert (result.body["phone"], result.body["email"], result.body["address"]) == (
        "13900000002", "zhang@example.cn", "北京市朝阳区",
    )  # fmt: skip
    assert result.body["changed"] == ["contact.address", "contact.phone"]
    assert uow.audit_detail["changes"] == {
        "contact.phone": {"before": "13800000001", "after": "13900000002"},
        "contact.address": {"before": None, "after": "北京市朝阳区"},
    }
    assert node.tables.members[member_id].email == "zhang@example.cn"


async def test_null_removes_a_field_but_never_the_last_way_to_reach() -> None:
    node = make_node(GUSHI)
    member_id = await add(node, "张建国", phone="13800000001", email="zhang@example.cn")
    result, _ = await patch(node, member_id, phone=None)
    assert (result.body["phone"], result.body["email"]) == (None, "zhang@example.cn")
    with pytest.raises(Invalid) as refused:
        await patch(node, member_id, email=None)
    assert refused.value.field == "contact.email"
    assert node.tables.members[member_id].email == "zhang@example.cn"
    with pytest.raises(Invalid) as refused:
        await patch(node, member_id)
    assert refused.value.field == "contact"


async def test_the_same_update_again_changes_nothing_and_is_not_audited() -> None:
    node = make_node(GUSHI)
    member_id = await add(node, "张建国", phone="13800000001")
    first, first_uow = await patch(node, member_id, email="zhang@example.cn")
    again, again_uow = await patch(node, member_id, email="zhang@example.cn")
    assert (first_uow.nothing_changed, again_uow.nothing_changed) == (False, True)
    assert again.body["changed"] == []
    assert {k: v for k, v in again.body.items() if k != "changed"} == {
        k: v for k, v in first.body.items() if k != "changed"
    }


async def test_a_phone_that_makes_a_member_a_duplicate_is_refused() -> None:
    node = make_node(GUSHI)
    await add(node, "王芳", phone="13800000001")
    other = await add(node, "王芳", phone="13800000002")
    with pytest.raises(AlreadyExists) as refused:
        await patch(node, other, phone="13800000001")
    assert refused.value.field == "contact.phone"


@pytest.mark.parametrize(("role", "where"), [(Role.AUDITOR, "branch"), (Role.SECRETARY, "other")])
async def test_only_a_writer_of_the_subtree_updates(role: Role, where: str) -> None:
    node = make_node(GUSHI)
    member_id = await add(node, "张建国", phone="13800000001")
    org = node.branch if where == "branch" else node.other_branch
    with pytest.raises(Denied if where == "branch" else NotFound):
        await patch(node, member_id, node.key(role, org), phone="13900000002")
    assert node.tables.members[member_id].phone == "13800000001"


async def test_a_movements_contact_changes_field_by_field() -> None:
    world = World()
    await world.register()  # contact: a phone
    assert world.movement_id is not None
    movement_id = world.movement_id

    async def details(**contact: Any) -> dict[str, Any]:
        body = s.DetailsUpdate.model_validate({"contact": contact})
        uow: FakeUnitOfWork = world.gushi.uow()
        result = await handlers.update_details(uow, movement_id, **s.fields(body))
        group: dict[str, Any] = result.body["origin_group"]
        return group["contact"]  # type: ignore[no-any-return]

    assert await details(email="zhang@example.cn") == {
        "phone": "+86 138 0000 0000", "email": "zhang@example.cn", "address": None,
    }  # fmt: skip
    assert await details(phone="+86 139 0000 0001", address="北京市朝阳区") == {
        "phone": "+86 139 0000 0001", "email": "zhang@example.cn", "address": "北京市朝阳区",
    }  # fmt: skip
    assert (await details(phone=None, address=None))["email"] == "zhang@example.cn"
    with pytest.raises(Invalid) as refused:
        await details(email=None)
    assert refused.value.field == "contact.email"
