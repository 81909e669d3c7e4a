"""Feedback on a real registry: a visiting member's concern raised with the host, answered
by the host's secretary, closed; the host group's summary (what the origin receives) counts
it without its text; 20 identical requests at once, with or without one Idempotency-Key,
are one concern and one answer; bad input is a 4xx naming its field; the queue and the
statistics on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from uuid import UUID, uuid4

import pytest

from .conftest import Node
from .test_one_effect import checked_in, count

pytestmark = pytest.mark.integration

TIMES = 20


async def at_once(
    node: Node, path: str, body: Any, key: str | None = None, *, idempotent: bool
) -> Counter[int]:
    headers = {"Idempotency-Key": f"k-{uuid4()}"} if idempotent else {}
    responses = await asyncio.gather(*(
        node.call("POST", path, key, json=body, headers=dict(headers)) for _ in range(TIMES)
    ))  # fmt: skip
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    return Counter(r.status_code for r in responses)


async def host_feedback(node: Node, movement_id: UUID) -> dict[str, Any]:
    body = await node.get(f"/v1/movements/{movement_id}")
    summary: dict[str, Any] = body["host_group"]["feedback"]
    return summary


async def test_a_concern_is_raised_answered_and_closed_and_the_origin_sees_counts(
    gushi: Node, chaoyang: Node
) -> None:
    movement_id = await checked_in(gushi, chaoyang)
    secretary = await chaoyang.key("host-secretary", "secretary")
    concern = await chaoyang.post(
        "/v1/feedback",
        {"movement_id": str(movement_id), "addressed_to": "host", "text": "子女入学材料无人受理"},
        secretary,
        expect=201,
    )
    feedback_id = concern["feedback_id"]
    assert (concern["state"], concern["overdue"]) == ("open", False)
    summary = await host_feedback(chaoyang, movement_id)
    assert (summary["raised"], summary["open"], summary["shared"]) == (1, 1, [])

    chaoyang.clock.advance(minutes=30)
    answered = await chaoyang.post(
        f"/v1/feedback/{feedback_id}/answers", {"text": "已联系教育局"}, secretary, expect=201
    )
    assert (answered["state"], answered["first_answer_seconds"]) == ("answered", 1800)
    summary = await host_feedback(chaoyang, movement_id)
    assert (summary["answered"], summary["last_first_answer_seconds"]) == (1, 1800)
    events = [r["event_type"] for r in await chaoyang.outbox() if r["movement_id"] == movement_id]
    assert events.count("yixian.movement.host_group.v1") >= 3  # check-in, raised, answered
    async with chaoyang.pool.acquire() as conn:
        sent = await conn.fetch(
            "SELECT value FROM outbox WHERE movement_id = $1 AND destination IS NOT NULL",
            movement_id,
        )
    assert sent
    assert all("子女入学" not in bytes(row["value"]).decode() for row in sent)
    assert all(b"\\u5b50\\u5973" not in bytes(row["value"]) for row in sent)

    thread = await chaoyang.get(f"/v1/feedback/{feedback_id}", secretary)
    assert [a["text"] for a in thread["answers"]] == ["已联系教育局"]
    await chaoyang.post(f"/v1/feedback/{feedback_id}/close", None, secretary, expect=200)
    late = await chaoyang.call(
        "POST", f"/v1/feedback/{feedback_id}/answers", secretary, json={"text": "补充"}
    )
    assert (late.status_code, late.json()["field"]) == (409, "feedback_id")

    stats = await chaoyang.get("/v1/feedback/statistics", secretary)
    assert (stats["raised"], stats["closed"]) == (1, 1)
    assert stats["first_answer_seconds"] == {"median": 1800, "p90": 1800}


@pytest.mark.parametrize("idempotent", [False, True])
async def test_twenty_identical_requests_are_one_concern_and_one_answer(
    gushi: Node, chaoyang: Node, idempotent: bool
) -> None:
    movement_id = await checked_in(gushi, chaoyang)
    body = {"movement_id": str(movement_id), "addressed_to": "host", "text": "同一个问题"}
    # one key: every retry gets the first answer; none: one creates, the rest find it
    once = {201: TIMES} if idempotent else {201: 1, 200: TIMES - 1}
    statuses = await at_once(chaoyang, "/v1/feedback", body, idempotent=idempotent)
    assert statuses == once, statuses
    concerns = "SELECT count(*) FROM feedback WHERE movement_id = $1"
    assert await count(chaoyang, concerns, movement_id) == 1
    async with chaoyang.pool.acquire() as conn:
        concern = await conn.fetchval(
            "SELECT feedback_id FROM feedback WHERE movement_id = $1", movement_id
        )
    path = f"/v1/feedback/{concern}/answers"
    statuses = await at_once(chaoyang, path, {"text": "同一个答复"}, idempotent=idempotent)
    assert statuses == once, statuses
    answers = "SELECT count(*) FROM feedback_answers WHERE feedback_id = $1"
    assert await count(chaoyang, answers, concern) == 1
    summary = await host_feedback(chaoyang, movement_id)
    assert (summary["raised"], summary["answers"]) == (1, 1)
    versions = "SELECT host_version FROM movements WHERE movement_id = $1"
    assert await count(chaoyang, versions, movement_id) == 3  # check-in, raised, answered


async def test_bad_input_is_a_4xx_naming_its_field_after_authorization(
    gushi: Node, chaoyang: Node
) -> None:
    movement_id = await checked_in(gushi, chaoyang)
    auditor = await chaoyang.key("auditor", "auditor")
    base = {"movement_id": str(movement_id), "addressed_to": "host"}
    denied = await chaoyang.call("POST", "/v1/feedback", auditor, json={**base, "text": "x"})
    assert denied.status_code == 403
    cases = [
        ({**base, "text": "a\x00b"}, 422, "text"),
        ({**base, "text": "长" * 2001}, 422, "text"),
        ({**base, "text": ""}, 422, "text"),
        ({**base, "movement_id": str(uuid4()), "text": "x"}, 404, "movement_id"),
        ({**base, "addressed_to": "origin", "text": "x"}, 422, "addressed_to"),
        ({"addressed_to": "origin", "member_id": str(uuid4()), "text": "x"}, 404, "member_id"),
        ({"addressed_to": "nobody", "movement_id": str(movement_id), "text": "x"}, 422,
         "addressed_to"),
    ]  # fmt: skip
    for body, status, field in cases:
        response = await chaoyang.call("POST", "/v1/feedback", json=body)
        assert (response.status_code, response.json()["field"]) == (status, field), body
    unknown = await chaoyang.call("POST", f"/v1/feedback/{uuid4()}/answers", json={"text": "x"})
    assert (unknown.status_code, unknown.json()["field"]) == (404, "feedback_id")
    missing = await chaoyang.call("GET", f"/v1/feedback/{uuid4()}")
    assert (missing.status_code, missing.json()["field"]) == (404, "feedback_id")


async def test_the_queue_flags_a_concern_unanswered_past_a_day(gushi: Node, chaoyang: Node) -> None:
    movement_id = await checked_in(gushi, chaoyang)
    body = {"movement_id": str(movement_id), "addressed_to": "host", "text": "无人答复"}
    await chaoyang.post("/v1/feedback", body, expect=201)
    chaoyang.clock.advance(hours=25)
    queue = await chaoyang.get("/v1/feedback?state=open")
    assert (queue["overdue"], queue["items"][0]["overdue"]) == (1, True)
    assert (await chaoyang.get("/v1/feedback?overdue=false"))["items"] == []
    bad = await chaoyang.call("GET", "/v1/feedback?state=pending")
    assert (bad.status_code, bad.json()["field"]) == (422, "state")
