"""notify's HTTP API takes the node's API keys and roles, as the registry does, reading
them through the view the registry publishes (on the real database, in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from yixian.notify.bootstrap import MIGRATIONS as NOTIFY_MIGRATIONS
from yixian.notify.bootstrap import with_api_keys
from yixian.notify.entrypoints.http import create_app
from yixian.record.schema import migrate
from yixian.registry.adapters.auth import Role, create_api_key
from yixian.registry.bootstrap import MIGRATIONS as REGISTRY_MIGRATIONS
from yixian.registry.bootstrap import init_node
from yixian.runtime import create_pool

pytestmark = pytest.mark.integration
GUSHI = "411525"


async def _database_checks() -> dict[str, str]:
    return {"database": "ok"}


@dataclass
class Notify:
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    root_id: UUID

    async def call(
        self, method: str, path: str, key: str | None = None, **kw: object
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return await self.http.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]


async def _notify(pool: asyncpg.Pool) -> httpx.AsyncClient:
    app = create_app(node=GUSHI, pool=pool, readiness=with_api_keys(pool, _database_checks))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify")


@pytest.fixture
async def notify(database_url: str) -> AsyncIterator[Notify]:
    await migrate(database_url, "registry", REGISTRY_MIGRATIONS)
    await migrate(database_url, "notify", NOTIFY_MIGRATIONS)
    pool = await create_pool(database_url)
    async with pool.acquire() as conn:
        root_id, _ = await init_node(conn, GUSHI, root_name="固始县委组织部")
    http = await _notify(pool)
    yield Notify(pool, http, root_id)
    await http.aclose()
    await pool.close()


async def _key(notify: Notify, name: str, role: Role, org_id: UUID | None = None) -> str:
    """A key as the registry issues it (POST /v1/api-keys there)."""
    async with notify.pool.acquire() as conn:
        _, key = await create_api_key(conn, name=name, role=role, org_id=org_id or notify.root_id)
    return key


async def _branch_with_member(notify: Notify, name: str) -> tuple[UUID, UUID]:
    branch, member = uuid4(), uuid4()
    await notify.pool.execute(
        "INSERT INTO organizations (org_id, parent_id, name, kind, jurisdiction, path)"
        " VALUES ($1, $2, $3, 'branch', $4, $5)",
        branch,
        notify.root_id,
        name,
        GUSHI,
        f"/{notify.root_id}/{branch}/",
    )
    await notify.pool.execute(
        "INSERT INTO members (member_id, org_id, name, joined_on) VALUES ($1, $2, '张建国', $3)",
        member,
        branch,
        date(2008, 7, 1),
    )
    return branch, member


async def test_no_key_or_a_bad_key_is_401_and_operations_stay_open(notify: Notify) -> None:
    opt_out = {"member_id": str(uuid4()), "channel": "sms"}
    for response in (
        await notify.call("GET", "/v1/notices"),
        await notify.call("GET", "/v1/opt-outs"),
        await notify.call("POST", "/v1/opt-outs", json=opt_out),
        await notify.call("DELETE", "/v1/opt-outs", json=opt_out),
        await notify.call("GET", "/v1/notices", f"yx_{uuid4().hex}_{'x' * 43}"),
        await notify.call("GET", "/v1/notices", "not-a-key"),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
        assert response.json()["field"] == "Authorization"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await notify.pool.fetchval("SELECT count(*) FROM opt_outs") == 0
    for path in ("/healthz", "/readyz"):
        assert (await notify.call("GET", path)).status_code == 200


async def test_auditors_read_secretaries_change_opt_outs(notify: Notify) -> None:
    auditor = await _key(notify, "node-auditor", Role.AUDITOR)
    secretary = await _key(notify, "node-secretary", Role.SECRETARY)
    _, member = await _branch_with_member(notify, "一支部")
    opt_out = {"member_id": str(member), "channel": "sms"}

    assert (await notify.call("GET", "/v1/notices", auditor)).json() == []
    refused = await notify.call("POST", "/v1/opt-outs", auditor, json=opt_out)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "forbidden"
    assert await notify.pool.fetchval("SELECT count(*) FROM opt_outs") == 0

    assert (await notify.call("POST", "/v1/opt-outs", secretary, json=opt_out)).status_code == 201
    listed = (await notify.call("GET", "/v1/opt-outs", auditor)).json()
    assert [(o["member_id"], o["channel"]) for o in listed] == [(str(member), "sms")]
    reading = await notify.call("GET", "/v1/notices", secretary)
    assert reading.status_code == 403  # a secretary changes opt-outs but reads no delivery log
    assert (await notify.call("DELETE", "/v1/opt-outs", secretary, json=opt_out)).status_code == 204
    assert await notify.pool.fetchval("SELECT count(*) FROM opt_outs") == 0


async def test_a_branch_key_acts_for_its_own_members_only(notify: Notify) -> None:
    first, mine = await _branch_with_member(notify, "一支部")
    _, theirs = await _branch_with_member(notify, "二支部")
    secretary = await _key(notify, "first-secretary", Role.SECRETARY, first)
    branch_auditor = await _key(notify, "first-auditor", Role.AUDITOR, first)

    own = await notify.call(
        "POST", "/v1/opt-outs", secretary, json={"member_id": str(mine), "channel": "email"}
    )
    assert own.status_code == 201, own.text
    other = await notify.call(
        "POST", "/v1/opt-outs", secretary, json={"member_id": str(theirs), "channel": "email"}
    )
    assert other.status_code == 404, other.text
    assert other.json()["field"] == "member_id"
    narrow = await notify.call("GET", "/v1/notices", branch_auditor)
    assert narrow.status_code == 403  # the delivery log is the whole node's


async def test_a_revoked_key_fails_at_once(notify: Notify) -> None:
    auditor = await _key(notify, "node-auditor", Role.AUDITOR)
    assert (await notify.call("GET", "/v1/notices", auditor)).status_code == 200
    await notify.pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", UUID(auditor.split("_")[1])
    )
    assert (await notify.call("GET", "/v1/notices", auditor)).status_code == 401


async def test_before_the_registry_migrated_keys_are_503_not_500(database_url: str) -> None:
    await migrate(database_url, "notify", NOTIFY_MIGRATIONS)
    pool = await create_pool(database_url)
    http = await _notify(pool)
    try:
        response = await http.get(
            "/v1/notices", headers={"Authorization": f"Bearer yx_{uuid4().hex}_{'x' * 43}"}
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "unavailable"
        assert (await http.get("/v1/notices")).status_code == 401
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["api_keys"].startswith("pending")
    finally:
        await http.aclose()
        await pool.close()


async def test_notify_answers_bad_requests_in_the_one_error_body(notify: Notify) -> None:
    secretary = await _key(notify, "node-secretary-body", Role.SECRETARY)
    unknown = await notify.call("GET", "/v1/nowhere", secretary)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    plain = await notify.http.post(
        "/v1/opt-outs",
        content=b"member=x",
        headers={"Authorization": f"Bearer {secretary}", "Content-Type": "text/plain"},
    )
    assert plain.status_code == 415
    assert plain.json()["field"] == "Content-Type"
    huge = b'{"member_id": "' + b"0" * 70_000 + b'"}'
    too_large = await notify.http.post(
        "/v1/opt-outs",
        content=huge,
        headers={"Authorization": f"Bearer {secretary}", "Content-Type": "application/json"},
    )
    assert too_large.status_code == 413
    assert too_large.json() | {"message": ""} == {
        "error": "body_too_large",
        "message": "",
        "field": "body",
    }


async def test_a_host_secretary_may_not_opt_out_a_member_who_went_home(notify: Notify) -> None:
    branch, _ = await _branch_with_member(notify, "朝阳区第一支部")
    secretary = await _key(notify, "host-branch-secretary", Role.SECRETARY, branch)
    visitor = uuid4()
    await notify.pool.execute(
        "INSERT INTO movements (movement_id, origin, host, member_id, origin_version,"
        " origin_status, host_version, host_status, host_org_id)"
        " VALUES ($1, '350300', $2, $3, 3, 'returned', 2, 'checked_in', $4)",
        uuid4(),
        GUSHI,
        visitor,
        branch,
    )
    refused = await notify.call(
        "POST", "/v1/opt-outs", secretary, json={"member_id": str(visitor), "channel": "sms"}
    )
    assert refused.status_code == 404, refused.text
    assert refused.json()["field"] == "member_id"
