"""Who may do what: role × endpoint × inside/outside the key's subtree, on both sides.

Allowed means "not refused for permission" (the step may still be refused for the
movement's state); forbidden means 403, and every 403 is in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from yixian.contracts import OrganizationRef, OriginGroup
from yixian.contracts.examples import origin_group

from .conftest import Node, outflow

pytestmark = pytest.mark.integration

ROLES = ("operator", "secretary", "auditor")


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: Callable[[dict[str, Any]], str]
    body: Callable[[dict[str, Any]], Any] | None
    kind: str  # "admin", "write" or "read"


def _post(
    name: str,
    path: Callable[[dict[str, Any]], str],
    body: Callable[[dict[str, Any]], Any] | None = None,
    kind: str = "write",
) -> Call:
    return Call(name, "POST", path, body or (lambda _: {}), kind)


def _get(name: str, path: Callable[[dict[str, Any]], str]) -> Call:
    return Call(name, "GET", path, None, "read")


ORIGIN_CALLS = [
    _post(
        "create organization",
        lambda _: "/v1/organizations",
        lambda s: {"name": "新支部", "kind": "branch", "parent_id": s["org"]},
        "admin",
    ),
    _post(
        "issue api key",
        lambda _: "/v1/api-keys",
        lambda s: {"name": f"k{uuid4().hex[:6]}", "role": "auditor", "org_id": s["org"]},
        "admin",
    ),
    _post(
        "add member",
        lambda _: "/v1/members",
        lambda s: {"org_id": s["org"], "name": "新党员", "joined_on": "2010-07-01"},
    ),
    _post("register outflow", lambda _: "/v1/movements", lambda s: outflow(s["member2"])),
    _post(
        "update details",
        lambda s: f"/v1/movements/{s['movement']}/details",
        lambda _: {"contact": {"phone": "139"}},
    ),
    _post(
        "relocate",
        lambda s: f"/v1/movements/{s['movement']}/relocate",
        lambda _: {
            "destination": {"jurisdiction": "110114", "place": "昌平"},
            "departed_on": "2026-02-28",
        },
    ),
    _post("cancel", lambda s: f"/v1/movements/{s['movement']}/cancel"),
    _post(
        "return",
        lambda s: f"/v1/movements/{s['movement']}/return",
        lambda _: {"returned_on": "2026-02-28"},
    ),
    _post("request transfer", lambda s: f"/v1/movements/{s['movement']}/transfer/request"),
    _post("withdraw transfer", lambda s: f"/v1/movements/{s['movement']}/transfer/withdraw"),
    _post("complete transfer", lambda s: f"/v1/movements/{s['movement']}/transfer/complete"),
    _post(
        "mark lost contact at the origin",
        lambda s: f"/v1/movements/{s['movement']}/origin/lost-contact",
        lambda _: {"since": "2026-02-27"},
    ),
    _post(
        "restore contact at the origin",
        lambda s: f"/v1/movements/{s['movement']}/origin/restore-contact",
    ),
    _post(
        "suspend",
        lambda s: f"/v1/movements/{s['movement']}/suspend",
        lambda _: {"reason": "失联", "force": True},
    ),
    _post(
        "reinstate",
        lambda s: f"/v1/movements/{s['movement']}/reinstate",
        lambda _: {"reason": "恢复联系"},
    ),
    _post(
        "remove",
        lambda s: f"/v1/movements/{s['movement']}/remove",
        lambda _: {"reason": "仍失联", "force": True},
    ),
    _post(
        "record the member's report",
        lambda s: f"/v1/movements/{s['movement']}/report",
        lambda _: {"reported_on": "2026-02-28"},
    ),
    _post(
        "schedule activity",
        lambda _: "/v1/activities",
        lambda s: {
            "org_id": s["org"],
            "kind": "theme_day",
            "title": "主题党日",
            "starts_at": "2026-04-01T01:00:00Z",
            "location": "党群服务中心",
        },
    ),
    _get("movement", lambda s: f"/v1/movements/{s['movement']}"),
    _get("members away", lambda s: f"/v1/members/away?org_id={s['org']}"),
    _get("present in area", lambda s: f"/v1/organizations/{s['org']}/present"),
    _get("work queues", lambda s: f"/v1/queues?org_id={s['org']}"),
    _get("statistics", lambda s: f"/v1/statistics?org_id={s['org']}"),
]

HOST_CALLS = [
    _post(
        "confirm check-in",
        lambda s: f"/v1/movements/{s['expected']}/check-in",
        lambda s: {"host_org_id": s["org"]},
    ),
    _post(
        "reject",
        lambda s: f"/v1/movements/{s['expected']}/reject",
        lambda _: {"reason": "查无此人"},
    ),
    _post(
        "forward",
        lambda s: f"/v1/movements/{s['expected']}/forward",
        lambda _: {"forwarded_to": "110114", "reason": "在昌平"},
    ),
    _post(
        "mark lost contact",
        lambda s: f"/v1/movements/{s['movement']}/lost-contact",
        lambda _: {"since": "2026-02-27"},
    ),
    _post("restore contact", lambda s: f"/v1/movements/{s['movement']}/restore-contact"),
    _post(
        "record participation",
        lambda s: f"/v1/movements/{s['movement']}/participations",
        lambda _: {
            "participation_id": str(uuid4()),
            "kind": "theme_day",
            "title": "主题党日",
            "attended_at": "2026-02-28T01:00:00Z",
        },
    ),
    _post(
        "reply to transfer",
        lambda s: f"/v1/movements/{s['movement']}/transfer/reply",
        lambda _: {"decision": "accepted"},
    ),
    _get("members visiting", lambda s: f"/v1/members/visiting?org_id={s['org']}"),
]


def expected_allowed(role: str, kind: str, inside: bool) -> bool:
    if not inside:
        return False
    if kind == "read":
        return True
    if kind == "admin":
        return role == "operator"
    return role in ("operator", "secretary")


async def _origin_scopes(node: Node) -> dict[str, dict[str, Any]]:
    scopes = {}
    for label in ("inside", "outside"):
        org = await node.org(f"{label}支部")
        member = await node.member(org, name=f"{label}甲")
        member2 = await node.member(org, name=f"{label}乙")
        movement = (await node.post("/v1/movements", outflow(member), expect=201))["movement_id"]
        scopes[label] = {"org": str(org), "member2": member2, "movement": movement}
    return scopes


async def _host_scopes(node: Node) -> dict[str, dict[str, Any]]:
    scopes = {}
    for label in ("inside", "outside"):
        org = await node.org(f"{label}工委", kind="working_committee")
        ref = OrganizationRef(org_id=org, name=f"{label}工委")
        base = origin_group()
        movements = []
        for hint in (None, ref):
            document = base.model_dump() | {"movement_id": uuid4()}
            document["member"] = base.member.model_dump() | {"member_id": uuid4()}
            document["destination"] = base.destination.model_dump() | {"host_org_hint": hint}
            group = OriginGroup.model_validate(document)
            await node.receive_origin_group(group)
            movements.append(str(group.movement_id))
        checked, expected = movements
        await node.post(f"/v1/movements/{checked}/check-in", {"host_org_id": str(org)}, expect=200)
        scopes[label] = {"org": str(org), "movement": checked, "expected": expected}
    return scopes


async def _run_matrix(
    node: Node, calls: list[Call], scopes: dict[str, dict[str, Any]]
) -> list[str]:
    keys = {
        role: await node.key(f"{role}-{node.code}", role, UUID(scopes["inside"]["org"]))
        for role in ROLES
    }
    problems = []
    denied = 0
    for role in ROLES:
        for call in calls:
            for label, scope in scopes.items():
                kwargs = {"json": call.body(scope)} if call.body else {}
                response = await node.call(call.method, call.path(scope), keys[role], **kwargs)
                allowed = expected_allowed(role, call.kind, label == "inside")
                got = response.status_code
                if got >= 500 or got == 401:
                    problems.append(f"{role} {call.name} {label}: {got} {response.text}")
                elif allowed and got == 403:
                    problems.append(f"{role} {call.name} {label}: refused, should be allowed")
                elif not allowed and got != 403:
                    problems.append(f"{role} {call.name} {label}: {got}, should be 403")
                denied += got == 403
    async with node.pool.acquire() as conn:
        logged = await conn.fetchval("SELECT count(*) FROM audit_log WHERE outcome = 'denied'")
    if logged != denied:
        problems.append(f"{denied} refusals but {logged} denied rows in the audit log")
    return problems


async def test_origin_side_role_matrix(gushi: Node) -> None:
    gushi.clock.now = gushi.clock.now.replace(month=3, day=1)
    assert await _run_matrix(gushi, ORIGIN_CALLS, await _origin_scopes(gushi)) == []


async def test_host_side_role_matrix(chaoyang: Node) -> None:
    assert await _run_matrix(chaoyang, HOST_CALLS, await _host_scopes(chaoyang)) == []


async def test_unauthenticated_calls_are_refused_and_audited(gushi: Node) -> None:
    for headers in ({}, {"Authorization": "Bearer yx_nope"}, {"Authorization": "Basic abc"}):
        response = await gushi.http.get("/v1/queues", headers=headers)
        assert response.status_code == 401
    async with gushi.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE actor = 'anonymous'") == 3


async def test_audit_log_is_for_node_wide_operators_and_auditors(gushi: Node) -> None:
    auditor = await gushi.key("node-auditor", "auditor")
    secretary = await gushi.key("node-secretary", "secretary")
    assert (await gushi.call("GET", "/v1/audit", auditor)).status_code == 200
    assert (await gushi.call("GET", "/v1/audit", secretary)).status_code == 403
    branch = await gushi.org("支部")
    branch_operator = await gushi.key("branch-operator", "operator", branch)
    assert (await gushi.call("GET", "/v1/audit", branch_operator)).status_code == 403
