"""A cancelled registration reaches the host's secretary (issue #15, point 7), on live
nodes: the origin registers (with a reason; the certificate it numbers itself), the host's
secretary is told a member is expected, the origin cancels, and the same secretary is told,
once, that the member is no longer coming."""

from __future__ import annotations

from collections import Counter

import pytest

from yixian.localstack.network import eventually
from yixian.localstack.sinks import HttpSink, MailSink

from .conftest import NetworkFactory, channels
from .test_notify import _mails_about
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e

HOST_SECRETARY = "secretary@chaoyang.example"


async def test_a_cancellation_tells_the_host_secretary_once(
    network: NetworkFactory, mail: MailSink, http: HttpSink
) -> None:
    nodes = await network([GUSHI, CHAOYANG], **channels(mail, http))
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    await chaoyang.query(
        "UPDATE organizations SET contact_email = $1 WHERE parent_id IS NULL", HOST_SECRETARY
    )
    branch = await gushi.org("陈集镇第一党支部", contact_email="chenji@gushi.example")
    member = await gushi.member(branch, "张建国")
    body = {**outflow(member, CHAOYANG), "reason": {"kind": "other", "text": "照顾在京的父母"}}
    created = await gushi.post("/v1/movements", body, 201)
    movement = created["movement_id"]
    number = created["origin_group"]["certificate"]["number"]
    assert number.startswith(f"{GUSHI}-")
    assert number.endswith("-000001")

    await eventually(
        lambda: _mails_about(mail, "将到本地报到", 1), what="the host secretary expects the member"
    )
    await gushi.post(f"/v1/movements/{movement}/cancel", None, 200)
    await eventually(
        lambda: _mails_about(mail, "外出登记已撤销", 1), what="the host secretary told of it"
    )

    async def host_sees_it_cancelled() -> bool:
        origin, _ = await chaoyang.replica(movement)
        return origin is not None and origin["status"] == "cancelled"

    await eventually(host_sees_it_cancelled, what="the host's copy cancelled")
    origin, _ = await chaoyang.replica(movement)
    assert origin["reason"] == {"kind": "other", "text": "照顾在京的父母"}
    assert origin["certificate"]["number"] == number

    told = next(m for m in mail.mails if "外出登记已撤销" in m.subject)
    assert told.to == (HOST_SECRETARY,)
    assert told.subject == "张建国的外出登记已撤销"
    assert "无需办理报到" in told.body
    subjects = Counter((m.to, m.subject) for m in mail.mails if "张建国" in m.subject)
    assert subjects[((HOST_SECRETARY,), "张建国的外出登记已撤销")] == 1
    assert subjects[((HOST_SECRETARY,), "流动党员张建国将到本地报到")] == 1
    # the origin's own secretary cancelled it and hears nothing of it
    assert not any("撤销" in m.subject and m.to != (HOST_SECRETARY,) for m in mail.mails)
