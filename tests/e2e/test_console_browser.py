"""The console in a real browser (Debian's Chromium driven by Playwright) against two live
nodes, every service a real process: each role sees only its screens; scenario 1 walked at
the origin's and the host's consoles (htmx drawing a step's form in place); a session
ended under an htmx request; signing out; a member's name that is markup shown as text; a
dead letter retried; a trace drawn as a timeline. One set of nodes and one browser for the
module; a fresh browser context per person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from confluent_kafka import Producer
from playwright.async_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    async_playwright,
    expect,
)

from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually

from .conftest import NetworkFactory
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
async def nodes(module_network: NetworkFactory) -> dict[str, LocalNode]:
    """Gushi and Chaoyang with registry, relay, sync and the console (no notify: the
    notices a console shows are the demo's to show)."""
    return await module_network([GUSHI, CHAOYANG], with_console=True)


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    if not await asyncio.to_thread(Path(CHROMIUM).exists):
        pytest.skip(f"{CHROMIUM} is missing: deploy/local/bootstrap.sh installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Person:
    """Someone at one node's console, in a browser context of their own."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context, self.page = context, page

    async def sign_in(self, key: str) -> Page:
        await self.page.goto("/sign-in")
        await self.page.fill("#api_key", key)
        await self.page.click("form.sign-in button[type=submit]")
        await self.page.wait_for_url("**/queues")
        return self.page

    async def areas(self) -> set[str]:
        found: list[str] = await self.page.locator("nav.main a").evaluate_all(
            "links => links.map(link => link.dataset.area)"
        )
        return set(found)


@pytest.fixture
async def at(chromium: Browser) -> AsyncIterator[Any]:
    """``await at(node)``: a new person at that node's console."""
    contexts: list[BrowserContext] = []

    async def open_console(node: LocalNode) -> Person:
        assert node.console.url is not None
        context = await chromium.new_context(base_url=node.console.url, locale="zh-CN")
        contexts.append(context)
        return Person(context, await context.new_page())

    yield open_console
    for context in contexts:
        await context.close()


async def _key(node: LocalNode, name: str, role: str, org: UUID | None = None) -> str:
    headers = await node.api_key(name, role, org or node.root_id)  # type: ignore[arg-type]
    return headers["Authorization"].removeprefix("Bearer ")


async def test_each_role_sees_only_what_it_may(nodes: dict[str, LocalNode], at: Any) -> None:
    gushi = nodes[GUSHI]
    branch = await gushi.org("城关镇党支部")
    member = await gushi.member(branch, "王建华")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]
    secretary = await at(gushi)
    await secretary.sign_in(await _key(gushi, "roles-secretary", "secretary", branch))
    assert await secretary.areas() == {"work", "statistics"}
    await expect(secretary.page.locator("nav.main a[href^='/node']")).to_have_count(0)
    await expect(secretary.page.locator("nav.main a[href='/audit']")).to_have_count(0)
    await expect(secretary.page.locator("[data-role]")).to_have_text("书记")
    refused = await secretary.page.goto("/node")
    assert refused is not None
    assert refused.status == 403
    await expect(secretary.page.locator("h1")).to_have_text("无权访问")
    denied = await gushi.query(
        "SELECT actor, outcome FROM audit_log WHERE action = 'console GET /node'"
    )
    assert [r["outcome"] for r in denied] == ["denied"]

    auditor = await at(gushi)
    await auditor.sign_in(await _key(gushi, "roles-auditor", "auditor"))
    assert await auditor.areas() == {"work", "statistics", "trail"}
    assert (await auditor.page.goto("/node")).status == 403  # type: ignore[union-attr]
    await auditor.page.goto("/audit")
    await expect(
        auditor.page.locator("#audit tr[data-action='console.sign_in']").first
    ).to_be_visible()
    await auditor.page.goto(f"/movements/{movement}")
    await expect(auditor.page.locator("#origin-group")).to_contain_text("王建华")
    await expect(auditor.page.locator("#steps a[data-step]")).to_have_count(0)  # a reader

    operator = await at(gushi)
    await operator.sign_in(gushi.key)
    assert await operator.areas() == {"work", "statistics", "node", "trail"}
    await operator.page.goto(f"/movements/{movement}")  # the same page, to one who acts
    assert await operator.page.locator("#steps a[data-step]").count() > 0
    await operator.page.goto("/node")
    await expect(operator.page.locator("#services tr[data-service='registry']")).to_contain_text(
        "就绪"
    )
    await expect(operator.page.locator(f"#links tr[data-partner='{CHAOYANG}']")).to_be_visible()


async def test_scenario_1_at_the_origins_and_the_hosts_consoles(
    nodes: dict[str, LocalNode], at: Any
) -> None:
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("陈集镇第一党支部")
    member = await gushi.member(branch, "张建国")
    committee = await chaoyang.org("固始县驻京流动党员工作委员会", kind="working_committee")

    origin = await at(gushi)
    page = await origin.sign_in(await _key(gushi, "scenario-secretary", "secretary", branch))
    await page.goto(f"/members/{member}")
    await page.click("#register-outflow")
    await page.select_option("select[name='destination.jurisdiction']", CHAOYANG)
    await expect(page.locator("input[name='period.departed_on']")).not_to_have_value("")  # today
    await page.fill("input[name='contact.phone']", "+86 138 0000 1234")
    await page.click("#step-form button[type=submit]")  # no place yet: the registry says so
    place = page.locator("#step-form [data-field='destination.place']")
    await expect(place).to_have_class("field has-error")
    await expect(place.locator(".error")).to_contain_text("required")
    await expect(page.locator("input[name='contact.phone']")).to_have_value("+86 138 0000 1234")
    await page.fill("input[name='destination.place']", "北京市朝阳区十八里店乡")
    await page.click("#step-form button[type=submit]")
    await page.wait_for_url("**/movements/*")
    await expect(page.locator(".flash")).to_contain_text("外出登记")
    await expect(page.locator("h1")).to_contain_text("待报到")
    movement = page.url.split("/movements/")[1].split("?")[0]

    async def arrived() -> bool:
        return (await chaoyang.replica(movement))[0] is not None

    await eventually(arrived, what="Chaoyang receives the registration")
    host = await at(chaoyang)
    hp = await host.sign_in(chaoyang.key)
    await hp.goto("/queues?queue=to_do")
    row = hp.locator(f"#queue-items tr[data-movement='{movement}']")
    await expect(row).to_contain_text("张建国")
    await row.locator("a").click()
    await hp.wait_for_url(f"**/movements/{movement}")
    movement_page = hp.url
    async with hp.expect_request(lambda r: r.url.endswith("/steps/check-in")) as asked:
        await hp.click("#steps a[data-step='check-in']")  # htmx draws the form in place
    assert (await asked.value).headers.get("hx-request") == "true"
    await expect(hp.locator("#step-panel form[data-step='check-in']")).to_be_visible()
    assert hp.url == movement_page  # no page was loaded: the form came into this one
    await hp.click("#step-form button[type=submit]")  # nobody assigned, no organization given
    await expect(hp.locator("#step-form [data-field='host_org_id'] .error")).to_be_visible()
    await hp.select_option("select[name='host_org_id']", str(committee))
    await hp.click("#step-form button[type=submit]")
    await hp.wait_for_url(f"**/movements/{movement}?done=check-in")
    await expect(hp.locator("h1")).to_contain_text("已报到")
    await expect(hp.locator("#host-group")).to_contain_text("固始县驻京流动党员工作委员会")

    async def origin_sees_it() -> bool:
        return (await gushi.get(f"/v1/movements/{movement}"))["state"] == "active"

    await eventually(origin_sees_it, what="Gushi sees the check-in")
    await page.reload()
    await expect(page.locator("h1")).to_contain_text("已报到")
    await expect(page.locator("#history")).to_contain_text("已报到")


async def test_an_ended_session_sign_out_and_a_name_that_is_markup(
    nodes: dict[str, LocalNode], at: Any
) -> None:
    gushi = nodes[GUSHI]
    hostile = "<img src=x onerror=alert(1)>"
    member = await gushi.member(await gushi.org("东城街道党支部"), hostile)
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]
    created = await gushi.post(
        "/v1/api-keys", {"name": "ended-operator", "role": "operator",
                         "org_id": str(gushi.root_id)}, 201,
    )  # fmt: skip
    person = await at(gushi)
    dialogs: list[str] = []

    async def dialog(shown: Dialog) -> None:
        dialogs.append(shown.message)
        await shown.dismiss()

    person.page.on("dialog", dialog)
    page = await person.sign_in(created["api_key"])
    await page.goto(f"/members/{member}")
    await expect(page.locator("h1")).to_contain_text(hostile)  # the markup as text
    await page.goto(f"/movements/{movement}")
    await expect(page.locator("h1")).to_contain_text(hostile)
    await expect(page.locator("img[src='x']")).to_have_count(0)

    await gushi.post(f"/v1/api-keys/{created['key_id']}/revoke", None, 200)  # elsewhere
    await page.locator("#steps a[data-step]").first.click()  # an htmx request, no session
    await page.wait_for_url("**/sign-in?*reason=revoked")
    await expect(page.locator("form.sign-in")).to_contain_text("密钥已被吊销")

    await person.sign_in(gushi.key)
    await page.click("header.top form button[type=submit]")  # 退出
    await page.wait_for_url("**/sign-in?reason=signed_out")
    await expect(page.locator("form.sign-in")).to_contain_text("已退出登录")
    await page.goto("/queues")
    await page.wait_for_url("**/sign-in?next=%2Fqueues&reason=needed")
    assert dialogs == []


