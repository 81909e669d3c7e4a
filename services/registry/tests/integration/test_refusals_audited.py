"""Every refusal is in the audit log, in the name of the key that asked: a 401 with the
id of the key presented, 403, 409 and 422 (the request's shape or the domain's rules),
and every import, finished or cut off, with what it committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import new_traceparent
from yixian.registry.bootstrap import node_config
from yixian.registry.service_layer.importing import run_import
from yixian.registry.service_layer.unit_of_work import Request, TransactionRunner
from yixian.runtime.apikeys import authenticate

from .conftest import Node, outflow

pytestmark = pytest.mark.integration


async def audit_rows(node: Node, **where: Any) -> list[dict[str, Any]]:
    async with node.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM audit_log ORDER BY id")
    return [
        dict(r)
        for r in rows
        if all((r[k] if k in r else r["detail"].get(k)) == v for k, v in where.items())
    ]


async def test_a_refused_key_is_recorded_with_the_id_it_presented(gushi: Node) -> None:
    key_id = uuid4()
    forged = f"yx_{key_id.hex}_{'x' * 40}"
    response = await gushi.call("GET", "/v1/queues", forged)
    assert response.status_code == 401
    (row,) = await audit_rows(gushi, outcome="denied", actor="anonymous")
    assert row["detail"]["presented_key_id"] == str(key_id)
    assert row["action"] == "GET /v1/queues"


async def test_an_invalid_request_is_recorded_in_the_callers_name(gushi: Node) -> None:
    response = await gushi.call(
        "POST", "/v1/members", json={"org_id": str(gushi.root_id), "name": "张三"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "joined_on"
    (row,) = await audit_rows(gushi, outcome="refused", status=422)
    assert row["actor"].startswith("key:")
    assert row["detail"]["field"] == "joined_on"


async def test_forbidden_and_conflicting_requests_are_recorded(gushi: Node) -> None:
    auditor = await gushi.key("county-auditor", "auditor")
    body = {"org_id": str(gushi.root_id), "name": "王芳", "joined_on": "2001-07-01"}
    refused = await gushi.call("POST", "/v1/members", auditor, json=body)
    assert refused.status_code == 403
    await gushi.post("/v1/members", body, expect=201)
    again = await gushi.call("POST", "/v1/members", json=body)
    assert again.status_code == 409
    outcomes = [(r["outcome"], r["action"]) for r in await audit_rows(gushi)]
    assert ("denied", "member.add") in outcomes
    assert ("refused", "member.add") in outcomes


async def test_a_refused_step_names_no_organization_of_another_subtree(gushi: Node) -> None:
    first, second = await gushi.org("第一党支部"), await gushi.org("第二党支部")
    stranger = await gushi.key("second-secretary", "secretary", second)
    member = await gushi.member(first)
    movement = await gushi.post("/v1/movements", outflow(member), expect=201)
    response = await gushi.call(
        "POST", f"/v1/movements/{movement['movement_id']}/cancel", stranger, json={}
    )
    assert response.status_code == 403
    assert str(first) not in response.text
    assert str(gushi.root_id) not in response.text


def _rows(branch: UUID, count: int) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"org_id,name,joined_on\n"
        for i in range(count):
            yield f"{branch},成员{i},2001-07-01\n".encode()
        raise ConnectionResetError("the client went away")

    return chunks()


async def test_an_import_cut_off_is_recorded_with_what_it_committed(gushi: Node) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    async with gushi.pool.acquire() as conn:
        principal = await authenticate(conn, gushi.operator_key)
    assert principal is not None
    runner = TransactionRunner(gushi.pool, node_config(gushi.settings))
    request = Request(
        principal=principal,
        now=gushi.clock(),
        traceparent=new_traceparent(),
        idempotency_key="cut-off-import",
    )
    with pytest.raises(ConnectionResetError):
        await run_import(runner, request, "/v1/members/import", _rows(branch, 4500), "csv")

    async with gushi.pool.acquire() as conn:
        committed = await conn.fetchval("SELECT count(*) FROM members")
        claim = await conn.fetchval("SELECT count(*) FROM idempotency_keys")
    assert committed >= 4000  # the batches written before the cut
    (row,) = await audit_rows(gushi, action="member.import")
    assert row["outcome"] == "partial"
    assert row["detail"]["accepted"] == committed
    assert row["detail"]["reason"] == "ConnectionResetError"
    assert claim == 0  # a retry under the same key may run: rows already in are skipped
