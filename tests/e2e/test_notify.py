"""Notices over real channels (a local SMTP server, an SMS gateway and webhooks), once each."""

from __future__ import annotations

from collections import Counter

import pytest

from yixian.localstack.network import LocalNode, eventually
from yixian.localstack.sinks import HttpSink, MailSink
from yixian.notify.adapters.channels import verify

from .conftest import WEBHOOK_SECRET, NetworkFactory, channels
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e


async def _notices(node: LocalNode, movement: str) -> list[dict[str, object]]:
    assert node.notify.url is not None
    import httpx

    async with httpx.AsyncClient(base_url=node.notify.url, headers=_auth(node)) as client:
        response = await client.get("/v1/notices", params={"movement_id": movement})
        assert response.status_code == 200, response.text
        return list(response.json())


def _auth(node: LocalNode) -> dict[str, str]:
    """notify takes the node's API keys, as the registry does (the operator's here)."""
    return {"Authorization": f"Bearer {node.key}"}


async def test_scenario_1_notices_arrive_once_with_the_right_text(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, CHAOYANG], **channels(mail, http))
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
    assert "请到北京市朝阳区报到" in sms[0]["text"]
    assert "已在固始县驻京流动党员工作委员会报到" in sms[1]["text"]
    assert len({s["id"] for s in sms}) == 2

    async def all_recorded_sent() -> bool:
        notices = await _notices(gushi, movement) + await _notices(chaoyang, movement)
        return Counter(n["status"] for n in notices) == {"sent": 6}

    await eventually(all_recorded_sent, what="six notices recorded as sent")


async def _mails_about(mail: MailSink, text: str, count: int) -> bool:
    return sum(text in m.subject for m in mail.mails) >= count


async def test_retries_permanent_failures_opt_outs_and_signed_webhooks(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    http.fail_first["/sms/messages"] = 2  # the gateway fails twice, then takes it
    nodes = await network([GUSHI, CHAOYANG], **channels(mail, http))
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

    async def sms_recorded() -> bool:
        sms = [n for n in await _notices(gushi, movement) if n["channel"] == "sms"]
        return bool(sms) and sms[0]["status"] == "sent"

    await eventually(sms_recorded, what="the SMS recorded as sent")
    sms = [n for n in await _notices(gushi, movement) if n["channel"] == "sms"]
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
    async with httpx.AsyncClient(base_url=chaoyang.notify.url, headers=_auth(chaoyang)) as client:
        opted = await client.post("/v1/opt-outs", json={"member_id": str(member), "channel": "sms"})
        assert opted.status_code == 201, opted.text
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


async def test_every_change_rule_sends_its_notice_once(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, CHAOYANG], **channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("支部", contact_email="branch@gushi.example")
    await chaoyang.query(
        "UPDATE organizations SET contact_email = 'root@chaoyang.example' WHERE parent_id IS NULL"
    )
    committee = await chaoyang.org(
        "工委", kind="working_committee", contact_email="wc@chaoyang.example"
    )
    names = ["转接", "拒转", "查无", "转走", "失联"]
    movements = {}
    for name in names:
        member = await gushi.member(branch, name)
        movements[name] = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))[
            "movement_id"
        ]

    async def known() -> bool:
        return await chaoyang.value("SELECT count(*) FROM movements") == len(names)

    await eventually(known, what="the host knows every movement")
    for name in ("转接", "拒转", "失联"):
        await chaoyang.post(
            f"/v1/movements/{movements[name]}/check-in", {"host_org_id": str(committee)}, 200
        )
    await chaoyang.post(f"/v1/movements/{movements['查无']}/reject", {"reason": "查无此人"}, 200)
    await chaoyang.post(
        f"/v1/movements/{movements['转走']}/forward",
        {"forwarded_to": "110114", "reason": "在昌平工作"},
        200,
    )
    await chaoyang.post(
        f"/v1/movements/{movements['失联']}/lost-contact", {"since": "2026-02-25"}, 200
    )

    async def active(name: str) -> bool:
        return (await gushi.get(f"/v1/movements/{movements[name]}"))["state"] == "active"

    for name in ("转接", "拒转"):
        await eventually(lambda n=name: active(n), what=f"{name} active at the origin")  # type: ignore[misc]
        await gushi.post(f"/v1/movements/{movements[name]}/transfer/request", {}, 200)

    async def pending(name: str) -> bool:
        view = await chaoyang.get(f"/v1/movements/{movements[name]}")
        return bool(view["state"] == "transfer_pending")

    for name in ("转接", "拒转"):
        await eventually(lambda n=name: pending(n), what="the host sees the request")  # type: ignore[misc]
    await chaoyang.post(
        f"/v1/movements/{movements['转接']}/transfer/reply", {"decision": "accepted"}, 200
    )
    await chaoyang.post(
        f"/v1/movements/{movements['拒转']}/transfer/reply",
        {"decision": "rejected", "reason": "尚不符合条件"},
        200,
    )

    async def accepted() -> bool:
        return (await gushi.get(f"/v1/movements/{movements['转接']}"))[
            "state"
        ] == "transfer_accepted"

    await eventually(accepted, what="the origin sees the acceptance")
    await gushi.post(f"/v1/movements/{movements['转接']}/transfer/complete", None, 200)

    expected_mail = {("root@chaoyang.example", f"流动党员{n}将到本地报到") for n in names} | {
        ("branch@gushi.example", "转接已报到"),
        ("branch@gushi.example", "拒转已报到"),
        ("branch@gushi.example", "失联已报到"),
        ("branch@gushi.example", "流入地未找到查无"),
        ("branch@gushi.example", "转走已转至北京市昌平区"),
        ("branch@gushi.example", "失联失联"),
        ("wc@chaoyang.example", "转接组织关系转接申请"),
        ("wc@chaoyang.example", "拒转组织关系转接申请"),
        ("branch@gushi.example", "转接组织关系转接已同意"),
        ("branch@gushi.example", "拒转组织关系转接未获同意"),
        ("wc@chaoyang.example", "组织关系已转接"),
    }

    async def all_mail() -> bool:
        return {(m.to[0], m.subject) for m in mail.mails} >= expected_mail

    await eventually(all_mail, what="every rule's mail", within=90)
    counts = Counter((m.to[0], m.subject) for m in mail.mails)
    assert {k for k, v in counts.items() if v > 1} == set(), "a notice arrived twice"
    assert set(counts) == expected_mail
    rejected = next(m for m in mail.mails if m.subject == "拒转组织关系转接未获同意")
    assert "尚不符合条件" in rejected.body

    def texts() -> list[str]:
        return [r.json()["text"] for r in http.requests if r.path == "/sms/messages"]

    async def member_told_of_transfer() -> bool:
        return any("组织关系已由" in t for t in texts())

    await eventually(member_told_of_transfer, what="the member's transfer notice")
    assert sum("请到北京市朝阳区报到" in t for t in texts()) == len(names)
    assert sum("组织关系已由" in t for t in texts()) == 1  # the member, on completion
