"""API keys are identities: a key is its id (audit, idempotency), its name is unique on the
node, and operators list and revoke the keys of their subtree."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest

from yixian.record.schema import NODE_SCHEMA, OWNER
from yixian.registry.bootstrap import MIGRATIONS
from yixian.runtime.migrations import apply

from .conftest import Node

pytestmark = pytest.mark.integration
UNIQUE_NAMES = "0004_api_key_identity.sql"


def key_id(key: str) -> UUID:
    return UUID(key.split("_")[1])


async def issue(node: Node, name: str, role: str, org: UUID | None = None) -> tuple[UUID, str]:
    created = await node.post(
        "/v1/api-keys",
        {"name": name, "role": role, "org_id": str(org or node.root_id)},
        expect=201,
    )
    return UUID(created["key_id"]), str(created["api_key"])


async def test_a_key_name_is_taken_once_also_under_twenty_requests_at_once(gushi: Node) -> None:
    branch = await gushi.org("一支部")
    await issue(gushi, "chenji", "secretary", branch)
    again = await gushi.call(
        "POST",
        "/v1/api-keys",
        json={"name": "chenji", "role": "auditor", "org_id": str(gushi.root_id)},
    )
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "name"
    assert again.json()["error"] == "already_exists"

    body = {"name": "same", "role": "secretary", "org_id": str(branch)}
    responses = await asyncio.gather(
        *(gushi.call("POST", "/v1/api-keys", json=body) for _ in range(20))
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 19}
    assert all(r.json()["field"] == "name" for r in responses if r.status_code == 409)
    named = await gushi.pool.fetchval("SELECT count(*) FROM api_keys WHERE name = 'same'")
    assert named == 1


async def test_an_idempotency_key_never_replays_another_keys_result(gushi: Node) -> None:
    first, second = await gushi.org("一支部"), await gushi.org("二支部")
    _, mine = await issue(gushi, "first-secretary", "secretary", first)
    _, theirs = await issue(gushi, "second-secretary", "secretary", second)
    _, neighbour = await issue(gushi, "second-deputy", "secretary", second)
    body = {"org_id": str(first), "name": "张建国", "joined_on": "2008-07-01"}
    retry = {"Idempotency-Key": "add-zhang"}

    created = await gushi.call("POST", "/v1/members", mine, json=body, headers=dict(retry))
    assert created.status_code == 201, created.text
    replayed = await gushi.call("POST", "/v1/members", mine, json=body, headers=dict(retry))
    assert (replayed.status_code, replayed.json()) == (201, created.json())

    other = await gushi.call("POST", "/v1/members", theirs, json=body, headers=dict(retry))
    assert other.status_code == 403, other.text  # judged afresh: not its subtree
    assert created.json()["member_id"] not in other.text

    own = {"org_id": str(second), "name": "李四", "joined_on": "2010-07-01"}
    separate = await gushi.call("POST", "/v1/members", neighbour, json=own, headers=dict(retry))
    assert separate.status_code == 201, separate.text
    assert separate.json()["member_id"] != created.json()["member_id"]
    actors = await gushi.pool.fetch(
        "SELECT actor FROM idempotency_keys WHERE key = 'add-zhang' AND status = 201"
    )
    assert {r["actor"] for r in actors} == {f"key:{key_id(mine)}", f"key:{key_id(neighbour)}"}


async def test_operators_list_the_keys_of_their_subtree_never_a_secret(gushi: Node) -> None:
    branch = await gushi.org("一支部")
    branch_operator_id, branch_operator = await issue(gushi, "branch-operator", "operator", branch)
    secretary_id, secretary = await issue(gushi, "branch-secretary", "secretary", branch)
    auditor_id, auditor = await issue(gushi, "node-auditor", "auditor")

    everything = await gushi.get("/v1/api-keys")
    assert [k["name"] for k in everything] == [
        "operator",
        "branch-operator",
        "branch-secretary",
        "node-auditor",
    ]
    assert set(everything[0]) == {"key_id", "name", "role", "org_id", "created_at", "revoked_at"}
    assert everything[1] == {
        "key_id": str(branch_operator_id),
        "name": "branch-operator",
        "role": "operator",
        "org_id": str(branch),
        "created_at": everything[1]["created_at"],
        "revoked_at": None,
    }
    mine = await gushi.get("/v1/api-keys", branch_operator)
    assert {k["key_id"] for k in mine} == {str(branch_operator_id), str(secretary_id)}
    for reader in (secretary, auditor):
        refused = await gushi.call("GET", "/v1/api-keys", reader)
        assert refused.status_code == 403, refused.text
    assert auditor_id not in {UUID(k["key_id"]) for k in mine}


async def test_a_revoked_key_fails_at_once_and_the_audit_names_its_id(gushi: Node) -> None:
    branch = await gushi.org("一支部")
    secretary_id, secretary = await issue(gushi, "branch-secretary", "secretary", branch)
    await gushi.get("/v1/members/away", secretary)

    revoked = await gushi.post(f"/v1/api-keys/{secretary_id}/revoke", expect=200)
    assert revoked["key_id"] == str(secretary_id)
    assert revoked["revoked_at"] is not None
    refused = await gushi.call("GET", "/v1/members/away", secretary)
    assert refused.status_code == 401, refused.text
    gushi.clock.advance(minutes=5)
    again = await gushi.post(f"/v1/api-keys/{secretary_id}/revoke", expect=200)
    assert again["revoked_at"] == revoked["revoked_at"]  # the first revocation stands
    listed = {k["key_id"]: k for k in await gushi.get("/v1/api-keys")}
    assert listed[str(secretary_id)]["revoked_at"] == revoked["revoked_at"]

    audit = await gushi.get("/v1/audit", params={"target": str(secretary_id)})
    revocations = [a for a in audit if a["action"] == "api_key.revoke"]
    assert len(revocations) == 2
    operator = f"key:{key_id(gushi.operator_key)}"
    assert all(a["actor"] == operator and a["key_name"] == "operator" for a in revocations)
    assert revocations[0]["detail"]["already_revoked"] is True
    assert revocations[1]["detail"]["name"] == "branch-secretary"
    issued = await gushi.get("/v1/audit", params={"target": str(secretary_id)})
    assert any(a["action"] == "api_key.issue" for a in issued)


async def test_keys_outside_the_subtree_are_not_found_and_only_operators_revoke(
    gushi: Node,
) -> None:
    first, second = await gushi.org("一支部"), await gushi.org("二支部")
    _, first_operator = await issue(gushi, "first-operator", "operator", first)
    first_secretary_id, first_secretary = await issue(gushi, "first-secretary", "secretary", first)
    second_secretary_id, _ = await issue(gushi, "second-secretary", "secretary", second)

    outside = await gushi.call("POST", f"/v1/api-keys/{second_secretary_id}/revoke", first_operator)
    missing_id = uuid4()
    missing = await gushi.call("POST", f"/v1/api-keys/{missing_id}/revoke", first_operator)
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["field"] == "key_id"
    assert outside.json()["message"].replace(str(second_secretary_id), "?") == missing.json()[
        "message"
    ].replace(str(missing_id), "?")  # nothing tells that the first one exists
    above = await gushi.call(
        "POST", f"/v1/api-keys/{key_id(gushi.operator_key)}/revoke", first_operator
    )
    assert above.status_code == 404
    denied = await gushi.call("POST", f"/v1/api-keys/{first_secretary_id}/revoke", first_secretary)
    assert denied.status_code == 403, denied.text
    await gushi.post(f"/v1/api-keys/{first_secretary_id}/revoke", key=first_operator, expect=200)
    assert (await gushi.call("GET", "/v1/members/away", first_secretary)).status_code == 401


async def test_the_root_keeps_an_active_operator_key(gushi: Node) -> None:
    root_operator = key_id(gushi.operator_key)
    last = await gushi.call("POST", f"/v1/api-keys/{root_operator}/revoke")
    assert last.status_code == 409, last.text
    assert last.json()["field"] == "key_id"

    survivor = gushi.operator_key
    for round_ in range(5):  # two root operators revoke each other at once: one stays
        spare_id, spare = await issue(gushi, f"spare-operator-{round_}", "operator")
        both = await asyncio.gather(
            gushi.call("POST", f"/v1/api-keys/{key_id(survivor)}/revoke", spare),
            gushi.call("POST", f"/v1/api-keys/{spare_id}/revoke", survivor),
        )
        codes = sorted(r.status_code for r in both)
        assert codes in ([200, 401], [200, 409]), [r.text for r in both]  # never both
        active = await gushi.pool.fetch(
            "SELECT key_id FROM api_key_principals WHERE role = 'operator' AND node_wide"
        )
        assert len(active) == 1
        survivor = spare if active[0]["key_id"] == spare_id else survivor
        gushi.operator_key = survivor


async def test_the_migration_renames_keys_that_shared_a_name(
    make_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    database_url = await make_database()
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < UNIQUE_NAMES:
            shutil.copy(path, before / path.name)
    await apply(database_url, OWNER, NODE_SCHEMA)
    await apply(database_url, "registry", before)
    conn = await asyncpg.connect(database_url)
    try:
        root = uuid4()
        await conn.execute(
            "INSERT INTO organizations (org_id, name, kind, jurisdiction, path)"
            " VALUES ($1, 'root', 'committee', '411525', $2)",
            root,
            f"/{root}/",
        )
        keys = [uuid4() for _ in range(3)]
        for i, key in enumerate(keys):
            await conn.execute(
                "INSERT INTO api_keys (key_id, secret_hash, name, role, org_id, created_at)"
                " VALUES ($1, $2, 'secretary', 'secretary', $3, now() + $4 * interval '1 s')",
                key,
                "0" * 64,
                root,
                i,
            )
        assert UNIQUE_NAMES.removesuffix(".sql") in await apply(
            database_url, "registry", MIGRATIONS
        )
        names = {
            r["key_id"]: r["name"] for r in await conn.fetch("SELECT key_id, name FROM api_keys")
        }
    finally:
        await conn.close()
    assert names[keys[0]] == "secretary"  # the oldest keeps its name
    assert names[keys[1]] == f"secretary-{keys[1].hex}"
    assert names[keys[2]] == f"secretary-{keys[2].hex}"
