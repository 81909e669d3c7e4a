"""Arrivals reach a person, on live nodes (#15): Gushi registers an outflow to Chaoyang with
no organization hint; it lands in Chaoyang's intake, whose root now has contacts set over
the API; a host secretary assigns it to a branch, whose secretary is told, sees it in its
queue and checks the member in; Gushi sees the check-in. Another branch sees nothing.
Attacked: 20 identical assignments at once (with and without one Idempotency-Key) have one
effect; an organization that does not exist or lies outside the caller's subtree is a 4xx
naming ``org_id``. Notices name places and organizations, never a division's code."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.sinks import HttpSink, MailSink

from .conftest import NetworkFactory, channels
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e


async def _as(
    node: LocalNode, headers: dict[str, str], method: str, path: str, body: Any = None
) -> httpx.Response:
    return await node.request(method, path, headers=headers, body=body)


def _queued(queues: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {e["movement_id"] for entries in queues.values() for e in entries}


async def test_an_arrival_reaches_the_branch_that_checks_the_member_in(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, CHAOYANG], **channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    assert chaoyang.root_id is not None
    patched = await _as(
        chaoyang, {}, "PATCH", f"/v1/organizations/{chaoyang.root_id}",
        {"contact_email": "zzb@chaoyang.example", "secretary_name": "王书记"},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    township = await chaoyang.org("十八里店乡党委", kind="committee")
    branch = await chaoyang.org(
        "十八里店村党支部", parent=township, contact_email="shibalidian@chaoyang.example"
    )
    other = await chaoyang.org("小红门乡党委", kind="committee")
    intake_key = await chaoyang.api_key("intake", "secretary", chaoyang.root_id)
    branch_key = await chaoyang.api_key("branch", "secretary", branch)
    other_key = await chaoyang.api_key("other", "secretary", other)
    origin_branch = await gushi.org("陈集镇第一党支部", contact_email="chenji@gushi.example")
    member = await gushi.member(origin_branch, "张建国")

    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]
    path = f"/v1/movements/{movement}"

    async def in_intake() -> bool:
        response = await _as(chaoyang, intake_key, "GET", "/v1/queues")
        return movement in _queued(response.json())

    await eventually(in_intake, what="the arrival in the host's intake")
    for key in (branch_key, other_key):
        assert _queued((await _as(chaoyang, key, "GET", "/v1/queues")).json()) == set()
    assert (await _as(chaoyang, branch_key, "GET", path)).status_code == 403

    async def intake_told() -> bool:
        return any(m.to == ("zzb@chaoyang.example",) for m in mail.mails)

    await eventually(intake_told, what="the intake's secretary told of the arrival")

    async def member_told() -> bool:
        return any(r.path == "/sms/messages" for r in http.requests)

    await eventually(member_told, what="the member told where to check in")
    (sms,) = [r.json() for r in http.requests if r.path == "/sms/messages"]
    assert "请到北京市朝阳区报到" in sms["text"]
    assert "110105" not in sms["text"]

    assigned = await _as(chaoyang, intake_key, "POST", f"{path}/assign", {"org_id": str(branch)})
    assert assigned.status_code == 200, assigned.text
    queues = (await _as(chaoyang, branch_key, "GET", "/v1/queues")).json()
    (entry,) = [e for entries in queues.values() for e in entries]  # overdue by today's date
    assert (entry["movement_id"], entry["assigned_to"]["name"]) == (movement, "十八里店村党支部")
    assert _queued((await _as(chaoyang, other_key, "GET", "/v1/queues")).json()) == set()
    for method, step, body in (("GET", "", None), ("POST", "/check-in", {})):
        refused = await _as(chaoyang, other_key, method, f"{path}{step}", body)
        assert refused.status_code in (403, 404), refused.text

    async def branch_told() -> bool:
        return any(
            m.to == ("shibalidian@chaoyang.example",) and "已分配到十八里店村党支部" in m.subject
            for m in mail.mails
        )

    await eventually(branch_told, what="the branch's secretary told of the assignment")

    checked = await _as(chaoyang, branch_key, "POST", f"{path}/check-in", {})
    assert checked.status_code == 200, checked.text

    async def origin_sees_check_in() -> bool:
        _, host = await gushi.replica(movement)
        return host is not None and host["status"] == "checked_in"

    await eventually(origin_sees_check_in, what="Gushi sees the check-in")
    _, host = await gushi.replica(movement)
    assert host["host_org"] == {"org_id": str(branch), "name": "十八里店村党支部"}
    seen = await gushi.get(path)
    assert seen["state"] == "active"

    async def origin_told() -> bool:
        return any(m.to == ("chenji@gushi.example",) and "已报到" in m.subject for m in mail.mails)

    await eventually(origin_told, what="Gushi's secretary told of the check-in")
    told = next(m for m in mail.mails if m.to == ("chenji@gushi.example",))
    assert "十八里店村党支部" in told.body
    assert "北京市朝阳区" in told.body

    # attacks: 20 identical assignments at once, with and without one key
    second = await gushi.member(origin_branch, "李明")
    attacked = (await gushi.post("/v1/movements", outflow(second, CHAOYANG), 201))["movement_id"]

    async def known_at_host() -> bool:
        rows = await chaoyang.query(
            "SELECT 1 FROM movements WHERE movement_id = $1", UUID(attacked)
        )
        return bool(rows)

    await eventually(known_at_host, what="the second arrival at the host")
    for target, idempotency in ((township, {"Idempotency-Key": f"k-{uuid4()}"}), (branch, {})):
        headers = {**intake_key, **idempotency}
        body = {"org_id": str(target)}
        responses = await asyncio.gather(*(
            _as(chaoyang, headers, "POST", f"/v1/movements/{attacked}/assign", body)
            for _ in range(20)
        ))  # fmt: skip
        assert Counter(r.status_code for r in responses) == Counter({200: 20})
    versions = await chaoyang.query(
        "SELECT version FROM movement_history WHERE movement_id = $1 AND group_name = 'host'"
        " ORDER BY version",
        UUID(attacked),
    )
    assert [r["version"] for r in versions] == [1, 2]  # one per distinct assignment
    audited = await chaoyang.value(
        "SELECT count(*) FROM audit_log WHERE action = 'movement.assign' AND target = $1"
        " AND outcome = 'ok'",
        attacked,
    )
    assert audited == 2
    for key, org in ((intake_key, uuid4()), (branch_key, other), (intake_key, origin_branch)):
        bad = await _as(chaoyang, key, "POST", f"/v1/movements/{attacked}/assign",
                        {"org_id": str(org)})  # fmt: skip
        assert 400 <= bad.status_code < 500, bad.text
        assert bad.json()["field"] == "org_id", bad.text
