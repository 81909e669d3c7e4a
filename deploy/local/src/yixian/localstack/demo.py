"""The main job: three live nodes walk through the brief's scenarios, then the trace of one
movement across the nodes and the notices that arrived are printed.

Gushi (411525), Putian (350300) and Chaoyang (110105) each run registry, relay, sync and
notify as real processes over their own database, on the local Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx

from yixian.contracts import TopicNames
from yixian.ops.trace import Hop, merge, render, timeline

from .network import LocalNode, eventually, node_env
from .sinks import HttpSink, MailSink
from .stack import LocalStack

GUSHI, PUTIAN, CHAOYANG = "411525", "350300", "110105"
NAMES = {GUSHI: "固始县委组织部", PUTIAN: "莆田市委组织部", CHAOYANG: "朝阳区委组织部"}
Say = Callable[[str], None]


def _outflow(member: UUID, host: str, place: str) -> dict[str, Any]:
    return {
        "member_id": str(member),
        "destination": {"jurisdiction": host, "place": place},
        "period": {"departed_on": "2026-03-01", "expected_return_on": "2026-12-31"},
        "contact": {"phone": f"+86 138 {uuid4().int % 10**8:08d}"},
        "reason": {"kind": "work", "text": "务工"},
    }


async def _state(node: LocalNode, movement: str) -> str:
    return str((await node.get(f"/v1/movements/{movement}"))["state"])


async def _until(node: LocalNode, movement: str, state: str, what: str) -> None:
    async def reached() -> bool:
        try:
            return await _state(node, movement) == state
        except AssertionError:
            return False

    await eventually(reached, what=what, within=60)


async def run_demo(
    stack: LocalStack, say: Say = print, keep: bool = False, linger: bool = False
) -> None:
    """The demo; ``keep``: leave the nodes running; ``linger``: keep them (and their
    consoles) up until Enter is pressed."""
    logs = stack.config.state_dir / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    mail, http = MailSink().start(), HttpSink().start()
    topics = TopicNames("demo")
    nodes: dict[str, LocalNode] = {}
    try:
        say("Setting up three nodes (yixian node init, yixian partner link) ...")
        codes = [GUSHI, PUTIAN, CHAOYANG]
        for code in codes:
            url = await stack.fresh_database(f"demo_{code}")
            partners = [c for c in codes if c != code]
            env = {
                **node_env(stack, code, url, topics, partners, secure=True),
                "YIXIAN_SMTP_HOST": "127.0.0.1",
                "YIXIAN_SMTP_PORT": str(mail.port),
                "YIXIAN_SMS_GATEWAY": f"{http.url}/sms",
                "YIXIAN_WEBHOOK_SECRET": "demo-webhook-secret",
                "YIXIAN_QUIET_START": "00:00",
                "YIXIAN_QUIET_END": "00:00",
            }
            node = LocalNode(code, NAMES[code], url, env, logs, with_notify=True, with_console=True)
            node.init()
            nodes[code] = node
            say(f"  {code} {NAMES[code]}: Kafka principal {env['YIXIAN_KAFKA_USERNAME']}")
        for a, b in itertools.combinations(codes, 2):
            nodes[a].link(b)
            say(f"  linked {a} ⇄ {b}")
        say("Starting registry, relay, sync, notify and the console of each node ...")
        for code, node in nodes.items():
            node.start()
            say(f"  {code}: registry {node.registry.url}, sync {node.sync.url},"
                f" console {node.console.url}")  # fmt: skip
        movement = await _scenarios(nodes, say)
        await asyncio.sleep(3)  # let the last notices go out
        _print_trace(nodes, movement, say)
        _print_notices(mail, http, say)
        _print_consoles(nodes, movement, say)
        await _look_in_console(nodes[GUSHI], movement, say)
        say(f"\nLogs of every process: {logs}")
        if linger and not keep:
            say("\nThe nodes and their consoles stay up until you press Enter.")
            await asyncio.to_thread(input)
    finally:
        for node in nodes.values():
            if node.http is not None:
                await node.http.aclose()
            if not keep:
                node.stop()
        mail.stop()
        http.stop()


async def _scenarios(nodes: dict[str, LocalNode], say: Say) -> str:
    gushi, putian, chaoyang = nodes[GUSHI], nodes[PUTIAN], nodes[CHAOYANG]
    say(
        "\nScenario 1 — Gushi registers M's outflow to Chaoyang; check-in, three theme days, return"
    )
    branch = await gushi.org("陈集镇第一党支部", contact_email="chenji@gushi.example")
    await chaoyang.query(
        "UPDATE organizations SET contact_email = 'zzb@chaoyang.example' WHERE parent_id IS NULL"
    )
    committee = await chaoyang.org(
        "固始县驻京流动党员工作委员会",
        kind="working_committee",
        contact_email="wc@chaoyang.example",
    )
    member = await gushi.member(branch, "张建国")
    m1 = (
        await gushi.post("/v1/movements", _outflow(member, CHAOYANG, "北京市朝阳区十八里店乡"), 201)
    )["movement_id"]
    await _until(chaoyang, m1, "awaiting_check_in", "Chaoyang sees M as expected")
    say(f"  movement {m1}: Chaoyang expects M in its intake (Gushi named no organization)")
    await chaoyang.post(f"/v1/movements/{m1}/assign", {"org_id": str(committee)}, 200)
    assigned = await chaoyang.get(f"/v1/queues?org_id={committee}")
    if not any(item["movement_id"] == m1 for items in assigned.values() for item in items):
        raise AssertionError("the working committee's queue does not show M")
    say("  Chaoyang's intake assigns M to the working committee; M is in its queue")
    await chaoyang.post(f"/v1/movements/{m1}/check-in", {}, 200)
    await _until(gushi, m1, "active", "Gushi sees the check-in")
    say("  the working committee checks M in; Gushi sees it")
    for n in range(1, 4):
        body = {
            "participation_id": str(uuid4()),
            "kind": "theme_day",
            "title": f"{n}月主题党日",
            "attended_at": f"2026-0{n + 3}-01T01:00:00Z",
        }
        await chaoyang.post(f"/v1/movements/{m1}/participations", body, 201)

    async def three() -> bool:
        return len((await gushi.get(f"/v1/movements/{m1}"))["participations"]) == 3

    await eventually(three, what="Gushi sees three theme days")
    say("  three theme-day attendances recorded at Chaoyang; Gushi sees them")
    await gushi.post(f"/v1/movements/{m1}/return", {"returned_on": "2026-07-01"}, 200)
    await _until(chaoyang, m1, "closed_returned", "both sides closed")
    say("  M returned: closed on both sides")

    say("\nScenario 2 — a Putian member moves to Chaoyang, then relocates to Gushi")
    p_member = await putian.member(
        await putian.org("城厢区党支部", contact_email="cx@putian.example"), "林志强"
    )
    m2 = (await putian.post("/v1/movements", _outflow(p_member, CHAOYANG, "朝阳区"), 201))[
        "movement_id"
    ]
    await _until(chaoyang, m2, "awaiting_check_in", "Chaoyang expects the Putian member")
    relocated = await putian.post(
        f"/v1/movements/{m2}/relocate",
        {
            "destination": {"jurisdiction": GUSHI, "place": "固始县城关镇"},
            "departed_on": "2026-04-01",
        },
        201,
    )
    m3 = relocated["movement_id"]
    await _until(chaoyang, m2, "closed_relocated", "Chaoyang closes")
    await _until(gushi, m3, "awaiting_check_in", "Gushi opens")
    say(f"  Chaoyang closed {m2}; Gushi opened {m3}; Putian follows both")

    say("\nScenario 3 — transfer: requested, accepted, completed; a second one rejected")
    for name, decision in (("王伟", "accepted"), ("刘洋", "rejected")):
        mid = (
            await gushi.post(
                "/v1/movements", _outflow(await gushi.member(branch, name), CHAOYANG, "朝阳区"), 201
            )
        )["movement_id"]
        await _until(chaoyang, mid, "awaiting_check_in", "host expects")
        await chaoyang.post(f"/v1/movements/{mid}/check-in", {"host_org_id": str(committee)}, 200)
        await _until(gushi, mid, "active", "origin sees the check-in")
        await gushi.post(f"/v1/movements/{mid}/transfer/request", {"note": "已在京稳定就业"}, 200)
        await _until(chaoyang, mid, "transfer_pending", "host sees the request")
        reply = {"decision": decision} | (
            {"reason": "尚未满足转接条件"} if decision == "rejected" else {}
        )
        await chaoyang.post(f"/v1/movements/{mid}/transfer/reply", reply, 200)
        await _until(gushi, mid, f"transfer_{decision}", "origin sees the answer")
        if decision == "accepted":
            await gushi.post(f"/v1/movements/{mid}/transfer/complete", None, 200)
            await _until(chaoyang, mid, "closed_transferred", "both closed")
            say(f"  {name}: transfer accepted and completed")
            enrolled = await chaoyang.post(
                f"/v1/movements/{mid}/enrol", {"org_id": str(committee)}, 201
            )
            gone = await gushi.get("/v1/members?status=transferred_out")
            if [m["name"] for m in gone["items"]] != [name]:
                raise AssertionError(f"Gushi does not keep {name} as transferred out")
            say(
                f"  {name}: enrolled at Chaoyang's working committee as member"
                f" {enrolled['member']['member_id']}; Gushi keeps {name} as transferred out"
            )
        else:
            await gushi.post(f"/v1/movements/{mid}/transfer/withdraw", None, 200)
            await _until(chaoyang, mid, "active", "membership stays")
            say(f"  {name}: transfer rejected; membership stays with Gushi")

    say("\nScenario 6 — the host loses contact with a member, then restores it")
    mid = (
        await gushi.post(
            "/v1/movements", _outflow(await gushi.member(branch, "赵敏"), CHAOYANG, "朝阳区"), 201
        )
    )["movement_id"]
    await _until(chaoyang, mid, "awaiting_check_in", "host expects")
    await chaoyang.post(f"/v1/movements/{mid}/check-in", {"host_org_id": str(committee)}, 200)
    await chaoyang.post(f"/v1/movements/{mid}/lost-contact", {"since": "2026-03-15"}, 200)
    await _until(gushi, mid, "lost_contact", "origin told")
    await chaoyang.post(f"/v1/movements/{mid}/restore-contact", None, 200)
    await _until(gushi, mid, "active", "contact restored")
    say("  lost contact seen at Gushi, then restored on both sides")

    say("\nFeedback — the visiting member raises a concern at Chaoyang; the committee answers")
    concern = {
        "movement_id": mid,
        "addressed_to": "host",
        "text": "小区东门路灯坏了，夜里回家不安全，能否帮忙反映？",
    }
    raised = await chaoyang.post("/v1/feedback", concern, 201)
    answer = {"text": "已联系街道，本周内修复路灯。"}
    answered = await chaoyang.post(f"/v1/feedback/{raised['feedback_id']}/answers", answer, 201)
    stats = await chaoyang.get("/v1/feedback/statistics")
    say(
        f"  answered in {answered['first_answer_seconds']:.0f} s (median first answer"
        f" {stats['first_answer_seconds']['median']:.0f} s); the member is told by SMS"
    )

    async def origin_sees_it() -> bool:
        host = (await gushi.get(f"/v1/movements/{mid}"))["host_group"]
        return bool(host and host.get("feedback") and host["feedback"]["answered"] == 1)

    await eventually(origin_sees_it, what="Gushi sees the concern answered")
    say("  Gushi sees that a concern was raised and answered, not its text")

    say("\nScenario 7 — Chaoyang schedules a theme day; everyone present is invited once")
    for name in ("陈静", "周磊"):
        body = {
            "org_id": str(committee),
            "name": name,
            "joined_on": "2012-07-01",
            "phone": f"+86 139 {uuid4().int % 10**8:08d}",
        }
        await chaoyang.post("/v1/members", body, 201)
    await chaoyang.post(
        "/v1/activities",
        {"org_id": str(committee), "kind": "theme_day", "title": "七月主题党日：重温入党誓词",
         "starts_at": _in_days(30), "location": "十八里店乡党群服务中心"},
        201,
    )  # fmt: skip
    present = await chaoyang.get(f"/v1/organizations/{committee}/present")
    say(
        f"  {len(present)} present in the working committee's area: "
        + ", ".join(p["name"] for p in present)
    )
    await _unregistered_visitors(gushi, chaoyang, branch, say)
    return str(m1)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _national_id(first17: str) -> str:
    """A resident ID number with its check character (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


async def _unregistered_visitors(
    gushi: LocalNode, chaoyang: LocalNode, branch: UUID, say: Say
) -> None:
    say("\nThe unregistered visitor (口袋党员) — two people at Chaoyang say they are Gushi's")
    known, unknown = _national_id("41152519800101123"), _national_id("41152519900202456")
    body = {"org_id": str(branch), "name": "孙立", "joined_on": "2005-07-01",
            "phone": "+86 138 0000 0777", "national_id": known}  # fmt: skip
    member = (await gushi.post("/v1/members", body, 201))["member_id"]
    claims = {}
    for name, number in (("孙立", known), ("钱进", unknown)):
        visitor = {"name": name, "national_id": number, "contact": {"phone": "+86 139 0000 0888"}}
        claims[name] = (await chaoyang.post("/v1/visitors", visitor, 201))["claim_id"]
    say("  Chaoyang asks Gushi with each name and the ID's last four characters only")

    async def looked() -> bool:
        found = {c["claim_id"]: c for c in (await gushi.get("/v1/visitor-claims"))["claims"]}
        return set(claims.values()) <= found.keys() and all(
            bool(found[c]["result"]) for c in claims.values()
        )

    await eventually(looked, what="Gushi looks at both claims")
    confirmed = await gushi.post(
        f"/v1/visitor-claims/{claims['孙立']}/confirm", {"place": "北京市朝阳区"}, 201
    )
    if confirmed["member_id"] != str(member):
        raise AssertionError("Gushi confirmed another member")

    async def settled() -> bool:
        mine = {v["claim_id"]: v for v in (await chaoyang.get("/v1/visitors"))["visitors"]}
        states = (mine[claims["孙立"]]["state"], mine[claims["钱进"]]["state"])
        return states == ("matched", "no_match")

    await eventually(settled, what="Chaoyang hears both answers")
    say(
        f"  孙立: Gushi's member; Gushi registers the outflow ({confirmed['movement_id']}),"
        " Chaoyang now expects him (counted once, at Gushi)"
    )
    say("  钱进: no Gushi member fits; the claim stays in Chaoyang's to-do")


def _in_days(days: int) -> str:
    """A time ``days`` from now: an activity is scheduled at most a year ahead."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


def _print_trace(nodes: dict[str, LocalNode], movement: str, say: Say) -> None:
    """``yixian trace`` on every node (each sees its database and the topics it may read),
    merged into one timeline."""
    say(f"\nTrace of movement {movement} (scenario 1) across the nodes (yixian trace)")
    hops = []
    for node in nodes.values():
        try:
            found = json.loads(node.ops("trace", movement, "--json"))
        except RuntimeError as exc:
            if "is no movement" not in str(exc):
                raise
            continue  # a node the movement never touched
        for hop in found:
            hops.append(Hop(**(hop | {"at": datetime.fromisoformat(hop["at"])})))
    for line in render(timeline(merge(hops))):
        say("  " + line)


def _print_notices(mail: MailSink, http: HttpSink, say: Say) -> None:
    say(f"\nNotices received by the local mail server ({len(mail.mails)})")
    for m in mail.mails:
        say(f"  to {', '.join(m.to):<28} {m.subject}")
    sms = [r.json() for r in http.requests if r.path.endswith("/messages")]
    say(f"\nText messages received by the local SMS gateway ({len(sms)})")
    for s in sms:
        say(f"  to {s['to']:<20} {s['text'][:70]}")


def _print_consoles(nodes: dict[str, LocalNode], movement: str, say: Say) -> None:
    """Where each node's console is, and a key to sign in with (the node's first operator
    key: it sees the queues, the node's health, traces and the notices sent)."""
    say("\nThe consoles (sign in with the node's operator API key)")
    for code, node in nodes.items():
        say(f"  {code} {NAMES[code]}: {node.console.url}  key {node.key}")
    gushi = nodes[GUSHI].console.url
    say(f"  scenario 1's movement at Gushi: {gushi}/movements/{movement}")
    say(f"  its trace as a timeline: {gushi}/trace?id={movement}")


_SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')


async def _look_in_console(node: LocalNode, movement: str, say: Say) -> None:
    """Sign in to a node's console as its operator, as a person would, and say what the
    movement's page and its trace show."""
    if node.console.url is None:
        raise RuntimeError(f"{node.code}'s console is not running")
    async with httpx.AsyncClient(base_url=node.console.url, timeout=30) as browser:
        form = await browser.get("/sign-in")
        token = _SIGN_IN_TOKEN.search(form.text)
        if token is None:
            raise RuntimeError(f"the console's sign-in page has no form ({form.status_code})")
        signed = await browser.post(
            "/sign-in",
            data={"sign_in_token": token.group(1), "api_key": node.key, "next": "/queues"},
        )
        if signed.status_code != 303:
            raise RuntimeError(f"the console refused the operator key ({signed.status_code})")
        page = (await browser.get(f"/movements/{movement}")).text
        notices = page.split('<table id="notices">', 1)[-1].split("</table>", 1)[0]
        trace = (await browser.get("/trace", params={"id": movement})).text
    rows, hops = notices.count("<tr>") - 1, trace.count('class="row"')
    say(
        f"  the console shows it: {rows} notices on the movement's page,"
        f" {hops} hops in its timeline"
    )


def main(keep: bool = False) -> None:
    stack = LocalStack.from_env()
    stack.up(report=lambda line: print(line))
    asyncio.run(run_demo(stack, keep=keep, linger=sys.stdin.isatty()))
