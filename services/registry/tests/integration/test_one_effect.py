"""Twenty identical requests at once have exactly one effect, on every write endpoint,
with one Idempotency-Key shared by all twenty and without one.

The effect is counted in the database (rows, group versions, outbox events), never in
the responses alone; the rule is kept by constraints and row locks, so these tests run
the requests truly at once over a pool of connections.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from yixian.contracts import OPEN_ORIGIN_STATUSES, HostGroup, OriginGroup

from .conftest import GUSHI, Node, outflow

pytestmark = pytest.mark.integration

TIMES = 20
MIGRATIONS = Path(__file__).parents[2] / "src/yixian/registry/migrations"


async def at_once(
    node: Node, path: str, body: Any, *, key: str | None = None, idempotent: bool
) -> Counter[int]:
    """POST the same body TIMES times concurrently; the statuses that came back."""
    headers = {"Idempotency-Key": f"k-{uuid4()}"} if idempotent else {}

    async def one() -> httpx.Response:
        return await node.call("POST", path, key, json=body, headers=dict(headers))

    responses = await asyncio.gather(*(one() for _ in range(TIMES)))
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    if idempotent:  # every retry gets the first answer
        answers = {json.dumps(r.json(), sort_keys=True) for r in responses if r.status_code < 300}
        assert len(answers) <= 1
    return Counter(r.status_code for r in responses)


async def count(node: Node, sql: str, *args: Any) -> int:
    async with node.pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


async def effects(node: Node, movement_id: UUID) -> tuple[int, int, int, int]:
    """(origin version, host version, outbox rows, participations) of one movement."""
    async with node.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT origin_version, host_version,"
            " (SELECT count(*) FROM outbox WHERE movement_id = $1) AS events,"
            " (SELECT count(*) FROM participations WHERE movement_id = $1) AS attended"
            " FROM movements WHERE movement_id = $1",
            movement_id,
        )
    assert row is not None
    return row["origin_version"], row["host_version"], row["events"], row["attended"]


async def receive_host_group(node: Node, group: HostGroup) -> None:
    """Store the host's group at the origin as the sync service does."""
    async with node.pool.acquire() as conn:
        await conn.execute(
            "UPDATE movements SET host_version = $2, host_status = $3, host_group = $4"
            " WHERE movement_id = $1 AND host_version < $2",
            group.movement_id,
            group.version,
            group.status.value,
            group.model_dump(mode="json"),
        )


async def registered(gushi: Node, chaoyang: Node) -> UUID:
    """A movement from Gushi to Chaoyang, known on both nodes."""
    member = await gushi.member(await gushi.org(f"支部{uuid4().hex[:6]}"))
    body = await gushi.post("/v1/movements", outflow(member), expect=201)
    group = OriginGroup.model_validate(body["origin_group"])
    await chaoyang.receive_origin_group(group)
    return group.movement_id


async def share(source: Node, target: Node, movement_id: UUID) -> None:
    """Copy the source's own group of the movement to the target."""
    body = await source.get(f"/v1/movements/{movement_id}")
    if source.code == GUSHI:
        await target.receive_origin_group(OriginGroup.model_validate(body["origin_group"]))
    else:
        await receive_host_group(target, HostGroup.model_validate(body["host_group"]))


