"""What a hostile visitor tries at the console of a real node (PostgreSQL, Kafka, the
services' APIs in-process): requests after the session ended (htmx included), floods of
sign-ins and of anonymous posts, numbers and times beyond every range, idempotency keys
that are no header, text of its own in the URL, and events sharing one millisecond. Each
answer is a 4xx page naming the input (with the security headers), a fixed text, or the
sign-in page: never a 500."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from yixian.console.adapters.node import NodeOperations
from yixian.console.entrypoints.dependencies import COOKIE, ConsoleParts
from yixian.contracts import TopicNames
from yixian.registry.adapters.postgres import AuditLog
from yixian.runtime import KafkaSettings
from yixian.runtime.kafka import make_producer
from yixian.sync.adapters.store import SyncStore
from yixian.sync.service_layer.repositories import Inbound

from .conftest import CHAOYANG, GUSHI, Browser, ConsoleNode

pytestmark = pytest.mark.integration

HTMX = {"HX-Request": "true"}
HUGE = "99999999999999999999"
"""More than a bigint holds (2**63 - 1)."""


def parts(node: ConsoleNode) -> ConsoleParts:
    found: ConsoleParts = node.console.state.console
    return found


def kept_safe(response: httpx.Response) -> None:
    """A page with the console's security headers."""
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "text/html" in response.headers["content-type"]


def fake_key() -> str:
    return f"yx_{uuid4().hex}_{'x' * 43}"


async def _movement(node: ConsoleNode, name: str) -> str:
    branch = await node.api(
        "POST", "/v1/organizations",
        {"name": f"{name}党支部", "kind": "branch", "parent_id": str(node.root_id)},
    )  # fmt: skip
    member = await node.api(
        "POST", "/v1/members", {"org_id": branch["org_id"], "name": name, "joined_on": "2009-07-01"}
    )
    body = {"member_id": member["member_id"],
            "destination": {"jurisdiction": CHAOYANG, "place": "朝阳区"},
            "period": {"departed_on": "2026-03-01"}, "contact": {"phone": "+86 139 0000 0000"},
            "reason": {"kind": "work"}}  # fmt: skip
    movement: str = (await node.api("POST", "/v1/movements", body))["movement_id"]
    return movement


async def _dead_letters(node: ConsoleNode, *offsets: int) -> list[int]:
    async with node.pool.acquire() as conn:
        store = SyncStore(conn, GUSHI, TopicNames(""))
        for offset in offsets:
            record = Inbound(f"yixian.v1.{CHAOYANG}.to.{GUSHI}", 0, offset, b"k", b"not an event")
            await store.dead_letter(record, "not JSON", [], datetime.now(UTC))
    rows = await node.pool.fetch(
        'SELECT id FROM dead_letters WHERE "offset" = ANY($1::bigint[]) ORDER BY id', list(offsets)
    )
    return [r["id"] for r in rows]


async def test_after_the_session_ends_every_request_goes_to_sign_in_htmx_too(
    node: ConsoleNode, browser: Browser
) -> None:
    never = await browser.get("/queues", headers=HTMX)
    assert never.status_code == 204
    assert never.headers["hx-redirect"] == "/sign-in?next=%2Fqueues&reason=needed"
    page = await browser.get(never.headers["hx-redirect"])
    assert page.status_code == 200
    assert "请先登录" in page.text

    key, _ = await node.key("operator")
    await browser.sign_in(key)
    token = browser.http.cookies.get(COOKIE)
    assert token
    out = await browser.post("/sign-out")
    assert out.headers["location"] == "/sign-in?reason=signed_out"
    assert "已退出登录" in (await browser.get(out.headers["location"])).text

    copied = await browser.http.post(  # the cookie of the ended session, kept by someone
        "/node/outbox/retry",
        data={"ids": "1", "csrf": browser.csrf},
        headers={**HTMX, "Cookie": f"{COOKIE}={token}"},
    )
    assert copied.status_code == 204
    location = copied.headers["hx-redirect"]
    assert location == "/sign-in?next=%2Fnode%2Foutbox%2Fretry&reason=expired"
    assert "登录已过期" in (await browser.get(location)).text
    refused = await node.audit(action="console POST /node/outbox/retry", actor="anonymous")
    assert refused[-1]["outcome"] == "refused"

    other = await browser.get("/sign-in?reason=点击 evil.example 领取奖励")  # no code: no text
    assert other.status_code == 200
    assert "evil.example" not in other.text
    await browser.sign_in(key)
    told = await browser.get("/node?message=请立即把密钥发给管理员&notice=请立即")
    assert told.status_code == 200
    assert "请立即" not in told.text


