"""The console's routes on a real node (PostgreSQL, the registry's, sync's and notify's
APIs in-process): signing in and out, CSRF refusals, role refusals as audited 403 pages,
a refusal of the registry drawn beside the input it names, hostile input, dead letters."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from yixian.console.entrypoints.routers import work
from yixian.contracts import TopicNames
from yixian.sync.adapters.store import SyncStore
from yixian.sync.service_layer.repositories import Inbound

from .conftest import CHAOYANG, GUSHI, Browser, ConsoleNode

pytestmark = pytest.mark.integration


async def test_sign_in_sign_out_and_a_revoked_key(node: ConsoleNode, browser: Browser) -> None:
    refused = await browser.sign_in("yx_" + "0" * 32 + "_" + "x" * 43)
    assert refused.status_code == 401
    assert "密钥无效或已被吊销" in refused.text
    denied = await node.audit(action="console.sign_in", outcome="denied")
    assert denied[-1]["detail"]["presented_key_id"] == "00000000-0000-0000-0000-000000000000"

    key, key_id = await node.key("secretary")
    signed = await browser.sign_in(key)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/queues"
    cookie = signed.headers["set-cookie"]
    assert "yixian_console=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert key not in cookie  # the cookie carries a token, never the key
    page = await browser.get("/queues")
    assert page.status_code == 200
    assert 'data-queue="to_do"' in page.text
    assert "工作队列" in page.text
    assert await node.audit(action="console.sign_in", outcome="ok", actor=f"key:{key_id}")

    out = await browser.post("/sign-out")
    assert out.status_code == 303
    assert await node.audit(action="console.sign_out", actor=f"key:{key_id}")
    stale = await browser.post("/sign-out")  # the old page's form, after signing out
    assert stale.status_code == 303
    assert await node.audit(action="console POST /sign-out", actor="anonymous", outcome="refused")
    again = await browser.get("/queues")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/sign-in?next=")

    await browser.sign_in(key)
    await node.api("POST", f"/v1/api-keys/{key_id}/revoke")
    revoked = await browser.get("/queues")
    assert revoked.status_code == 303
    assert "/sign-in" in revoked.headers["location"]


async def test_forms_without_their_csrf_token_are_refused_and_audited(
    node: ConsoleNode, browser: Browser
) -> None:
    page = await browser.http.get("/sign-in")
    assert "sign_in_token" in page.text
    forged = await browser.http.post("/sign-in", data={"api_key": node.operator_key})
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    assert "yixian_console=" not in forged.headers.get("set-cookie", "")

    key, key_id = await node.key("secretary")
    await browser.sign_in(key)
    branch = await node.api(
        "POST", "/v1/organizations", {"name": "城关镇党支部", "kind": "branch",
                                      "parent_id": str(node.root_id)},
    )  # fmt: skip
    member = await node.api(
        "POST",
        "/v1/members",
        {"org_id": branch["org_id"], "name": "孙立", "joined_on": "2005-07-01"},
    )
    form = {"destination.jurisdiction": CHAOYANG, "destination.place": "朝阳区",
            "period.departed_on": "2026-03-01", "contact.phone": "+86 138 0000 0001",
            "reason.kind": "work"}  # fmt: skip
    without = await browser.post(f"/members/{member['member_id']}/register", form, csrf=False)
    assert without.status_code == 403
    assert "CSRF" in without.text
    wrong = await browser.post(
        f"/members/{member['member_id']}/register", {**form, "csrf": "forged"}, csrf=False
    )
    assert wrong.status_code == 403
    refusals = await node.audit(actor=f"key:{key_id}", outcome="denied")
    assert len(refusals) == 2
    assert all("CSRF" in r["detail"]["reason"] for r in refusals)
    assert not await node.audit(action="movement.register")  # nothing reached the registry


async def test_each_role_sees_its_own_screens_and_a_refusal_is_an_audited_403(
    node: ConsoleNode, browser: Browser
) -> None:
    secretary, secretary_id = await node.key("secretary")
    await browser.sign_in(secretary)
    queues = await browser.get("/queues")
    assert 'data-area="work"' in queues.text
    assert 'data-area="node"' not in queues.text
    assert 'href="/audit"' not in queues.text
    for path in ("/node", "/node/dead-letters", "/node/links", "/trace", "/events", "/audit"):
        refused = await browser.get(path)
        assert refused.status_code == 403, path
        assert "无权访问" in refused.text
    denied = await node.audit(actor=f"key:{secretary_id}", outcome="denied")
    assert [r["action"] for r in denied] == [
        "console GET /node", "console GET /node/dead-letters", "console GET /node/links",
        "console GET /trace", "console GET /events", "console GET /audit",
    ]  # fmt: skip
    posted = await browser.post("/node/dead-letters/1/retry")
    assert posted.status_code == 403

    auditor, _ = await node.key("auditor")
    await browser.sign_in(auditor)
    assert (await browser.get("/node")).status_code == 403
    audit = await browser.get("/audit")
    assert audit.status_code == 200
    assert 'data-action="console.sign_in"' in audit.text
    trace = await browser.get("/trace")
    assert trace.status_code == 200

    await browser.sign_in(node.operator_key)
    overview = await browser.get("/node")
    assert overview.status_code == 200
    assert 'data-service="registry"' in overview.text
    assert 'data-partner="110105"' in overview.text
    links = await browser.get("/node/links")
    assert links.status_code == 200
    assert "请求补发" in links.text


async def test_a_refusal_of_the_registry_is_shown_beside_the_input_it_names(
    node: ConsoleNode, browser: Browser
) -> None:
    branch = await node.api(
        "POST", "/v1/organizations", {"name": "陈集镇第一党支部", "kind": "branch",
                                      "parent_id": str(node.root_id)},
    )  # fmt: skip
    member = await node.api(
        "POST",
        "/v1/members",
        {"org_id": branch["org_id"], "name": "张建国", "joined_on": "2008-07-01"},
    )
    key, _ = await node.key("secretary", branch["org_id"])
    await browser.sign_in(key)
    page = await browser.get(f"/members/{member['member_id']}/register")
    assert page.status_code == 200
    assert 'data-field="destination.place"' in page.text

    no_place = {"destination.jurisdiction": CHAOYANG, "period.departed_on": "2026-03-01",
                "contact.phone": "+86 138 0000 0002", "reason.kind": "work",
                "idempotency_key": "console-test-1"}  # fmt: skip
    refused = await browser.post(f"/members/{member['member_id']}/register", no_place)
    assert refused.status_code == 422
    assert 'class="field has-error" data-field="destination.place"' in refused.text
    assert 'id="f-destination-place-error"' in refused.text
    assert 'value="+86 138 0000 0002"' in refused.text  # what was typed is kept

    no_contact = {**no_place, "destination.place": "北京市朝阳区", "contact.phone": "",
                  "idempotency_key": "console-test-2"}  # fmt: skip
    refused = await browser.post(
        f"/members/{member['member_id']}/register", no_contact, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 422
    assert refused.text.lstrip().startswith("<form")  # htmx gets the form alone
    assert 'class="field has-error" data-field="contact.phone"' in refused.text

    done = await browser.post(
        f"/members/{member['member_id']}/register",
        {**no_place, "destination.place": "北京市朝阳区", "idempotency_key": "console-test-3"},
    )
    assert done.status_code == 303
    movement = await browser.get(done.headers["location"])
    assert movement.status_code == 200
    assert "已办理：外出登记" in movement.text
    assert f"{GUSHI}-" in movement.text  # the certificate this node issued
    movement_id = done.headers["location"].split("/")[2].split("?")[0]

    late = await browser.post(
        f"/movements/{movement_id}/steps/return", {"returned_on": "2020-01-01"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert late.status_code == 422
    assert 'class="field has-error" data-field="returned_on"' in late.text
    form = await browser.get(f"/movements/{movement_id}/steps/suspend")
    assert 'data-field="reason"' in form.text
    out_of_order = await browser.post(
        f"/movements/{movement_id}/steps/suspend", {"reason": "长期失联"}
    )
    assert out_of_order.status_code == 409  # the registry's answer, on the movement page
    assert 'role="alert"' in out_of_order.text
    assert "lost contact" in out_of_order.text

    await browser.sign_in(node.operator_key)  # the trail: the registration and the refusals
    trace = await browser.get(f"/trace?id={movement_id}")
    assert trace.status_code == 200
    assert 'data-step="commit movement.register"' in trace.text
    assert 'data-step="commit movement.return"' in trace.text
    assert '<svg class="timeline"' in trace.text


async def test_hostile_input_gets_a_page_naming_what_is_wrong(
    node: ConsoleNode, browser: Browser
) -> None:
    await browser.sign_in(node.operator_key)
    bad_queue = await browser.get("/queues?queue=everything")
    assert bad_queue.status_code == 422
    assert "queue" in bad_queue.text
    bad_id = await browser.get("/movements/not-a-movement")
    assert bad_id.status_code == 422
    assert "movement_id" in bad_id.text
    unknown = await browser.get("/movements/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    no_step = await browser.get("/movements/00000000-0000-4000-8000-000000000000/steps/fly")
    assert no_step.status_code == 404
    not_utf8 = await browser.http.post(
        "/sign-out",
        content=b"csrf=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
    huge = await browser.http.post(
        "/sign-out", content=b"csrf=" + b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert huge.status_code == 413
    json_body = await browser.http.post("/sign-out", json={"csrf": browser.csrf})
    assert json_body.status_code == 415
    bad_trace = await browser.get("/trace?id=nothing")
    assert bad_trace.status_code == 422
    assert 'data-field="id"' in bad_trace.text
    bad_time = await browser.get("/audit?since=yesterday")
    assert bad_time.status_code == 422
    assert 'data-field="since"' in bad_time.text
    bad_stats = await browser.get("/statistics?from=2026-05-01&to=2026-04-01")
    assert bad_stats.status_code == 422
    assert 'data-field="to"' in bad_stats.text
    replay = await browser.post("/node/links/110105/replay", {"from": "0"})
    assert replay.status_code == 422
    assert 'data-field="from"' in replay.text
    stranger = await browser.post("/node/links/350300/replay", {"from": "1"})
    assert stranger.status_code == 404
    assert "text/html" in stranger.headers["content-type"]


async def test_dead_letters_are_browsed_retried_and_discarded(
    node: ConsoleNode, browser: Browser
) -> None:
    async with node.pool.acquire() as conn:
        store = SyncStore(conn, GUSHI, TopicNames(""))
        for offset in (7, 8):
            record = Inbound(f"yixian.v1.{CHAOYANG}.to.{GUSHI}", 0, offset, b"k", b"not an event")
            await store.dead_letter(record, "not JSON", [], datetime.now(UTC))
    ids = [r["id"] for r in await node.pool.fetch("SELECT id FROM dead_letters ORDER BY id")]
    await browser.sign_in(node.operator_key)
    listed = await browser.get("/node/dead-letters")
    assert all(f'data-dead-letter="{i}"' in listed.text for i in ids)
    shown = await browser.get(f"/node/dead-letters/{ids[0]}")
    assert "not an event" in shown.text
    assert "not JSON" in shown.text

    retried = await browser.post(f"/node/dead-letters/{ids[0]}/retry")
    assert retried.status_code == 303
    after = await browser.get(retried.headers["location"])
    assert "重试结果：dead_letter" in after.text
    assert await node.audit(action="dead_letter.retry", target=f"dead_letter:{ids[0]}")

    no_reason = await browser.post(f"/node/dead-letters/{ids[1]}/discard", {"reason": " "})
    assert no_reason.status_code == 422
    assert 'data-field="reason"' in no_reason.text
    discarded = await browser.post(f"/node/dead-letters/{ids[1]}/discard", {"reason": "对方已修复"})
    assert discarded.status_code == 303
    row = await node.pool.fetchrow(
        "SELECT discarded_at, discard_reason FROM dead_letters WHERE id = $1", ids[1]
    )
    assert row["discarded_at"] is not None
    assert row["discard_reason"] == "对方已修复"
    entry = await node.audit(action="dead_letter.discard")
    assert entry[-1]["detail"]["note"] == "对方已修复"
    listed = await browser.get("/node/dead-letters")
    assert f'data-dead-letter="{ids[1]}"' not in listed.text  # closed ones only with ?all
    assert f'data-dead-letter="{ids[1]}"' in (await browser.get("/node/dead-letters?all=true")).text


async def test_lists_come_a_page_at_a_time(
    node: ConsoleNode, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "PAGE", 2)
    branch = await node.api(
        "POST", "/v1/organizations", {"name": "南大街党支部", "kind": "branch",
                                      "parent_id": str(node.root_id)},
    )  # fmt: skip
    names = ["王伟", "王芳", "王磊"]
    for name in names:
        member = await node.api(
            "POST",
            "/v1/members",
            {"org_id": branch["org_id"], "name": name, "joined_on": "2010-07-01"},
        )
        body = {"member_id": member["member_id"],
                "destination": {"jurisdiction": CHAOYANG, "place": "朝阳区"},
                "period": {"departed_on": "2026-11-20"}, "contact": {"phone": "+86 139 0000 0000"},
                "reason": {"kind": "study"}}  # fmt: skip
        await node.api("POST", "/v1/movements", body)
    for name in ("赵敏", "钱进", "孙立"):
        await node.api(
            "POST",
            "/v1/members",
            {"org_id": branch["org_id"], "name": name, "joined_on": "2010-07-01"},
        )
    await browser.sign_in(node.operator_key)

    first = await browser.get("/members/away?name=王")
    rows = re.findall(r'<tr data-movement="([^"]+)"', first.text)
    assert len(rows) == 2
    following = re.search(r'href="(/members/away\?name=[^"]+&amp;after=[^"]+)"', first.text)
    assert following is not None
    second = await browser.get(following.group(1).replace("&amp;", "&"))
    last = re.findall(r'<tr data-movement="([^"]+)"', second.text)
    assert len(last) == 1
    assert not set(last) & set(rows)
    assert "下一页" not in second.text

    search = await browser.get("/members?name=王", headers={"HX-Request": "true"})
    assert "<html" not in search.text  # htmx asks for the rows alone
    assert search.text.count("data-member=") == 2
    assert "cursor=" in search.text
    present = await browser.get(f"/organizations/{branch['org_id']}/present")
    assert present.text.count("<tr><td>") == 2  # the three at home, a page of two
    assert "after=" in present.text

    stats = await browser.get("/statistics?side=origin")
    assert stats.status_code == 200
    assert stats.text.count('<svg class="chart"') == 4
    assert re.search(r'<g data-label="110105 [^"]*朝阳区" data-value="\d+">', stats.text)
    queues = await browser.get("/queues?queue=waiting")
    assert queues.status_code == 200
    events = await browser.get("/events")
    assert events.status_code == 200  # no topic of this namespace has a record yet

    anti_entropy = await browser.post(f"/node/links/{CHAOYANG}/anti-entropy")
    assert anti_entropy.status_code == 303
    assert await node.audit(action="link.anti_entropy", target=f"link:{CHAOYANG}")
    replay = await browser.post(f"/node/links/{CHAOYANG}/replay", {"from": "3", "to": "5"})
    assert replay.status_code == 303
    asked = await node.audit(action="link.replay_request")
    assert (asked[-1]["detail"]["first"], asked[-1]["detail"]["last"]) == (3, 5)
    requested = await node.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = 'yixian.link.replay_requested.v1'"
    )
    assert requested == 1


async def test_signing_in_never_sends_a_person_to_another_site(
    node: ConsoleNode, browser: Browser
) -> None:
    page = await browser.http.get("/sign-in?next=//evil.example/x")
    assert 'name="next" value="/"' in page.text
    token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text)
    assert token is not None
    signed = await browser.http.post(
        "/sign-in",
        data={"sign_in_token": token.group(1), "api_key": node.operator_key,
              "next": "https://evil.example/"},
    )  # fmt: skip
    assert signed.status_code == 303
    assert signed.headers["location"] == "/"
    page = await browser.http.get("/queues")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    ready = await browser.http.get("/readyz")  # the readiness probe, as every service's
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "kafka": "ok"}


async def test_the_queues_are_counted_and_paged_by_the_registry(
    node: ConsoleNode, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "PAGE", 2)
    branch = await node.api(
        "POST", "/v1/organizations", {"name": "北大街党支部", "kind": "branch",
                                      "parent_id": str(node.root_id)},
    )  # fmt: skip
    for name in ("周一", "周二", "周三"):
        member = await node.api(
            "POST", "/v1/members",
            {"org_id": branch["org_id"], "name": name, "joined_on": "2010-07-01"},
        )  # fmt: skip
        body = {"member_id": member["member_id"],
                "destination": {"jurisdiction": CHAOYANG, "place": "朝阳区"},
                "period": {"departed_on": "2026-11-20"}, "contact": {"phone": "+86 139 0000 0001"},
                "reason": {"kind": "work"}}  # fmt: skip
        await node.api("POST", "/v1/movements", body)
    counts = await node.api("GET", "/v1/queues/counts")
    expected = [e["movement_id"] for e in (await node.api("GET", "/v1/queues"))["waiting"]]
    assert counts["waiting"] == len(expected) >= 3
    await browser.sign_in(node.operator_key)

    shown: list[str] = []
    page = await browser.get("/queues?queue=waiting")
    assert re.search(rf'data-queue="waiting">\s*<div>[^<]*</div><div class="count">'
                     rf'{counts["waiting"]}</div>', page.text)  # fmt: skip
    while True:
        rows = re.findall(r'<tr data-movement="([^"]+)"', page.text)
        assert 1 <= len(rows) <= 2
        shown += rows
        following = re.search(r'href="(/queues\?queue=waiting&(?:amp;)?partner=&(?:amp;)?after=[^"]+)"',
                              page.text)  # fmt: skip
        if following is None:
            break
        assert "第一页" in page.text or len(shown) == 2
        page = await browser.get(following.group(1).replace("&amp;", "&"))
    assert shown == expected
    refused = await browser.get("/queues?queue=waiting&after=nope")
    assert refused.status_code == 422