async def checked_in(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await registered(gushi, chaoyang)
    await chaoyang.post(
        f"/v1/movements/{movement_id}/check-in",
        {"host_org_id": str(chaoyang.root_id)},
        expect=200,
    )
    await share(chaoyang, gushi, movement_id)
    return movement_id


Setup = Callable[[Node, Node], Awaitable[UUID]]


async def _lost(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await checked_in(gushi, chaoyang)
    await chaoyang.post(
        f"/v1/movements/{movement_id}/lost-contact", {"since": "2026-02-25"}, expect=200
    )
    return movement_id


async def _transfer_requested(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await checked_in(gushi, chaoyang)
    await gushi.post(f"/v1/movements/{movement_id}/transfer/request", {}, expect=200)
    await share(gushi, chaoyang, movement_id)
    return movement_id


async def _transfer_accepted(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await _transfer_requested(gushi, chaoyang)
    await chaoyang.post(
        f"/v1/movements/{movement_id}/transfer/reply", {"decision": "accepted"}, expect=200
    )
    await share(chaoyang, gushi, movement_id)
    return movement_id


async def _lost_at_origin(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await registered(gushi, chaoyang)  # a member who never arrived
    await gushi.post(
        f"/v1/movements/{movement_id}/origin/lost-contact", {"since": "2026-02-25"}, expect=200
    )
    return movement_id


async def _suspended(gushi: Node, chaoyang: Node) -> UUID:
    movement_id = await _lost_at_origin(gushi, chaoyang)
    await gushi.post(f"/v1/movements/{movement_id}/suspend", SUSPENSION, expect=200)
    return movement_id


SUSPENSION = {"reason": "失联后经多方查找仍无法联系", "force": True}

PARTICIPATION = {
    "participation_id": "6b1f0c2e-1111-4a7e-9a56-0c3d2f1e0a01",
    "kind": "theme_day",
    "title": "三月主题党日",
    "attended_at": "2026-02-28T02:00:00+00:00",
}

# (side acting, setup, step path, body)
STEPS: list[tuple[str, Setup, str, dict[str, Any]]] = [
    ("origin", registered, "details", {"contact": {"phone": "+86 139 0000 0001"}}),
    ("origin", registered, "relocate", {
        "destination": {"jurisdiction": "350300", "place": "莆田市城厢区"},
        "departed_on": "2026-02-27",
    }),
    ("origin", registered, "cancel", {}),
    ("origin", registered, "return", {"returned_on": "2026-02-28"}),
    ("origin", checked_in, "transfer/request", {}),
    ("origin", _transfer_requested, "transfer/withdraw", {}),
    ("origin", _transfer_accepted, "transfer/complete", {}),
    ("host", registered, "check-in", {}),
    ("host", registered, "reject", {"reason": "查无此人"}),
    ("host", registered, "forward", {"forwarded_to": "110114", "reason": "在昌平区工作"}),
    ("host", checked_in, "lost-contact", {"since": "2026-02-25"}),
    ("host", _lost, "restore-contact", {}),
    ("host", checked_in, "participations", PARTICIPATION),
    ("host", _transfer_requested, "transfer/reply", {"decision": "accepted"}),
    ("host", checked_in, "dues", {"months": ["2026-02", "2026-03"]}),
    ("host", checked_in, "dues", {
        "period": {"from_month": "2026-02", "to_month": "2026-03"},
        "amount_fen": 9000,
        "receipt": "BJ-2026-0001",
    }),
    ("host", checked_in, "report-received", {"reported_on": "2026-02-28"}),
    ("origin", registered, "origin/lost-contact", {"since": "2026-02-25"}),
    ("origin", _lost_at_origin, "origin/restore-contact", {}),
    ("origin", _lost_at_origin, "suspend", SUSPENSION),
    ("origin", _suspended, "reinstate", {"reason": "本人已与党组织恢复联系"}),
    ("origin", _suspended, "remove", {"reason": "停止党籍后仍无法联系", "force": True}),
    ("origin", registered, "report", {"reported_on": "2026-02-28"}),
]  # fmt: skip


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
@pytest.mark.parametrize(("side", "setup", "step", "body"), STEPS, ids=[s[2] for s in STEPS])
async def test_a_movement_step_takes_effect_once(
    gushi: Node,
    chaoyang: Node,
    side: str,
    setup: Setup,
    step: str,
    body: dict[str, Any],
    idempotent: bool,
) -> None:
    movement_id = await setup(gushi, chaoyang)
    node = gushi if side == "origin" else chaoyang
    if step == "check-in":
        body = {"host_org_id": str(chaoyang.root_id)}
    before = await effects(node, movement_id)

    statuses = await at_once(
        node, f"/v1/movements/{movement_id}/{step}", body, idempotent=idempotent
    )

    after = await effects(node, movement_id)
    own = 0 if side == "origin" else 1
    assert after[own] == before[own] + 1, (statuses, before, after)  # one new version
    assert after[1 - own] == before[1 - own]
    events_per_change = 2  # the pair topic and the local topic
    new_events = after[2] - before[2]
    if step == "participations":  # the host group and the attendance itself
        assert new_events == 2 * events_per_change
        assert after[3] == before[3] + 1
    else:
        assert new_events == events_per_change
    successes = sum(n for status, n in statuses.items() if status < 300)
    same_again_is_fine = step in {  # answered 200, no change
        "details", "participations", "dues", "origin/lost-contact", "suspend", "reinstate",
        "remove", "report", "report-received",
    }  # fmt: skip
    assert successes == TIMES if idempotent or same_again_is_fine else successes == 1, statuses
    if step == "relocate":
        successors = await count(
            node,
            "SELECT count(*) FROM movements WHERE origin_group->>'previous_movement_id' = $1",
            str(movement_id),
        )
        assert successors == 1


async def test_an_attendance_retried_at_once_counts_once(gushi: Node, chaoyang: Node) -> None:
    movement_id = await checked_in(gushi, chaoyang)
    statuses = await at_once(
        chaoyang, f"/v1/movements/{movement_id}/participations", PARTICIPATION, idempotent=False
    )
    assert statuses == Counter({201: 1, 200: TIMES - 1})
    host = (await chaoyang.get(f"/v1/movements/{movement_id}"))["host_group"]
    assert host["participation"]["attended"] == 1
    assert await count(
        chaoyang,
        "SELECT count(*) FROM outbox WHERE event_type LIKE '%participation_recorded%'"
        " AND movement_id = $1",
        movement_id,
    ) == 2  # fmt: skip


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_one_open_movement_per_member(gushi: Node, idempotent: bool) -> None:
    member = await gushi.member(await gushi.org("陈集镇第一党支部"))
    statuses = await at_once(gushi, "/v1/movements", outflow(member), idempotent=idempotent)
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    if not idempotent:
        assert statuses[409] == TIMES - 1, statuses
    assert await count(
        gushi, "SELECT count(*) FROM movements WHERE member_id = $1", member
    ) == 1  # fmt: skip
    assert await count(gushi, "SELECT count(*) FROM outbox") == 2


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
@pytest.mark.parametrize("national_id", [None, "11010519491231002X"], ids=["no-id", "id"])
async def test_a_member_is_added_once(
    gushi: Node, idempotent: bool, national_id: str | None
) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    body: dict[str, Any] = {"org_id": str(branch), "name": "李秀英", "joined_on": "1999-07-01"}
    if national_id:
        body["national_id"] = national_id
    statuses = await at_once(gushi, "/v1/members", body, idempotent=idempotent)
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    assert await count(gushi, "SELECT count(*) FROM members") == 1
    if not idempotent:
        refused = await gushi.call("POST", "/v1/members", json=body)
        assert refused.status_code == 409
        assert refused.json()["field"] == ("national_id" if national_id else "name")


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_an_organization_is_added_once(gushi: Node, idempotent: bool) -> None:
    body = {"name": "陈集镇第二党支部", "kind": "branch", "parent_id": str(gushi.root_id)}
    statuses = await at_once(gushi, "/v1/organizations", body, idempotent=idempotent)
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    assert await count(
        gushi, "SELECT count(*) FROM organizations WHERE name = $1", body["name"]
    ) == 1  # fmt: skip


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_an_api_key_is_issued_once(gushi: Node, idempotent: bool) -> None:
    body = {"name": "chenji-secretary", "role": "secretary", "org_id": str(gushi.root_id)}
    statuses = await at_once(gushi, "/v1/api-keys", body, idempotent=idempotent)
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    assert await count(
        gushi, "SELECT count(*) FROM api_keys WHERE name = $1", body["name"]
    ) == 1  # fmt: skip


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_an_activity_is_scheduled_once(gushi: Node, idempotent: bool) -> None:
    body = {
        "org_id": str(gushi.root_id),
        "kind": "theme_day",
        "title": "四月主题党日",
        "starts_at": "2026-04-10T01:00:00+00:00",
        "location": "县委党校",
    }
    statuses = await at_once(gushi, "/v1/activities", body, idempotent=idempotent)
    assert statuses[201] == (TIMES if idempotent else 1), statuses
    assert await count(gushi, "SELECT count(*) FROM activities") == 1
    assert await count(gushi, "SELECT count(*) FROM outbox") == 1


def _csv(branch: UUID, rows: int) -> bytes:
    lines = ["org_id,name,joined_on,phone"]
    lines += [f"{branch},成员{i},2001-07-01,+86 137 0000 {i:04d}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("idempotent", [True, False], ids=["one-key", "no-key"])
async def test_an_import_takes_effect_once(gushi: Node, idempotent: bool) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    body = _csv(branch, 3)
    headers = {"Content-Type": "text/csv"}
    if idempotent:
        headers["Idempotency-Key"] = f"import-{uuid4()}"

    async def one() -> httpx.Response:
        return await gushi.call("POST", "/v1/members/import", content=body, headers=dict(headers))

    responses = await asyncio.gather(*(one() for _ in range(TIMES)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, [r.text for r in responses]
    assert await count(gushi, "SELECT count(*) FROM members") == 3
    accepted = sum(r.json()["accepted"] for r in responses if r.status_code == 200)
    if idempotent:  # the first report, replayed; or "still running" while it runs
        assert {r.json()["accepted"] for r in responses if r.status_code == 200} == {3}
        again = await one()
        assert again.status_code == 200
        assert again.json()["accepted"] == 3
        other = await gushi.call(
            "POST", "/v1/members/import", content=_csv(branch, 4), headers=dict(headers)
        )
        assert other.status_code == 422
        assert other.json()["field"] == "Idempotency-Key"
    else:
        assert accepted == 3
    audited = await count(gushi, "SELECT count(*) FROM audit_log WHERE action = 'member.import'")
    assert audited >= 1


async def test_imports_of_the_same_rows_at_once_never_deadlock(gushi: Node) -> None:
    """Each import draws its own ids for rows without a national ID; the rows still go in
    in one order (the unique rules' keys), so concurrent imports wait, never deadlock."""
    branch = await gushi.org("陈集镇第二党支部")
    body = _csv(branch, 60)
    headers = {"Content-Type": "text/csv"}
    for _ in range(3):
        responses = await asyncio.gather(*(
            gushi.call("POST", "/v1/members/import", content=body, headers=headers)
            for _ in range(10)
        ))  # fmt: skip
        assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    assert await count(gushi, "SELECT count(*) FROM members WHERE org_id = $1", branch) == 60


async def test_the_open_statuses_of_the_index_are_the_contracts(gushi: Node) -> None:
    """The unique index names the open origin statuses in SQL; they must be the contracts'."""
    sql = (MIGRATIONS / "0003_one_effect_per_request.sql").read_text()
    match = re.search(r"movements_one_open_per_member.*?origin_status IN \(([^)]*)\)", sql, re.S)
    assert match is not None
    in_sql = {s.strip().strip("'") for s in match.group(1).split(",")}
    assert in_sql == {s.value for s in OPEN_ORIGIN_STATUSES}
    del gushi  # the node's migrations applied the file: the fixture proves it loads
