"""The operator's ``yixian`` command against two live secure nodes."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.network import eventually
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER

from .conftest import NetworkFactory
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

pytestmark = pytest.mark.e2e


async def test_status_import_trace_replay_and_dead_letters(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames, tmp_path: Path
) -> None:
    nodes = await network([GUSHI, CHAOYANG], secure=True)
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]

    # import members: streamed with a progress bar, bad lines reported with their field
    branch = await gushi.org("第一支部")
    members_csv = tmp_path / "members.csv"
    members_csv.write_text(
        "org_id,name,joined_on\n"
        + "".join(f"{branch},党员{i},2010-07-01\n" for i in range(50))
        + f"{branch},,2010-07-01\n"
    )
    assert gushi.registry.url is not None
    printed = gushi.ops(
        "import", "members", str(members_csv),
        "--registry-url", gushi.registry.url, "--api-key", gushi.key,
    )  # fmt: skip
    assert "accepted 50, duplicates 0, rejected 1" in printed
    assert "line 52: name:" in printed

    member = (await gushi.query("SELECT member_id FROM members LIMIT 1"))[0]["member_id"]
    movement = (await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201))["movement_id"]

    async def arrived() -> bool:
        return (await chaoyang.replica(movement))[0] is not None

    await eventually(arrived, what="the movement at Chaoyang")

    # status: links, lag, backlog, dead letters
    async def healthy() -> bool:
        status = json.loads(chaoyang.ops("node", "status", "--json"))
        links = {link["partner"]: link for link in status["links"]}
        return GUSHI in links and links[GUSHI]["state"] == "healthy"

    await eventually(healthy, what="a healthy link in node status")
    status = json.loads(chaoyang.ops("node", "status", "--json"))
    assert status["kafka_error"] is None
    assert (
        topic_names.pair(GUSHI, CHAOYANG)
        in status["consumer_lag"][f"{topic_names.namespace}.yixian.{CHAOYANG}.sync"]
    )
    assert status["dead_letters_open"] == 0

    # trace by member id: the commit at Gushi, the publish, the apply at Chaoyang
    hops = json.loads(chaoyang.ops("trace", str(member), "--json"))
    steps = [(h["node"], h["service"], h["step"]) for h in hops]
    assert (GUSHI, "relay", "publish origin_group") in steps
    assert (CHAOYANG, "sync", "apply origin_group") in steps
    assert all(h["latency_ms"] is None or h["latency_ms"] >= 0 for h in hops)
    event_id = next(h["event_id"] for h in hops if h["service"] == "sync")
    by_event = json.loads(chaoyang.ops("trace", event_id, "--json"))
    assert {h["step"] for h in by_event} >= {"apply origin_group"}
    human = gushi.ops("trace", movement)
    assert "registry commit movement.register" in human

    # replay: Gushi publishes its pair events again; Chaoyang applies none twice
    async def duplicates() -> float:
        assert chaoyang.sync.url is not None
        async with httpx.AsyncClient(base_url=chaoyang.sync.url) as client:
            text = (await client.get("/metrics")).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "yixian_sync_events_total" and sample.labels["outcome"] == "duplicate"
        )

    applied = await chaoyang.value("SELECT count(*) FROM inbox WHERE outcome = 'applied'")
    before = await duplicates()
    chaoyang.ops("replay", "--partner", GUSHI, "--from", "1")

    async def replayed() -> bool:
        return await duplicates() > before

    await eventually(replayed, what="replayed events absorbed as duplicates")
    assert await chaoyang.value("SELECT count(*) FROM inbox WHERE outcome = 'applied'") == applied

    # anti-entropy on demand: a digest goes to the partner, which finds nothing to repair
    digests = "SELECT count(*) FROM outbox WHERE event_type = 'yixian.link.digest.v1'"
    sent_before = await chaoyang.value(digests)
    assert "digest sent to" in chaoyang.ops("partner", "anti-entropy", GUSHI)
    assert await chaoyang.value(digests) > sent_before
    assert await chaoyang.value("SELECT count(*) FROM inbox WHERE outcome = 'applied'") == applied

    # dead letters: listed with the reason; a retry that still fails stays listed
    bad = Producer(
        {
            "bootstrap.servers": local_stack.config.sasl_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": ADMIN_USER,
            "sasl.password": ADMIN_PASSWORD,
        }
    )
    bad.produce(topic_names.pair(GUSHI, CHAOYANG), b"{not json", key=b"x")
    assert bad.flush(30) == 0

    async def listed() -> bool:
        return len(json.loads(chaoyang.ops("dlq", "list", "--json"))) == 1

    await eventually(listed, what="the dead letter listed")
    letter = json.loads(chaoyang.ops("dlq", "list", "--json"))[0]
    assert letter["reason"].startswith("not JSON")
    assert f"{letter['id']}: dead_letter" in chaoyang.ops("dlq", "retry", str(letter["id"]))
    again = json.loads(chaoyang.ops("dlq", "list", "--json"))
    assert again[0]["retry_outcome"] == "dead_letter"
    assert UUID(movement)