async def test_an_operator_retries_a_dead_letter(
    nodes: dict[str, LocalNode], at: Any, local_stack: LocalStack
) -> None:
    gushi = nodes[GUSHI]
    namespace = gushi.env["YIXIAN_KAFKA_TOPIC_NAMESPACE"]
    producer = Producer({"bootstrap.servers": local_stack.config.kafka_bootstrap})
    producer.produce(f"{namespace}.yixian.v1.{CHAOYANG}.to.{GUSHI}", b"{not json", key=b"x")
    assert producer.flush(30) == 0

    async def dead() -> bool:
        return bool(await gushi.value("SELECT count(*) FROM dead_letters"))

    await eventually(dead, what="sync's dead letter")
    letter = await gushi.value("SELECT max(id) FROM dead_letters")
    operator = await at(gushi)
    page = await operator.sign_in(gushi.key)
    await page.click("nav.main a[href='/node/dead-letters']")
    await page.click(f"#dead-letters tr[data-dead-letter='{letter}'] a")
    await expect(page.locator("#dead-letter-reason")).to_contain_text("not JSON")
    await expect(page.locator("#dead-letter-record")).to_contain_text("{not json")
    await page.click("#retry-dead-letter")
    await expect(page.locator("#dead-letter-message")).to_contain_text("重试结果：dead_letter")
    await expect(page.locator("#dead-letter-state")).to_contain_text("已重试，仍被拒绝")
    retried = await gushi.query(
        "SELECT actor, detail FROM audit_log WHERE action = 'dead_letter.retry' AND target = $1",
        f"dead_letter:{letter}",
    )
    assert len(retried) == 1
    assert retried[0]["actor"].startswith("key:")