async def test_sign_in_keeps_few_sessions_per_key_and_is_throttled(
    node: ConsoleNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, key_id = await node.key("secretary")
    people = [node.browser() for _ in range(6)]
    first = people[0]
    await first.sign_in(key)
    before = first.http.cookies.get(COOKIE)
    await first.sign_in(key)  # again in the same browser: the session it had ends
    assert first.http.cookies.get(COOKIE) != before
    stale = await first.http.get("/queues", headers={"Cookie": f"{COOKIE}={before}"})
    assert stale.status_code == 303
    for person in people[1:]:  # five more sessions of the key: its own oldest gives way
        assert (await person.sign_in(key)).status_code == 303
    assert (await first.get("/queues")).status_code == 303
    for person in people[1:]:
        assert (await person.get("/queues")).status_code == 200

    sessions = parts(node).sessions
    monkeypatch.setattr(sessions, "capacity", len(sessions))  # every place is taken
    other, _ = await node.key("auditor")
    late = node.browser()
    full = await late.sign_in(other)
    assert full.status_code == 503
    assert "登录人数已满" in full.text
    kept_safe(full)
    for person in people[1:]:  # nobody else was signed out to make room
        assert (await person.get("/queues")).status_code == 200
    monkeypatch.undo()

    limits = parts(node).limits  # time stands still: no attempt comes back while this runs
    now = time.monotonic()
    for throttle in (limits.by_address, limits.by_key):
        monkeypatch.setattr(throttle, "clock", lambda: now)
    guesser = node.browser()
    guessed = fake_key()
    answers = [(await guesser.sign_in(guessed)).status_code for _ in range(12)]
    assert answers == [401] * 10 + [429] * 2  # ten tries a key, then one every few seconds
    throttled = await guesser.sign_in(guessed)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert "过于频繁" in throttled.text
    rows = await node.audit(action="console.sign_in", outcome="refused")
    presented = str(UUID(guessed[3:35]))
    assert [r["detail"].get("presented_key_id") for r in rows].count(presented) == 1

    flooder = node.browser()  # a new key id each time: the address's limit holds
    answers = [(await flooder.sign_in(fake_key())).status_code for _ in range(31)]
    assert answers == [401] * 30 + [429]
    blocked = await flooder.sign_in(key)  # even a good key, from this address, for now
    assert blocked.status_code == 429
    assert len(await node.audit(action="console.sign_in", outcome="ok", actor=f"key:{key_id}")) == 7


async def test_numbers_times_and_keys_beyond_range_are_4xx_pages_naming_the_input(
    node: ConsoleNode, browser: Browser
) -> None:
    await browser.sign_in(node.operator_key)
    movement = await _movement(node, "韩梅")

    async def refused(response: Awaitable[httpx.Response], status: int, field: str) -> str:
        answer = await response
        assert answer.status_code == status, (field, answer.text[:500])
        assert field in answer.text
        kept_safe(answer)
        return answer.text

    text = await refused(browser.get("/events?since=0001-01-01T00:00"), 422, 'data-field="since"')
    assert "1970" in text
    await refused(browser.get("/audit?since=0001-01-01T00:00"), 422, 'data-field="since"')
    await refused(browser.get("/audit?until=0001-01-01T00:00"), 422, 'data-field="until"')
    await refused(browser.get(f"/audit?before={HUGE}"), 422, "before")
    await refused(browser.get(f"/node/dead-letters/{HUGE}"), 422, "dead_letter_id")
    await refused(browser.get(f"/node/dead-letters?before={HUGE}"), 422, "before")
    await refused(browser.post(f"/node/dead-letters/{HUGE}/retry"), 422, "dead_letter_id")
    await refused(
        browser.post(f"/node/dead-letters/{HUGE}/discard", {"reason": "x"}), 422, "dead_letter_id"
    )
    for ids in ("²", HUGE, "1,x", ""):
        await refused(browser.post("/node/outbox/retry", {"ids": ids}), 422, "ids")
    await refused(browser.post("/node/outbox/discard", {"ids": "1", "reason": ""}), 422, "reason")
    for first in ("²", HUGE):
        await refused(
            browser.post(f"/node/links/{CHAOYANG}/replay", {"from": first}),
            422,
            'data-field="from"',
        )
    await refused(
        browser.post(f"/node/links/{CHAOYANG}/replay", {"from": "1", "to": HUGE}),
        422, 'data-field="to"',
    )  # fmt: skip
    await refused(browser.post("/node/links/%00/replay", {"from": "1"}), 404, "\\u0000")
    assert not await node.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = 'yixian.link.replay_requested.v1'"
    )

    for bad in ("键", "a\r\nSet-Cookie: x=1", "a" * 201):
        step = browser.post(
            f"/movements/{movement}/steps/return",
            {"returned_on": "2026-03-02", "idempotency_key": bad}, headers=HTMX,
        )  # fmt: skip
        await refused(step, 422, "idempotency_key")
    member = await node.api(
        "POST",
        "/v1/members",
        {"org_id": str(node.root_id), "name": "李雷", "joined_on": "2009-07-01"},
    )
    registration = browser.post(
        f"/members/{member['member_id']}/register",
        {"destination.jurisdiction": CHAOYANG, "destination.place": "朝阳区",
         "period.departed_on": "2026-03-01", "contact.phone": "+86 139 0000 0001",
         "reason.kind": "work", "idempotency_key": "键"},
    )  # fmt: skip
    await refused(registration, 422, "idempotency_key")
    assert not await node.audit(action="movement.return")
    assert (await node.api("GET", f"/v1/members/{member['member_id']}"))["status"] == "home"

    many = "&".join(f"f{i}=1" for i in range(201))
    fields = await browser.http.post(
        "/sign-out", content=many.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert fields.status_code == 400
    assert "200" in fields.text
    assert "UTF-8" not in fields.text
    kept_safe(fields)


async def test_events_sharing_a_millisecond_all_come_a_page_at_a_time(
    node: ConsoleNode, browser: Browser
) -> None:
    kafka: KafkaSettings = parts(node).operations.settings.kafka
    topic = kafka.topics.local(GUSHI)
    at = int(datetime.now(UTC).timestamp() * 1000) - 60_000
    producer = make_producer(kafka, client_id="console-test")
    await producer.start()
    try:
        batch = [producer.send(topic, b"not an event %d" % i, key=b"same-ms", timestamp_ms=at)
                 for i in range(60)]  # fmt: skip
        await asyncio.gather(*[await sent for sent in batch])
    finally:
        await producer.stop()

    await browser.sign_in(node.operator_key)
    shown: list[str] = []
    path = f"/events?topic={topic}&key=same-ms&since=2000-01-01T00:00"
    for _ in range(3):
        page = await browser.get(path)
        assert page.status_code == 200, page.text[:500]
        shown += re.findall(r'<tr data-event="([^"]+)"', page.text)
        following = re.search(r'href="(/events\?[^"]+)">下一页', page.text)
        if following is None:
            break
        path = following.group(1).replace("&amp;", "&")
    assert len(shown) == 60
    assert len(set(shown)) == 60
    bad = await browser.get(f"/events?after={HUGE}")
    assert bad.status_code == 422
    assert 'data-field="after"' in bad.text


async def test_anonymous_refusals_are_audited_by_route_and_at_a_bounded_rate(
    node: ConsoleNode, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.monotonic()  # time stands still: no refusal is recorded again while this runs
    monkeypatch.setattr(parts(node).limits.anonymous, "clock", lambda: now)
    long = await browser.post(f"/movements/{uuid4()}/steps/{'x' * 8000}", {"a": "b"})
    assert long.status_code == 303
    rows = await node.audit(actor="anonymous", outcome="refused")
    assert rows[-1]["action"] == "console POST /movements/{movement_id}/steps/{path:path}"
    assert len(rows[-1]["detail"]["path"]) <= 200

    nowhere = await browser.post("/nowhere/" + "y" * 500, {"a": "b"})
    assert nowhere.status_code == 404
    kept_safe(nowhere)
    told = await browser.get("/请致电客服领取奖励")
    assert told.status_code == 404
    assert "领取奖励" not in told.text  # no words of the URL on the page
    actions = [r["action"] for r in await node.audit(actor="anonymous")]
    assert not [a for a in actions if "nowhere" in a]

    before = len(await node.audit(action="console POST /node/outbox/retry", actor="anonymous"))
    for _ in range(40):
        assert (await browser.post("/node/outbox/retry", {"ids": "1"})).status_code == 303
    after = len(await node.audit(action="console POST /node/outbox/retry", actor="anonymous"))
    assert after - before == 29  # thirty at once from one address (the long path's the first)


async def test_dead_letter_actions_are_audited_with_their_effect_and_a_missing_one_is_404(
    node: ConsoleNode, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, key_id = await node.key("operator")
    await browser.sign_in(key)
    retried_id, discarded_id = await _dead_letters(node, 101, 102)

    missing = await browser.post("/node/dead-letters/987654321/retry")
    assert missing.status_code == 404
    kept_safe(missing)
    refusals = await node.audit(actor=f"key:{key_id}", outcome="refused")
    assert refusals[-1]["detail"]["status"] == 404

    retried = await browser.post(f"/node/dead-letters/{retried_id}/retry", headers=HTMX)
    assert retried.status_code == 204
    location = retried.headers["hx-redirect"]
    assert location.isascii()
    shown = await browser.get(location)
    assert "重试结果：dead_letter" in shown.text
    row = (await node.audit(action="dead_letter.retry", target=f"dead_letter:{retried_id}"))[-1]
    assert row["trace_id"] is not None

    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the audit log cannot be written")

    monkeypatch.setattr(AuditLog, "record", broken)
    failed = await browser.post(
        f"/node/dead-letters/{discarded_id}/discard", {"reason": "对方已修复"}
    )
    monkeypatch.undo()
    assert failed.status_code == 500
    kept_safe(failed)
    still = await node.pool.fetchval(
        "SELECT discarded_at FROM dead_letters WHERE id = $1", discarded_id
    )
    assert still is None  # no discard without its audit row

    no_reason = await browser.post(f"/node/dead-letters/{discarded_id}/discard", {"reason": ""})
    assert no_reason.status_code == 422
    refused = await node.audit(action="dead_letter.discard", outcome="refused")
    assert refused[-1]["target"] == f"dead_letter:{discarded_id}"
    done = await browser.post(
        f"/node/dead-letters/{discarded_id}/discard", {"reason": "对方已修复"}
    )
    assert done.status_code == 303
    entry = (await node.audit(action="dead_letter.discard", outcome="ok"))[-1]
    assert entry["detail"]["note"] == "对方已修复"
    assert entry["actor"] == f"key:{key_id}"
    assert entry["trace_id"] is not None

    replay = await browser.post(f"/node/links/{CHAOYANG}/replay", {"from": "5", "to": "2"})
    assert replay.status_code == 422
    assert (await node.audit(action="link.replay_request"))[-1]["outcome"] == "refused"
    sign_in = (await node.audit(action="console.sign_in", actor=f"key:{key_id}"))[-1]
    assert sign_in["trace_id"] is not None


async def test_a_trace_that_takes_too_long_is_a_page_saying_so(
    node: ConsoleNode, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    operations: NodeOperations = parts(node).operations
    never = asyncio.Event()

    async def endless(*_: Any, **__: Any) -> list[Any]:
        await never.wait()
        return []

    monkeypatch.setattr(operations, "trace", endless)
    monkeypatch.setattr(operations, "trace_timeout", 0.05)
    await browser.sign_in(node.operator_key)
    slow = await browser.get(f"/trace?id={uuid4()}")
    assert slow.status_code == 504
    assert "追踪超时" in slow.text
    kept_safe(slow)


async def test_an_unexpected_error_is_a_page_with_the_security_headers(
    node: ConsoleNode, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    operations: NodeOperations = parts(node).operations

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the status cannot be gathered")

    monkeypatch.setattr(operations, "status", broken)
    await browser.sign_in(node.operator_key)
    failed = await browser.get("/node")
    assert failed.status_code == 500
    kept_safe(failed)
    assert "the status cannot be gathered" not in failed.text  # no internals on the page
