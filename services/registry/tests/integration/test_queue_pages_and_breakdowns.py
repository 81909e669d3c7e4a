"""What the console asks of a node of 200,000 movements, over HTTP: the work queues
counted (`/v1/queues/counts`) and a page at a time (`limit`, and `after` a movement of
one `queue`), and every breakdown of the statistics in one request (`breakdown`)."""

from __future__ import annotations

import pytest

from .conftest import Node, outflow

pytestmark = pytest.mark.integration


async def test_queues_are_counted_and_paged_and_statistics_broken_down_at_once(
    gushi: Node,
) -> None:
    branch = await gushi.org("陈集镇第一党支部")
    other = await gushi.org("陈集镇第二党支部")
    registered = []
    for name in ("张建国", "李明", "张伟", "王芳", "张磊"):
        member = await gushi.member(branch, name)
        registered.append(await gushi.post("/v1/movements", outflow(member), expect=201))
    ids = [m["movement_id"] for m in registered]

    assert await gushi.get("/v1/queues/counts") == {
        "to_do": 0, "waiting": 5, "overdue": 0, "upcoming": 0
    }  # fmt: skip
    everything = (await gushi.get("/v1/queues"))["waiting"]
    assert [e["movement_id"] for e in everything] == ids  # oldest first
    first = (await gushi.get("/v1/queues?queue=waiting&limit=2"))["waiting"]
    after = first[-1]["movement_id"]
    second = (await gushi.get(f"/v1/queues?queue=waiting&limit=2&after={after}"))["waiting"]
    after = second[-1]["movement_id"]
    last = (await gushi.get(f"/v1/queues?queue=waiting&limit=2&after={after}"))["waiting"]
    assert first + second + last == everything
    assert len(last) == 1
    assert {q: len(e) for q, e in (await gushi.get("/v1/queues?limit=1")).items()} == {
        "to_do": 0, "waiting": 1, "overdue": 0, "upcoming": 0
    }  # fmt: skip

    stranger = await gushi.key("second-branch", "secretary", other)
    assert sum((await gushi.get("/v1/queues/counts", stranger)).values()) == 0
    assert (await gushi.get("/v1/queues/counts?partner=110105"))["waiting"] == 5
    assert (await gushi.get("/v1/queues/counts?partner=350300"))["waiting"] == 0
    gushi.clock.advance(days=30)  # check-in overdue once its day has passed
    assert (await gushi.get("/v1/queues/counts"))["overdue"] == 5

    for path, field in (
        (f"/v1/queues?after={ids[0]}", "after"),  # a page of which queue?
        ("/v1/queues?queue=waiting&limit=0", "limit"),
        ("/v1/queues?queue=waiting&limit=501", "limit"),
        ("/v1/queues?queue=waiting&after=nope", "after"),
        ("/v1/queues/counts?partner=320106", "partner"),  # a division, not a partner
        ("/v1/queues/counts?org_id=nope", "org_id"),
        ("/v1/statistics?breakdown=state&breakdown=weather", "breakdown.1"),
    ):
        refused = await gushi.call("GET", path)
        assert refused.status_code == 422, path
        assert refused.json()["field"] == field, path

    both = await gushi.get("/v1/statistics?breakdown=state&breakdown=branch")
    assert (both["movements"], both["members"], both["groups"]) == (5, 5, [])
    assert both["breakdowns"]["state"] == [{"key": "awaiting_check_in", "movements": 5, "open": 5}]
    assert both["breakdowns"]["branch"] == [
        {"key": str(branch), "name": "陈集镇第一党支部", "movements": 5, "open": 5}
    ]
    grouped = await gushi.get("/v1/statistics?group_by=state&breakdown=partner")
    assert grouped["groups"] == [
        {"key": "awaiting_check_in", "movements": 5, "open": 5, "members": 5}
    ]
    assert grouped["breakdowns"] == {"partner": [{"key": "110105", "movements": 5, "open": 5}]}
    assert "breakdowns" not in await gushi.get("/v1/statistics?group_by=state")
