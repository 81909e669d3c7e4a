"""Hostile input on a real registry: every endpoint that takes text, dates or codes answers a
4xx in the one error body, naming the field, and never a 5xx; nothing is changed.

The table drives one node pair (Gushi and Chaoyang, each the other's partner) through NUL
and other control characters, invalid UTF-8, dates in year 1 and 9999, ends before starts,
bodies nested 100,000 deep or 13 MB large, division codes that do not exist and a real one
that is not a partner. The test clock stands at 2026-03-01; the movements left on
2026-02-20.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from yixian.contracts import OriginGroup
from yixian.localstack.sinks import free_port
from yixian.registry.bootstrap import build_app
from yixian.runtime.http_limits import MAX_JSON_BYTES

from .conftest import CHAOYANG, Node, outflow

pytestmark = pytest.mark.integration

NUL, ESC, BELL = "\x00", "\x1b", "\x07"
NANJING_GULOU = "320106"  # a real county-level division, but no partner of Gushi
DEEP = "[" * 30_000 + "]" * 30_000  # under the size limit, far deeper than any parser goes
DEEPER = "[" * 100_000 + "]" * 100_000


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Any = None
    """A JSON value, or bytes sent as they are."""
    status: int = 422
    field: str | None = None
    node: str = "gushi"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class World:
    gushi: Node
    chaoyang: Node
    branch: UUID
    free_member: UUID
    expected: UUID
    """A movement Chaoyang expects (at Gushi: awaiting check-in)."""
    active: UUID
    """A movement checked in at Chaoyang."""


@pytest.fixture
async def world(gushi: Node, chaoyang: Node) -> World:
    branch = await gushi.org("陈集镇第一党支部")
    ids = []
    for name in ("张建国", "李卫东"):
        member = await gushi.member(branch, name)
        created = await gushi.post("/v1/movements", outflow(member), expect=201)
        ids.append(UUID(created["movement_id"]))
        group = (await gushi.get(f"/v1/movements/{created['movement_id']}"))["origin_group"]
        await chaoyang.receive_origin_group(OriginGroup.model_validate(group))
    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")
    await chaoyang.post(
        f"/v1/movements/{ids[1]}/check-in", {"host_org_id": str(committee)}, expect=200
    )
    await chaoyang.post(
        f"/v1/movements/{ids[1]}/participations",
        {
            "participation_id": "1c2d3e4f-0000-4000-8000-000000000001",
            "kind": "theme_day",
            "title": "二月主题党日",
            "attended_at": "2026-02-27T01:00:00Z",
        },
        expect=201,
    )
    free_member = await gushi.member(branch, "王秀英")
    return World(gushi, chaoyang, branch, free_member, ids[0], ids[1])


def cases(w: World) -> list[Case]:
    org = {"name": "新支部", "kind": "branch", "parent_id": str(w.gushi.root_id)}
    committee = {**org, "kind": "working_committee"}
    member = {"org_id": str(w.branch), "name": "赵六", "joined_on": "2008-07-01"}
    move = outflow(w.free_member)
    dest = move["destination"]
    activity = {
        "org_id": str(w.branch),
        "kind": "theme_day",
        "title": "主题党日",
        "starts_at": "2026-04-01T01:00:00Z",
        "location": "党员活动室",
    }
    expected, active = f"/v1/movements/{w.expected}", f"/v1/movements/{w.active}"
    participation = {
        "participation_id": "0b5e0c3a-9a52-4b7e-8f3c-2d1e4f6a7b8c",
        "kind": "theme_day",
        "title": "主题党日",
        "attended_at": "2026-02-28T01:00:00Z",
    }
    return [
        # -- organizations
        Case("org name NUL", "POST", "/v1/organizations", {**org, "name": f"支部{NUL}"}, field="name"),
        Case("org name BEL", "POST", "/v1/organizations", {**org, "name": f"支{BELL}部"}, field="name"),
        Case("org name newline", "POST", "/v1/organizations", {**org, "name": "支\n部"}, field="name"),
        Case("secretary ESC", "POST", "/v1/organizations", {**org, "secretary_name": f"{ESC}[31m"}, field="secretary_name"),
        Case("contact phone NUL", "POST", "/v1/organizations", {**org, "contact_phone": f"138{NUL}"}, field="contact_phone"),
        Case("webhook NUL", "POST", "/v1/organizations", {**org, "webhook_url": f"https://x.example/{NUL}"}, field="webhook_url"),
        Case("committee in 419999", "POST", "/v1/organizations", {**committee, "jurisdiction": "419999"}, field="jurisdiction"),
        Case("committee in 710000", "POST", "/v1/organizations", {**committee, "jurisdiction": "710000"}, field="jurisdiction"),
        # -- members
        Case("member name NUL", "POST", "/v1/members", {**member, "name": f"赵{NUL}六"}, field="name"),
        Case("member phone DEL", "POST", "/v1/members", {**member, "phone": "138\x7f"}, field="phone"),
        Case("joined in year 1", "POST", "/v1/members", {**member, "joined_on": "0001-01-01"}, field="joined_on"),
        Case("joined in 9999", "POST", "/v1/members", {**member, "joined_on": "9999-12-31"}, field="joined_on"),
        Case("national id NUL", "POST", "/v1/members", {**member, "national_id": f"11010519491231002{NUL}"}, field="national_id"),
        Case("national id in full-width digits", "POST", "/v1/members", {**member, "national_id": "１１０１０５１９４９１２３１００２X"}, field="national_id"),
        Case("national id born 9999-12-31", "POST", "/v1/members", {**member, "national_id": "110105999912310010"}, field="national_id"),
        Case("member name right-to-left override", "POST", "/v1/members", {**member, "name": "赵\u202e六"}, field="name"),
        Case("key with NUL", "POST", "/v1/members", {**member, f"x{NUL}": 1}, field="x\\u0000"),
        Case("key a lone surrogate", "POST", "/v1/members", json.dumps({**member, "\ud800": 1}).encode(), field="body"),  # no key to name
        # -- outflow registration
        Case("place NUL", "POST", "/v1/movements", {**move, "destination": {**dest, "place": f"朝阳{NUL}"}}, field="destination.place"),
        Case("unknown division", "POST", "/v1/movements", {**move, "destination": {**dest, "jurisdiction": "419999"}}, field="destination.jurisdiction"),
        Case("Taiwan province", "POST", "/v1/movements", {**move, "destination": {**dest, "jurisdiction": "710000"}}, field="destination.jurisdiction"),
        Case("not a partner", "POST", "/v1/movements", {**move, "destination": {**dest, "jurisdiction": NANJING_GULOU}}, field="destination.jurisdiction"),
        Case("departure in year 1", "POST", "/v1/movements", {**move, "period": {"departed_on": "0001-01-01"}}, field="period.departed_on"),
        Case("departure in 9999", "POST", "/v1/movements", {**move, "period": {"departed_on": "9999-12-31"}}, field="period.departed_on"),
        Case("return expected in 9999", "POST", "/v1/movements", {**move, "period": {"departed_on": "2026-02-20", "expected_return_on": "9999-12-31"}}, field="period.expected_return_on"),
        Case("return before departure", "POST", "/v1/movements", {**move, "period": {"departed_on": "2026-02-20", "expected_return_on": "2026-01-01"}}, field="period"),
        Case("address NUL", "POST", "/v1/movements", {**move, "contact": {"address": f"北京{NUL}"}}, field="contact.address"),
        Case("contact phone ESC", "POST", "/v1/movements", {**move, "contact": {"phone": f"{ESC}138"}}, field="contact.phone"),
        Case("certificate NUL", "POST", "/v1/movements", {**move, "certificate": {"number": f"LD{NUL}", "issued_on": "2026-02-18"}}, field="certificate"),
        Case("certificate in 9999", "POST", "/v1/movements", {**move, "certificate": {"number": "LD-1", "issued_on": "9999-12-31"}}, field="certificate"),
        Case("certificate typed by hand", "POST", "/v1/movements", {**move, "certificate": {"number": "411525-2026-000001", "issued_on": "2026-02-18"}}, field="certificate"),
        Case("certificate a number alone", "POST", "/v1/movements", {**move, "certificate": "411525-2026-000001"}, field="certificate"),
        Case("contact empty", "POST", "/v1/movements", {**move, "contact": {}}, field="contact"),
        Case("contact all null", "POST", "/v1/movements", {**move, "contact": {"phone": None, "email": None, "address": None}}, field="contact"),
        Case("contact missing", "POST", "/v1/movements", {k: v for k, v in move.items() if k != "contact"}, field="contact"),
        Case("reason missing", "POST", "/v1/movements", {k: v for k, v in move.items() if k != "reason"}, field="reason"),
        Case("reason other without text", "POST", "/v1/movements", {**move, "reason": {"kind": "other"}}, field="reason"),
        Case("reason other with blank text", "POST", "/v1/movements", {**move, "reason": {"kind": "other", "text": "  "}}, field="reason.text"),
        Case("reason kind unknown", "POST", "/v1/movements", {**move, "reason": {"kind": "holiday"}}, field="reason.kind"),
        Case("reason text NUL", "POST", "/v1/movements", {**move, "reason": {"kind": "work", "text": f"务工{NUL}"}}, field="reason.text"),
        Case("reason a bare string", "POST", "/v1/movements", {**move, "reason": "work"}, field="reason"),
        Case("relocate contact empty", "POST", f"{expected}/relocate", {"destination": {**dest, "jurisdiction": "110114"}, "departed_on": "2026-02-28", "contact": {}}, field="contact"),
        Case("member id NUL", "POST", "/v1/movements", {**move, "member_id": NUL}, field="member_id"),
        # -- the origin's steps
        Case("details place NUL", "POST", f"{expected}/details", {"place": f"x{NUL}"}, field="place"),
        Case("details departure 9999", "POST", f"{expected}/details", {"period": {"departed_on": "9999-12-31"}}, field="period.departed_on"),
        Case("relocate unknown division", "POST", f"{expected}/relocate", {"destination": {**dest, "jurisdiction": "419999"}, "departed_on": "2026-02-28"}, field="destination.jurisdiction"),
        Case("relocate not a partner", "POST", f"{expected}/relocate", {"destination": {**dest, "jurisdiction": NANJING_GULOU}, "departed_on": "2026-02-28"}, field="destination.jurisdiction"),
        Case("relocate in year 1", "POST", f"{expected}/relocate", {"destination": {**dest, "jurisdiction": "110114"}, "departed_on": "0001-01-01"}, field="departed_on"),
        Case("relocate before departure", "POST", f"{expected}/relocate", {"destination": {**dest, "jurisdiction": "110114"}, "departed_on": "2026-01-01"}, field="departed_on"),
        Case("return in 9999", "POST", f"{expected}/return", {"returned_on": "9999-12-31"}, field="returned_on"),
        Case("return tomorrow", "POST", f"{expected}/return", {"returned_on": "2026-03-02"}, field="returned_on"),
        Case("return before departure", "POST", f"{expected}/return", {"returned_on": "2026-02-01"}, field="returned_on"),
        Case("transfer note NUL", "POST", f"{expected}/transfer/request", {"note": f"n{NUL}"}, field="note"),
        Case("origin lost since 9999", "POST", f"{expected}/origin/lost-contact", {"since": "9999-12-31"}, field="since"),
        Case("origin lost before departure", "POST", f"{expected}/origin/lost-contact", {"since": "2026-01-01"}, field="since"),
        Case("suspension without reason", "POST", f"{expected}/suspend", {"force": True}, field="reason"),
        Case("suspension reason ESC", "POST", f"{expected}/suspend", {"reason": f"{ESC}[2J"}, field="reason"),
        Case("suspension force a word", "POST", f"{expected}/suspend", {"reason": "失联", "force": "maybe"}, field="force"),
        Case("reinstatement reason NUL", "POST", f"{expected}/reinstate", {"reason": f"r{NUL}"}, field="reason"),
        Case("removal unknown field", "POST", f"{expected}/remove", {"reason": "r", "forced": True}, field="forced"),
        Case("report in 9999", "POST", f"{expected}/report", {"reported_on": "9999-12-31"}, field="reported_on"),
        Case("report before departure", "POST", f"{expected}/report", {"reported_on": "2026-01-01"}, field="reported_on"),
        # -- the host's steps
        Case("check-in before year 1 in UTC", "POST", f"{expected}/check-in", {"host_org_id": str(w.chaoyang.root_id), "checked_in_at": "0001-01-01T00:00:00+14:00"}, field="checked_in_at", node="chaoyang"),
        Case("check-in in 1990", "POST", f"{expected}/check-in", {"host_org_id": str(w.chaoyang.root_id), "checked_in_at": "1990-01-01T00:00:00Z"}, field="checked_in_at", node="chaoyang"),
        Case("check-in in 9999", "POST", f"{expected}/check-in", {"host_org_id": str(w.chaoyang.root_id), "checked_in_at": "9999-12-31T23:59:59Z"}, field="checked_in_at", node="chaoyang"),
        Case("reject reason NUL", "POST", f"{expected}/reject", {"reason": f"r{NUL}"}, field="reason", node="chaoyang"),
        Case("reject reason ESC", "POST", f"{expected}/reject", {"reason": f"{ESC}[2J"}, field="reason", node="chaoyang"),
        Case("forward to 419999", "POST", f"{expected}/forward", {"forwarded_to": "419999", "reason": "moved"}, field="forwarded_to", node="chaoyang"),
        Case("forward reason NUL", "POST", f"{expected}/forward", {"forwarded_to": "110114", "reason": NUL}, field="reason", node="chaoyang"),
        Case("lost since year 1", "POST", f"{active}/lost-contact", {"since": "0001-01-01"}, field="since", node="chaoyang"),
        Case("lost before departure", "POST", f"{active}/lost-contact", {"since": "2026-01-01"}, field="since", node="chaoyang"),
        Case("lost since 9999", "POST", f"{active}/lost-contact", {"since": "9999-12-31"}, field="since", node="chaoyang"),
        Case("attendance title NUL", "POST", f"{active}/participations", {**participation, "title": f"t{NUL}"}, field="title", node="chaoyang"),
        Case("attended in 1990", "POST", f"{active}/participations", {**participation, "attended_at": "1990-01-01T00:00:00Z"}, field="attended_at", node="chaoyang"),
        Case("attended past 9999 in UTC", "POST", f"{active}/participations", {**participation, "attended_at": "9999-12-31T23:59:59-14:00"}, field="attended_at", node="chaoyang"),
        Case("transfer reply NUL", "POST", f"{active}/transfer/reply", {"decision": "rejected", "reason": NUL}, field="reason", node="chaoyang"),
        # -- activities
        Case("activity title NUL", "POST", "/v1/activities", {**activity, "title": f"主题{NUL}"}, field="title"),
        Case("activity location VT", "POST", "/v1/activities", {**activity, "location": "活动\x0b室"}, field="location"),
        Case("activity ends before it starts", "POST", "/v1/activities", {**activity, "ends_at": "2026-03-31T01:00:00Z"}, field="ends_at"),
        Case("activity in 9999", "POST", "/v1/activities", {**activity, "starts_at": "9999-12-31T00:00:00Z"}, field="starts_at"),
        Case("activity before year 1", "POST", "/v1/activities", {**activity, "starts_at": "0001-01-01T00:00:00+14:00"}, field="starts_at"),
        # -- queries
        Case("audit target NUL", "GET", "/v1/audit?target=%00", field="target"),
        Case("audit target ESC", "GET", "/v1/audit?target=%1b", field="target"),
        Case("audit actor NUL", "GET", "/v1/audit?actor=key:%00", field="actor"),
        Case("audit since NUL", "GET", "/v1/audit?since=%00", field="since"),
        Case("audit since without a zone", "GET", "/v1/audit?since=2026-03-01T00:00:00", field="since"),
        Case("audit since year 1", "GET", "/v1/audit?since=0001-01-01T00:00:00Z", field="since"),
        Case("audit until 9999", "GET", "/v1/audit?until=9999-12-31T00:00:00Z", field="until"),
        Case("audit until before since", "GET", "/v1/audit?since=2026-03-01T00:00:00Z&until=2026-02-01T00:00:00Z", field="until"),
        Case("statistics from after to", "GET", "/v1/statistics?from=2026-03-01&to=2026-02-01", field="to"),
        Case("statistics from year 1", "GET", "/v1/statistics?from=0001-01-01", field="from"),
        Case("statistics to 9999", "GET", "/v1/statistics?to=9999-12-31", field="to"),
        Case("statistics from NUL", "GET", "/v1/statistics?from=%00", field="from"),
        Case("statistics to not a date", "GET", "/v1/statistics?to=2026-13-01", field="to"),
        Case("statistics group unknown", "GET", "/v1/statistics?group_by=county", field="group_by"),
        Case("statistics partner unknown", "GET", f"/v1/statistics?partner={NANJING_GULOU}", field="partner"),
        Case("statistics partner itself", "GET", "/v1/statistics?partner=411525", field="partner"),
        Case("statistics partner NUL", "GET", "/v1/statistics?partner=11010%00", field="partner"),
        Case("statistics org outside", "GET", "/v1/statistics?org_id=00000000-0000-4000-8000-000000000000", status=404, field="org_id"),
        Case("queues kind unknown", "GET", "/v1/queues?queue=later", field="queue"),
        Case("queues partner unknown", "GET", f"/v1/queues?partner={NANJING_GULOU}", field="partner"),
        Case("queues partner NUL", "GET", "/v1/queues?partner=%00", field="partner"),
        Case("queues partner letters", "GET", "/v1/queues?partner=abcdef", field="partner"),
        Case("movement id not a uuid", "GET", "/v1/movements/not-a-uuid", field="movement_id"),
        Case("movement id NUL", "GET", "/v1/movements/%00", field="movement_id"),
        Case("step on movement id NUL", "POST", "/v1/movements/%00/cancel", {}, field="movement_id"),
        Case("present of org id NUL", "GET", "/v1/organizations/%00/present", field="org_id"),
        Case("revoke key id NUL", "POST", "/v1/api-keys/%00/revoke", {}, field="key_id"),
        Case("attendance id reused for another attendance", "POST", f"{active}/participations", {**participation, "participation_id": "1c2d3e4f-0000-4000-8000-000000000001", "title": "另一次活动"}, field="participation_id", node="chaoyang"),
        # -- members: the search, a member's detail, a contact changed field by field
        Case("search name NUL", "GET", "/v1/members?name=%00", field="name"),
        Case("search name ESC", "GET", "/v1/members?name=%1b", field="name"),
        Case("search name invalid UTF-8", "GET", "/v1/members?name=%ff", field="name"),
        Case("search name oversize", "GET", f"/v1/members?name={'x' * 101}", field="name"),
        Case("search phone NUL", "GET", "/v1/members?phone=138%00", field="phone"),
        Case("search phone letters", "GET", "/v1/members?phone=abcd", field="phone"),
        Case("search phone full-width", "GET", "/v1/members?phone=%EF%BC%91%EF%BC%93%EF%BC%98%EF%BC%90", field="phone"),
        Case("search national id NUL", "GET", "/v1/members?national_id=11010519491231002%00", field="national_id"),
        Case("search national id checksum", "GET", "/v1/members?national_id=110105194912310021", field="national_id"),
        Case("search national id short", "GET", "/v1/members?national_id=1101", field="national_id"),
        Case("search org id not a uuid", "GET", "/v1/members?org_id=%00", field="org_id"),
        Case("search org id unknown", "GET", "/v1/members?org_id=00000000-0000-4000-8000-000000000000", status=404, field="org_id"),
        Case("search status unknown", "GET", "/v1/members?status=lost", field="status"),
        Case("search limit 201", "GET", "/v1/members?limit=201", field="limit"),
        Case("search limit 0", "GET", "/v1/members?limit=0", field="limit"),
        Case("search cursor garbage", "GET", "/v1/members?cursor=%00%ff", field="cursor"),
        Case("search cursor lone surrogate", "GET", "/v1/members?cursor=WyJcdWQ4MDAiLCAiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0", field="cursor"),
        Case("search cursor invalid UTF-8", "GET", "/v1/members?cursor=WyL_IiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd", field="cursor"),
        Case("search cursor NUL in name", "GET", "/v1/members?cursor=WyJhXHUwMDAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd", field="cursor"),
        Case("search cursor oversize", "GET", f"/v1/members?cursor={'A' * 1001}", field="cursor"),
        Case("member id not a uuid", "GET", "/v1/members/not-a-uuid", field="member_id"),
        Case("member id NUL", "GET", "/v1/members/%00", field="member_id"),
        Case("member unknown", "GET", "/v1/members/00000000-0000-4000-8000-000000000000", status=404, field="member_id"),
        Case("patch member unknown", "PATCH", "/v1/members/00000000-0000-4000-8000-000000000000", {"contact": {"phone": "138"}}, status=404, field="member_id"),
        Case("patch member id NUL", "PATCH", "/v1/members/%00", {"contact": {"phone": "138"}}, field="member_id"),
        Case("patch phone NUL", "PATCH", f"/v1/members/{w.free_member}", {"contact": {"phone": f"138{NUL}"}}, field="contact.phone"),
        Case("patch phone empty", "PATCH", f"/v1/members/{w.free_member}", {"contact": {"phone": " "}}, field="contact.phone"),
        Case("patch email not one", "PATCH", f"/v1/members/{w.free_member}", {"contact": {"email": "x@"}}, field="contact.email"),
        Case("patch address ESC", "PATCH", f"/v1/members/{w.free_member}", {"contact": {"address": f"北京{ESC}"}}, field="contact.address"),
        Case("patch unknown contact field", "PATCH", f"/v1/members/{w.free_member}", {"contact": {"fax": "1"}}, field="contact.fax"),
        Case("patch name", "PATCH", f"/v1/members/{w.free_member}", {"name": "x", "contact": {"phone": "1"}}, field="name"),
        Case("patch no contact", "PATCH", f"/v1/members/{w.free_member}", {}, field="contact"),
        Case("patch empty contact", "PATCH", f"/v1/members/{w.free_member}", {"contact": {}}, field="contact"),
        Case("patch removes the last contact", "PATCH", f"/v1/members/{w.free_member}", {"contact": {"phone": None}}, field="contact.phone"),
        Case("patch invalid UTF-8", "PATCH", f"/v1/members/{w.free_member}", b'{"contact": {"phone": "\xff"}}', status=400, field="body"),
        Case("patch 70 KB", "PATCH", f"/v1/members/{w.free_member}", json.dumps({"contact": {"address": "x" * 70_000}}).encode(), status=413, field="body"),
        Case("patch not JSON", "PATCH", f"/v1/members/{w.free_member}", b"phone=1", status=415, field="Content-Type", headers=(("Content-Type", "text/plain"),)),
        Case("details contact NUL", "POST", f"{expected}/details", {"contact": {"phone": NUL}}, field="contact.phone"),
        # -- the body as a whole
        Case("malformed JSON", "POST", "/v1/members", b'{"name": ', status=400, field="body"),
        Case("invalid UTF-8", "POST", "/v1/members", b'{"name": "\xff\xfe"}', status=400, field="body"),
        Case("nested 30,000 deep", "POST", "/v1/members", DEEP.encode(), status=400, field="body"),
        Case("nested 100,000 deep", "POST", "/v1/members", DEEPER.encode(), status=413, field="body"),
        Case("not JSON", "POST", "/v1/members", b"name=x", status=415, field="Content-Type", headers=(("Content-Type", "application/x-www-form-urlencoded"),)),
        Case("unknown route", "GET", "/v1/nowhere", status=404),
        Case("unknown method", "DELETE", "/v1/members", status=405),
    ]  # fmt: skip


async def test_hostile_input_gets_a_4xx_naming_the_field(world: World) -> None:
    nodes = {"gushi": world.gushi, "chaoyang": world.chaoyang}
    before = {name: len(await node.outbox()) for name, node in nodes.items()}
    wrong: list[str] = []
    for case in cases(world):
        node = nodes[case.node]
        headers = dict(case.headers)
        if isinstance(case.body, bytes):
            headers.setdefault("Content-Type", "application/json")
            kwargs: dict[str, Any] = {"content": case.body}
        else:
            kwargs = {} if case.body is None else {"json": case.body}
        response = await node.call(case.method, case.path, headers=headers, **kwargs)
        body = response.json()
        got = (response.status_code, body.get("field"))
        if got != (case.status, case.field) or not {"error", "message"} <= set(body):
            wrong.append(f"{case.name}: {got} {body}, wanted {(case.status, case.field)}")
    assert wrong == []
    # nothing was accepted: no event, and the movements are as they were
    assert {name: len(await node.outbox()) for name, node in nodes.items()} == before
    assert (await world.gushi.get(f"/v1/movements/{world.expected}"))["state"] == (
        "awaiting_check_in"
    )
    assert (await world.chaoyang.get(f"/v1/movements/{world.active}"))["state"] == "active"
    member = await world.gushi.get(f"/v1/members/{world.free_member}")
    assert (member["phone"], member["email"], member["address"], member["changes"][0]["action"]) == (
        None, None, None, "member.add",
    )  # fmt: skip


async def test_a_validation_error_lists_every_field_and_the_first_in_the_message(
    gushi: Node,
) -> None:
    body = {"org_id": "x", "name": f"a{NUL}", "joined_on": "0001-13-01"}
    response = await gushi.call("POST", "/v1/members", json=body, expect=422)
    error = response.json()
    assert error["error"] == "invalid_request"
    assert {e["field"] for e in error["errors"]} == {"org_id", "name", "joined_on"}
    assert error["message"].startswith(f"{error['field']}: ")
    nul = next(e for e in error["errors"] if e["field"] == "name")
    assert nul["reason"] == "must not contain the control character U+0000 (at character 2)"


async def test_malformed_json_says_where(gushi: Node) -> None:
    response = await gushi.call(
        "POST",
        "/v1/members",
        content=b'{\n  "name": "x",\n  oops\n}',
        headers={"Content-Type": "application/json"},
        expect=400,
    )
    assert response.json() == {
        "error": "malformed_body",
        "message": "the body is not valid JSON: Expecting property name enclosed in double"
        " quotes at line 3, column 3",
        "field": "body",
    }


async def test_a_13_mb_body_is_refused_before_it_is_read(gushi: Node) -> None:
    big = json.dumps({"name": "x" * 13_000_000}).encode()
    started = time.monotonic()
    response = await gushi.call(
        "POST", "/v1/members", content=big, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["field"]) == (413, "body")
    assert response.json()["error"] == "body_too_large"
    assert len(response.content) < 1000
    assert time.monotonic() - started < 2

    sent = 0

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        nonlocal sent
        for start in range(0, len(big), 16_384):
            sent += 16_384
            yield big[start : start + 16_384]

    response = await gushi.call(
        "POST", "/v1/members", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["field"]) == (413, "body")
    assert sent <= MAX_JSON_BYTES + 2 * 16_384, "no more than the limit was read"


async def test_an_import_rejects_hostile_lines_one_by_one(gushi: Node) -> None:
    branch = str(await gushi.org("支部"))

    def row(**changes: str) -> bytes:
        fields = {"org_id": branch, "name": "周文", "joined_on": "2010-07-01", **changes}
        return json.dumps(fields).encode()

    lines = [
        row(name="周一"),  # 1: accepted
        row(name=f"周{NUL}二"),  # 2: NUL in a field
        DEEP.encode(),  # 3: nested 30,000 deep
        DEEPER.encode(),  # 4: nested 100,000 deep, and longer than a line may be
        b'{"org_id": "' + branch.encode() + b'", "name": "\xff", "joined_on": "2010-07-01"}',
        row(joined_on="0001-01-01"),  # 6
        row(phone=f"{ESC}138"),  # 7
        b'{"org_id": \x00}',  # 8: a raw NUL byte
        row(name="周九"),  # 9: accepted
    ]
    response = await gushi.call(
        "POST",
        "/v1/members/import",
        content=b"\n".join(lines),
        headers={"Content-Type": "application/x-ndjson"},
        expect=200,
    )
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (2, 7)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (2, "name"),
        (3, "(row)"),
        (4, "(row)"),
        (5, "(row)"),
        (6, "joined_on"),
        (7, "phone"),
        (8, "(row)"),
    ]
    reasons = {e["line"]: e["reason"] for e in report["errors"]}
    assert reasons[3] == "is nested too deeply"
    assert reasons[4] == "is longer than 65536 bytes"
    assert reasons[5].startswith("is not valid UTF-8")

    csv = f'org_id,name,joined_on\n{branch},吴{NUL}十,2010-07-01\n{branch},"郑{NUL}",2010-07-01\n'
    response = await gushi.call(
        "POST",
        "/v1/members/import",
        content=csv.encode(),
        headers={"Content-Type": "text/csv"},
        expect=200,
    )
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [
        (2, "name"),
        (3, "name"),  # quoted or not
    ]


async def test_the_openapi_document_declares_the_error_body(gushi: Node) -> None:
    document = (await gushi.call("GET", "/openapi.json", expect=200)).json()
    error = document["components"]["schemas"]["Error"]
    assert {"error", "message", "field"} <= set(error["properties"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    undeclared = [
        f"{method.upper()} {path} {status}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in ("400", "401", "403", "404", "409", "413", "422")
        if operation["responses"].get(status, {}).get("content", {}).get("application/json", {})
        .get("schema") != {"$ref": "#/components/schemas/Error"}
    ]  # fmt: skip
    assert undeclared == []


async def test_a_partner_destination_is_accepted(gushi: Node) -> None:
    """The control case: a destination the node is linked to is registered."""
    member = await gushi.member(await gushi.org("支部"))
    created = await gushi.post("/v1/movements", outflow(member, host=CHAOYANG), expect=201)
    assert created["host"] == CHAOYANG


async def test_a_database_that_does_not_answer_is_a_503_to_send_again(gushi: Node) -> None:
    """The node's database refuses connections (restarting): a request is answered 503 with
    the one body and Retry-After, not a bare 500, and nothing is recorded; sent again once
    the database answers, it takes effect."""
    down = await asyncpg.create_pool(
        f"postgresql://yixian@127.0.0.1:{free_port()}/nowhere", min_size=0, max_size=2
    )
    app = build_app(gushi.settings, down, gushi.clock)
    body = {"name": "城关镇党支部", "kind": "branch", "parent_id": str(gushi.root_id)}
    headers = {"Authorization": f"Bearer {gushi.operator_key}", "Idempotency-Key": "branch-1"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gushi"
        ) as restarting:
            refused = await restarting.post("/v1/organizations", json=body, headers=headers)
    finally:
        await down.close()
    assert refused.status_code == 503, refused.text
    assert refused.json() == {
        "error": "unavailable",
        "message": "the node's database does not answer now; send the request again shortly",
    }
    assert refused.headers["Retry-After"] == "1"
    await gushi.call("POST", "/v1/organizations", json=body, headers=headers, expect=201)
    names = [o["name"] for o in await gushi.get("/v1/organizations")]
    assert names.count("城关镇党支部") == 1
