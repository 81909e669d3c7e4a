"""Arrivals reach a person on a real registry: an expected member with no hint is in the
host's intake only; a host secretary assigns it to a branch (20 identical requests at once,
with or without one Idempotency-Key: one effect, one audit row); the branch's secretary sees
it and checks the member in; another branch neither sees nor touches it; a bad organization
is a 4xx naming ``org_id``. Organizations are listed within a subtree and their contacts
set field by field (the root's too), audited before and after.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from .conftest import Node
from .test_one_effect import registered

pytestmark = pytest.mark.integration

TIMES = 20


async def audit_rows(node: Node, action: str, target: UUID) -> list[dict[str, Any]]:
    async with node.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit_log WHERE action = $1 AND target = $2 AND outcome = 'ok'"
            " ORDER BY id",
            action,
            str(target),
        )
    return [dict(r) for r in rows]


def queued(queues: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {e["movement_id"] for entries in queues.values() for e in entries}


async def test_an_arrival_is_assigned_to_a_branch_whose_secretary_checks_it_in(
    gushi: Node, chaoyang: Node
) -> None:
    township = await chaoyang.org("十八里店乡党委", kind="committee")
    branch = await chaoyang.org("十八里店村党支部", township)
    other = await chaoyang.org("小红门乡党委", kind="committee")
    intake = await chaoyang.key("intake", "secretary")
    township_key = await chaoyang.key("township", "secretary", township)
    branch_key = await chaoyang.key("branch", "secretary", branch)
    other_key = await chaoyang.key("other", "secretary", other)
    movement_id = await registered(gushi, chaoyang)
    path = f"/v1/movements/{movement_id}"

    assert str(movement_id) in queued(await chaoyang.get("/v1/queues", intake))
    for key in (township_key, branch_key, other_key):
        assert queued(await chaoyang.get("/v1/queues", key)) == set()
    refused = await chaoyang.call("GET", path, branch_key, expect=403)
    assert "outside your subtree" in refused.json()["message"]

    await chaoyang.post(f"{path}/assign", {"org_id": str(township)}, intake, expect=200)
    moved = await chaoyang.post(f"{path}/assign", {"org_id": str(branch)}, township_key)
    assert moved["host_group"]["host_org"] == {"org_id": str(branch), "name": "十八里店村党支部"}
    assert moved["host_group"]["status"] == "expected"
    (entry,) = (await chaoyang.get("/v1/queues", branch_key))["to_do"]
    assert (entry["movement_id"], entry["assigned_to"]["org_id"]) == (str(movement_id), str(branch))
    assert queued(await chaoyang.get("/v1/queues", other_key)) == set()
    for attempt in ("GET", "check-in", "assign"):
        if attempt == "GET":
            response = await chaoyang.call("GET", path, other_key)
        else:
            body = {"org_id": str(other)} if attempt == "assign" else {}
            response = await chaoyang.call("POST", f"{path}/{attempt}", other_key, json=body)
        assert response.status_code == 403, (attempt, response.text)

    checked = await chaoyang.post(f"{path}/check-in", {}, branch_key, expect=200)
    assert checked["host_group"]["status"] == "checked_in"
    assert checked["host_group"]["host_org"]["org_id"] == str(branch)
    present = await chaoyang.get(f"/v1/organizations/{branch}/present", branch_key)
    assert [p["movement_id"] for p in present] == [str(movement_id)]

    changes = [r["detail"]["changes"]["host_group.host_org.org_id"] for r in await audit_rows(
        chaoyang, "movement.assign", movement_id)]  # fmt: skip
    assert [(c["before"], c["after"]) for c in changes] == [
        (None, str(township)),
        (str(township), str(branch)),
    ]


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_twenty_identical_assignments_at_once_have_one_effect(
    gushi: Node, chaoyang: Node, idempotent: bool
) -> None:
    branch = await chaoyang.org("第一党支部")
    movement_id = await registered(gushi, chaoyang)
    headers = {"Idempotency-Key": f"k-{uuid4()}"} if idempotent else {}

    async def one() -> httpx.Response:
        return await chaoyang.call(
            "POST",
            f"/v1/movements/{movement_id}/assign",
            json={"org_id": str(branch)},
            headers=dict(headers),
        )

    responses = await asyncio.gather(*(one() for _ in range(TIMES)))
    assert Counter(r.status_code for r in responses) == Counter({200: TIMES})
    assert {r.json()["host_group"]["version"] for r in responses} == {1}
    async with chaoyang.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT host_version, host_org_id,"
            " (SELECT count(*) FROM outbox WHERE movement_id = $1) AS events,"
            " (SELECT count(*) FROM movement_history WHERE movement_id = $1"
            "  AND group_name = 'host') AS versions"
            " FROM movements WHERE movement_id = $1",
            movement_id,
        )
    assert row is not None
    assert (row["host_version"], row["host_org_id"], row["versions"]) == (1, branch, 1)
    assert row["events"] == 2  # the host group, to the partner and to the local topic
    assert len(await audit_rows(chaoyang, "movement.assign", movement_id)) == 1


async def test_an_assignment_to_a_bad_organization_names_org_id(
    gushi: Node, chaoyang: Node
) -> None:
    branch = await chaoyang.org("第一党支部")
    other = await chaoyang.org("第二党支部")
    branch_key = await chaoyang.key("branch", "secretary", branch)
    committee = await chaoyang.org(
        "驻闽工委", kind="working_committee", jurisdiction="350300"
    )  # serves another area
    movement_id = await registered(gushi, chaoyang)
    path = f"/v1/movements/{movement_id}/assign"
    await chaoyang.post(path, {"org_id": str(branch)}, expect=200)
    gushi_org = await gushi.org("固始支部")
    cases = [
        ({"org_id": str(uuid4())}, None, 404),  # no such organization
        ({"org_id": str(gushi_org)}, None, 404),  # another node's
        ({"org_id": str(other)}, branch_key, 404),  # outside the caller's subtree
        ({"org_id": str(committee)}, None, 422),  # a working committee of another area
        ({"org_id": "not-a-uuid"}, None, 422),
        ({}, None, 422),
        ({"org_id": str(branch), "branch": "x"}, None, 422),
    ]
    for body, key, status in cases:
        response = await chaoyang.call("POST", path, key, json=body, expect=status)
        assert response.json()["field"] in ("org_id", "branch"), (body, response.text)
    not_host = await gushi.call("POST", path, json={"org_id": str(gushi_org)})
    assert not_host.status_code in (404, 409), not_host.text  # gushi knows it as the origin
    assert (await chaoyang.get(f"/v1/movements/{movement_id}"))["host_group"]["host_org"][
        "org_id"
    ] == str(branch)


async def test_the_host_root_gets_contacts_and_organizations_are_listed_in_a_subtree(
    chaoyang: Node,
) -> None:
    branch = await chaoyang.org("第一党支部", contact_sms="+86 139 0000 0001")
    await chaoyang.org("第二党支部")
    branch_key = await chaoyang.key("branch-operator", "operator", branch)
    listed = await chaoyang.get("/v1/organizations")
    assert listed[0]["org_id"] == str(chaoyang.root_id)
    assert len(listed) == 3
    mine = await chaoyang.get("/v1/organizations", branch_key)
    assert [(o["name"], o["contact_sms"]) for o in mine] == [("第一党支部", "+86 139 0000 0001")]

    root = f"/v1/organizations/{chaoyang.root_id}"
    patch = {"contact_email": "zzb@chaoyang.example", "secretary_name": "王书记"}
    changed = await chaoyang.call("PATCH", root, json=patch, expect=200)
    assert changed.json()["changed"] == ["contact_email", "secretary_name"]
    again = await chaoyang.call(
        "PATCH",
        root,
        content=b'{"contact_email": "zzb@chaoyang.example", "secretary_name": null}',
        headers={"Content-Type": "application/merge-patch+json"},
        expect=200,
    )
    assert again.json()["changed"] == ["secretary_name"]
    (first, second) = await audit_rows(chaoyang, "organization.update", chaoyang.root_id)
    assert first["detail"]["changes"]["contact_email"] == {
        "before": None,
        "after": "zzb@chaoyang.example",
    }
    assert second["detail"]["changes"] == {"secretary_name": {"before": "王书记", "after": None}}
    async with chaoyang.pool.acquire() as conn:
        seen = await conn.fetchrow(
            "SELECT contact_email, secretary_name FROM organization_contacts WHERE root"
        )
    assert seen is not None
    assert (seen["contact_email"], seen["secretary_name"]) == ("zzb@chaoyang.example", None)

    for body, key, status, where in [
        ({"contact_email": "not mail"}, None, 422, "contact_email"),
        ({"contact_sms": ""}, None, 422, "contact_sms"),
        ({"name": None}, None, 422, "name"),
        ({"name": "第二党支部"}, None, 409, "name"),
        ({"fax": "1"}, None, 422, "fax"),
        ({"name": "x"}, branch_key, 404, "org_id"),  # the root is outside its subtree
    ]:
        target = f"/v1/organizations/{branch}" if where == "name" else root
        response = await chaoyang.call("PATCH", target, key, json=body, expect=status)
        assert response.json()["field"] == where, (body, response.text)
    secretary = await chaoyang.key("secretary", "secretary")
    await chaoyang.call("PATCH", root, secretary, json={"name": "x"}, expect=403)