async def test_a_trace_is_drawn_as_a_timeline(nodes: dict[str, LocalNode], at: Any) -> None:
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    member = await gushi.member(await gushi.org("段集镇党支部"), "李明")
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]

    async def expected() -> bool:
        return (await chaoyang.replica(movement))[0] is not None

    await eventually(expected, what="Chaoyang expects the member")
    await chaoyang.post(
        f"/v1/movements/{movement}/check-in", {"host_org_id": str(chaoyang.root_id)}, 200
    )

    async def checked_in() -> bool:
        return (await gushi.get(f"/v1/movements/{movement}"))["state"] == "active"

    await eventually(checked_in, what="Gushi sees the check-in")
    auditor = await at(gushi)
    page = await auditor.sign_in(await _key(gushi, "trace-auditor", "auditor"))
    await page.click("nav.main a[href='/trace']")
    await page.fill("input[name='id']", movement)
    await page.click("form.filters button[type=submit]")
    timeline = page.locator("svg#timeline")
    await expect(timeline).to_be_visible()
    steps: list[str] = await timeline.locator("g.row").evaluate_all(
        "rows => rows.map(row => row.dataset.step)"
    )
    assert steps[0] == "commit movement.register"
    assert "publish origin_group" in steps
    assert "apply host_group" in steps  # Chaoyang's check-in, applied here
    lanes: list[str] = await timeline.locator("text.lane-label").evaluate_all(
        "labels => labels.map(label => label.textContent)"
    )
    assert lanes == [GUSHI, CHAOYANG]  # a lane per node, in the order they appear
    latencies = await page.locator("#hops td.num").all_inner_texts()
    assert latencies[0] == ""
    assert all(text.startswith("+") for text in latencies[1:])

    await page.goto(f"/events?key={movement}")  # the same movement on the node's topics
    types = await page.locator("#events td.mono:nth-child(3)").all_inner_texts()
    assert "yixian.movement.origin_group.v1" in types  # on the local topic, from here
    assert "yixian.movement.host_group.v1" in types  # on the local topic and from Chaoyang
