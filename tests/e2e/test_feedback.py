"""Feedback on live nodes (#16 point 1): a member of Gushi visiting Chaoyang raises a
concern at the host (a host secretary on the member's behalf); the host's secretary answers
it; the member is told by SMS; Chaoyang's statistics give the time to first answer; Gushi
sees, through the host group on the pair link, that a concern was raised and answered
(counts, states, times) but not its text, which the member did not share."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.sinks import HttpSink, MailSink

from .conftest import NetworkFactory, channels
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e

CONCERN = "子女在京入学需要党组织出具证明，社区一直没有答复"
ANSWER = "已与十八里店乡联系，证明本周五可领取"


async def _as(node: LocalNode, key: str, method: str, path: str, body: Any = None) -> Any:
    assert node.http is not None
    headers = {"Authorization": f"Bearer {key}"}
    response: httpx.Response = await node.http.request(method, path, json=body, headers=headers)
    assert response.status_code < 300, f"{path}: {response.status_code} {response.text}"
    return response.json()


def _sms(http: HttpSink) -> list[str]:
    return [str(r.json()["text"]) for r in http.requests if r.path == "/sms/messages"]


async def test_a_visitors_concern_is_answered_the_member_told_and_the_origin_counts_it(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, CHAOYANG], **channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    assert chaoyang.root_id is not None
    branch = await chaoyang.org("十八里店村党支部", contact_email="shibalidian@chaoyang.example")
    created = await chaoyang.post(
        "/v1/api-keys", {"name": "branch", "role": "secretary", "org_id": str(branch)}, 201
    )
    secretary = created["api_key"]
    member = await gushi.member(await gushi.org("陈集镇第一党支部"), "张建国")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]

    async def known_at_host() -> bool:
        return bool(await chaoyang.query(
            "SELECT 1 FROM movements WHERE movement_id = $1", UUID(movement)
        ))  # fmt: skip

    await eventually(known_at_host, what="the arrival at the host")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(branch)}, 200)

    raised = await _as(chaoyang, secretary, "POST", "/v1/feedback", {
        "movement_id": movement, "addressed_to": "host", "text": CONCERN,
    })  # fmt: skip
    feedback_id = raised["feedback_id"]
    assert (raised["state"], raised["org_id"]) == ("open", str(branch))
    queue = await _as(chaoyang, secretary, "GET", "/v1/feedback?state=open")
    assert [i["feedback_id"] for i in queue["items"]] == [feedback_id]

    answered = await _as(
        chaoyang, secretary, "POST", f"/v1/feedback/{feedback_id}/answers", {"text": ANSWER}
    )
    assert answered["state"] == "answered"
    assert answered["first_answer_seconds"] is not None

    async def member_told() -> bool:
        return any("答复" in text for text in _sms(http))

    await eventually(member_told, what="the member told of the answer")
    (notice,) = [text for text in _sms(http) if "答复" in text]
    assert "十八里店村党支部" in notice

    stats = await _as(chaoyang, secretary, "GET", "/v1/feedback/statistics")
    assert (stats["raised"], stats["answered"], stats["open"]) == (1, 1, 0)
    seconds = answered["first_answer_seconds"]
    assert stats["first_answer_seconds"] == {"median": seconds, "p90": seconds}

    async def origin_sees_the_answer() -> bool:
        _, host = await gushi.replica(movement)
        return bool(host and host.get("feedback") and host["feedback"]["answered"] == 1)

    await eventually(origin_sees_the_answer, what="Gushi sees the concern answered")
    _, host = await gushi.replica(movement)
    summary = host["feedback"]
    assert (summary["raised"], summary["open"], summary["shared"]) == (1, 0, [])
    assert summary["last_first_answer_seconds"] == seconds
    seen = await gushi.get(f"/v1/movements/{movement}")
    assert seen["host_group"]["feedback"]["answered"] == 1
    everything_at_origin = str(await gushi.query("SELECT * FROM movements")) + str(
        await gushi.query("SELECT * FROM movement_history")
    )
    assert CONCERN not in everything_at_origin
    assert ANSWER not in everything_at_origin
