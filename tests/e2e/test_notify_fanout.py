"""A theme day for 10,000 members (2,000 in ``make test``; 10,000 under ``make drills``): notify is killed mid fan-out and restarted; every
member ends with exactly one invitation, and the channel's rate limit holds throughout."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from yixian.localstack.network import eventually
from yixian.localstack.sinks import HttpSink

from .conftest import NetworkFactory, drill_size
from .test_sync_scenarios import CHAOYANG

pytestmark = pytest.mark.e2e
MEMBERS = drill_size(smoke=2_000, full=10_000)
RATE = drill_size(smoke=200, full=500)  # SMS per second: a kill lands mid fan-out


@pytest.fixture
def gateway() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


async def test_thousands_of_invitations_survive_a_kill(
    network: NetworkFactory, gateway: HttpSink
) -> None:
    nodes = await network(
        [CHAOYANG],
        YIXIAN_SMS_GATEWAY=f"{gateway.url}/sms",
        YIXIAN_SMS_PER_SECOND=str(RATE),
        YIXIAN_QUIET_START="00:00",
        YIXIAN_QUIET_END="00:00",
        YIXIAN_LEASE_SECONDS="5",
    )
    chaoyang = nodes[CHAOYANG]
    street = await chaoyang.org("十八里店乡党委", kind="committee")
    rows = "".join(f"{street},党员{i},2010-07-01,139{i:08d}\n" for i in range(MEMBERS))
    assert chaoyang.http is not None
    report = await chaoyang.http.post(
        "/v1/members/import",
        content=f"org_id,name,joined_on,phone\n{rows}".encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert report.json()["accepted"] == MEMBERS
    await chaoyang.post(
        "/v1/activities",
        {"org_id": str(street), "kind": "theme_day", "title": "七月主题党日", "starts_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(), "location": "党群服务中心"},
        201,
    )  # fmt: skip

    async def a_third_arrived() -> bool:
        return len(gateway.requests) >= MEMBERS // 3

    await eventually(a_third_arrived, what="a third of the invitations sent", within=120)
    chaoyang.notify.kill()
    at_kill = len(gateway.requests)
    assert at_kill < MEMBERS
    chaoyang.notify.start()

    async def all_arrived() -> bool:
        return len({r.headers["Idempotency-Key"] for r in gateway.requests}) >= MEMBERS

    await eventually(all_arrived, what="every invitation sent", within=240)
    per_member: dict[str, set[str]] = defaultdict(set)
    for request in gateway.requests:
        per_member[request.json()["to"]].add(request.headers["Idempotency-Key"])
    assert len(per_member) == MEMBERS
    assert all(len(keys) == 1 for keys in per_member.values()), "a member got two invitations"
    repeats = len(gateway.requests) - MEMBERS
    assert repeats <= 8, f"{repeats} repeated deliveries: more than were in flight"
    per_second = Counter(int(r.at) for r in gateway.requests)
    busiest = max(per_second.values())
    assert busiest <= RATE * 1.1 + RATE / 10, f"{busiest} in one second, limit {RATE}/s"

    async def all_recorded() -> bool:
        return await chaoyang.value("SELECT count(*) FROM notices WHERE status = 'sent'") == MEMBERS

    await eventually(all_recorded, what="every invitation recorded as sent")
    print(f"killed at {at_kill}; {repeats} repeats dropped by key; busiest second {busiest}/{RATE}")
