"""Notices over real channels (a local SMTP server, an SMS gateway and webhooks), once each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from yixian.localstack.sinks import HttpSink, MailSink
from yixian.notify.adapters.channels import verify

from .conftest import NetworkFactory
from .network import LocalNode, eventually
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e
WEBHOOK_SECRET = "webhook-secret-of-the-test-network"


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink(refuse={"nobody@gushi.example"}).start()
    yield sink
    sink.stop()


@pytest.fixture
def http() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


def _channels(mail: MailSink, http: HttpSink) -> dict[str, str]:
    return {
        "YIXIAN_SMTP_HOST": "127.0.0.1",
        "YIXIAN_SMTP_PORT": str(mail.port),
        "YIXIAN_SMS_GATEWAY": f"{http.url}/sms",
        "YIXIAN_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "YIXIAN_QUIET_START": "00:00",  # no quiet hours here: the clock of the test is real
        "YIXIAN_QUIET_END": "00:00",
    }


async def _notices(node: LocalNode, movement: str) -> list[dict[str, object]]:
    assert node.notify.url is not None
    import httpx

    async with httpx.AsyncClient(base_url=node.notify.url) as client:
        response = await client.get("/v1/notices", params={"movement_id": movement})
        return list(response.json())


async def test_scenario_1_notices_arrive_once_with_the_right_text(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, CHAOYANG], **_channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("陈集镇第一党支部", contact_email="chenji@gushi.example")
    committee = await chaoyang.org(
        "固始县驻京流动党员工作委员会",
        kind="working_committee",
        contact_email="gushi-wc@chaoyang.example",
    )
    await chaoyang.query(
        "UPDATE organizations SET contact_email = 'secretary@chaoyang.example' WHERE parent_id IS NULL"
    )
    member = await gushi.member(branch, "张建国")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]

    async def expected_told() -> bool:
        return any("将到本地报到" in m.subject for m in mail.mails) and bool(http.requests)

    await eventually(expected_told, what="member and host secretary told")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200)
    await eventually(
        lambda: _mails_about(mail, "已报到", 1), what="origin secretary told of the check-in"
    )
    await gushi.post(f"/v1/movements/{movement}/return", {"returned_on": "2026-06-30"}, 200)
    await eventually(
        lambda: _mails_about(mail, "已返回", 2), what="both secretaries told of the return"
    )

    subjects = Counter((m.to, m.subject) for m in mail.mails)
    assert subjects == {
        (("secretary@chaoyang.example",), "流动党员张建国将到本地报到"): 1,
        (("chenji@gushi.example",), "张建国已报到"): 1,
        (("chenji@gushi.example",), "张建国已返回"): 1,
        (("gushi-wc@chaoyang.example",), "张建国已返回"): 1,  # the member's host organization now
    }
    expected = next(m for m in mail.mails if "将到本地报到" in m.subject)
    assert "+86 138 0000 0000" in expected.body
    sms = [r.json() for r in http.requests if r.path == "/sms/messages"]
    assert [s["to"] for s in sms] == ["+86 138 0000 0000", "+86 138 0000 0000"]
    assert "请到110105报到" in sms[0]["text"]
    assert "已在固始县驻京流动党员工作委员会报到" in sms[1]["text"]
    assert len({s["id"] for s in sms}) == 2
    statuses = Counter(
        n["status"] for n in await _notices(gushi, movement) + await _notices(chaoyang, movement)
    )
    assert statuses == {"sent": 6}


async def _mails_about(mail: MailSink, text: str, count: int) -> bool:
    return sum(text in m.subject for m in mail.mails) >= count


async def test_retries_permanent_failures_opt_outs_and_signed_webhooks(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    http.fail_first["/sms/messages"] = 2  # the gateway fails twice, then takes it
    nodes = await network([GUSHI, CHAOYANG], **_channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("支部", contact_email="nobody@gushi.example")  # refused by the server
    await chaoyang.query(
        "UPDATE organizations SET webhook_url = $1 WHERE parent_id IS NULL",
        f"{http.url}/hooks/root",
    )
    member = await gushi.member(branch, "李四")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]

    async def delivered() -> bool:
        return any(r.path == "/sms/messages" for r in http.requests) and any(
            r.path == "/hooks/root" for r in http.requests
        )

    await eventually(delivered, what="SMS after two failures, and the webhook", within=60)
    sms = [n for n in await _notices(gushi, movement) if n["channel"] == "sms"]
    assert sms[0]["status"] == "sent"
    assert sms[0]["attempts"] == 3
    hook = next(r for r in http.requests if r.path == "/hooks/root")
    assert verify(
        WEBHOOK_SECRET.encode(),
        hook.headers["X-Yixian-Timestamp"],
        hook.body,
        hook.headers["X-Yixian-Signature"],
    )
    assert not verify(
        b"another secret",
        hook.headers["X-Yixian-Timestamp"],
        hook.body,
        hook.headers["X-Yixian-Signature"],
    )

    # the member opts out of SMS at the host; the check-in notice to them is suppressed
    import httpx

    assert chaoyang.notify.url is not None
    async with httpx.AsyncClient(base_url=chaoyang.notify.url) as client:
        await client.post("/v1/opt-outs", json={"member_id": str(member), "channel": "sms"})
    committee = await chaoyang.org("工委", kind="working_committee")
    await chaoyang.post(f"/v1/movements/{movement}/check-in", {"host_org_id": str(committee)}, 200)

    async def outcomes() -> bool:
        mine = {n["reason"]: n for n in await _notices(gushi, movement)}
        theirs = {(n["reason"], n["recipient"]): n for n in await _notices(chaoyang, movement)}
        return (
            mine.get("checked_in", {}).get("status") == "dead"
            and theirs.get(("checked_in", "member"), {}).get("status") == "suppressed"
        )

    await eventually(outcomes, what="a dead notice and a suppressed one")
    dead = next(n for n in await _notices(gushi, movement) if n["reason"] == "checked_in")
    assert "550" in str(dead["last_error"]) or "refused" in str(dead["last_error"])
