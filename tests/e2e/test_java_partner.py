"""A partner in another language: the reference Java consumer (partners/java-consumer), built
with Maven, reads a live node's pair topic over SASL as the partner node's own principal, with
only the grants the design gives it, and finds every event the node published valid. Events
forged onto a pair topic by the cluster's super user are reported invalid, each naming its
field, with a non-zero exit; what the broker refuses, and every bad option, is one clear line
and its own exit status."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka import Producer

from yixian.contracts import (
    LinkDigest,
    LinkHeartbeat,
    TopicNames,
    record_key,
)
from yixian.contracts.envelope import node_source
from yixian.contracts.examples import example_events
from yixian.contracts.routes import ROUTES, Topic
from yixian.localstack import LocalStack
from yixian.localstack.network import LocalNode, eventually, node_env
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.kafka import ClusterAdmin, TopicPolicy, principal
from yixian.runtime.settings import KafkaSettings

from .test_sync_scenarios import CHAOYANG, GUSHI, PUTIAN, outflow

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "partners" / "java-consumer"
JAR = PROJECT / "target" / "yixian-partner-consumer.jar"
SCHEMAS = ROOT / "contracts" / "schemas" / "current" / "v1"
HEARTBEAT, DIGEST = "yixian.link.heartbeat.v1", "yixian.link.digest.v1"
ORIGIN_GROUP = "yixian.movement.origin_group.v1"
EVENT_TYPE = re.compile(r"yixian\.[a-z_]+\.[a-z_]+\.v\d+")  # a schema file's name, less .json
VALID, INVALID, BAD_OPTION, BROKER_REFUSED = 0, 1, 2, 3


@pytest.fixture(scope="module")
def consumer_jar() -> Path:
    """The consumer built with Maven: offline when ~/.m2 has everything, else fetching what
    it lacks from Maven Central (the first build on a machine)."""
    missing = [tool for tool in ("mvn", "java", "javac") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: deploy/local/bootstrap.sh installs them")
    command = ["mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(PROJECT / "pom.xml"), "package"]
    built = subprocess.run([*command[:1], "-o", *command[1:]], capture_output=True, text=True)
    if built.returncode != 0:
        built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, f"mvn package failed:\n{built.stdout}{built.stderr}"
    return JAR


@dataclass
class Run:
    status: int
    lines: list[dict[str, Any]]
    summary: dict[str, Any] | None
    stderr: str

    def by_id(self) -> dict[str | None, dict[str, Any]]:
        return {line["id"]: line for line in self.lines}


def java(jar: Path, *args: str) -> list[str]:
    return ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", str(jar), *args]


def environment(password: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "YIXIAN_KAFKA_PASSWORD"}
    if password is not None:
        env["YIXIAN_KAFKA_PASSWORD"] = password
    return env


def consume(jar: Path, *args: str, password: str | None) -> Run:
    """Run the consumer; its exit status, its lines and its summary."""
    done = subprocess.run(
        java(jar, *args), env=environment(password), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    summary = None
    for line in done.stderr.splitlines():
        if line.startswith('{"summary"'):
            summary = json.loads(line)["summary"]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return Run(done.returncode, lines, summary, done.stderr)


def _kafka(stack: LocalStack, namespace: str, *, admin: bool) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=stack.config.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        username=ADMIN_USER if admin else None,
        password=ADMIN_PASSWORD if admin else None,
        topic_namespace=namespace,
    )


def cluster_admin(stack: LocalStack, topics: TopicNames) -> ClusterAdmin:
    return ClusterAdmin(
        _kafka(stack, topics.namespace, admin=True), _kafka(stack, topics.namespace, admin=False)
    )


def partner_principal(stack: LocalStack, topics: TopicNames) -> str:
    """Chaoyang's principal with exactly its node's grants, as its own ``yixian node init``
    makes them (its topics, its SCRAM user, its consumer groups); its password."""
    password = f"{CHAOYANG}-{uuid4().hex}"
    cluster_admin(stack, topics).init_node(CHAOYANG, password, TopicPolicy())
    return password


async def test_the_partner_reads_every_event_a_live_node_published_and_finds_it_valid(
    consumer_jar: Path,
    local_stack: LocalStack,
    make_database: Callable[[], Awaitable[str]],
    topic_names: TopicNames,
    tmp_path: Path,
) -> None:
    url = await make_database()
    env = node_env(local_stack, GUSHI, url, topic_names, [CHAOYANG], secure=True)
    gushi = LocalNode(GUSHI, "固始县委组织部", url, env, tmp_path)
    gushi.init()  # yixian node init: Gushi's topics, principal and grants
    password = partner_principal(local_stack, topic_names)
    gushi.link(CHAOYANG)  # yixian partner link: both pair topics and their grants
    pair = topic_names.pair(GUSHI, CHAOYANG)
    try:
        gushi.start()
        branch = await gushi.org("陈集镇第一党支部")
        movements = []
        for name in ("张建国", "李秀英"):
            member = await gushi.member(branch, name)
            created = await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201)
            movements.append(created["movement_id"])
        await gushi.post(f"/v1/movements/{movements[1]}/cancel", None, 200)

        async def published() -> bool:
            rows = await gushi.query(
                "SELECT event_type FROM outbox WHERE topic = $1 AND published_at IS NOT NULL",
                pair,
            )
            types = [r["event_type"] for r in rows]
            return types.count(ORIGIN_GROUP) == 3 and HEARTBEAT in types and DIGEST in types

        await eventually(published, what="the outflows, a heartbeat and a digest published")
        gushi.sync.stop()  # no more heartbeats: what is on the topic is what the outbox says

        async def drained() -> bool:
            return not await gushi.value(
                "SELECT count(*) FROM outbox WHERE topic = $1 AND published_at IS NULL", pair
            )

        await eventually(drained, what="the outbox drained")
    finally:
        gushi.stop()
    rows = await gushi.query(
        "SELECT event_id, event_type, pairseq, record_key FROM outbox WHERE topic = $1", pair
    )

    run = consume(
        consumer_jar,
        "--bootstrap-servers", local_stack.config.sasl_bootstrap,
        "--source", GUSHI, "--destination", CHAOYANG, "--namespace", topic_names.namespace,
        "--schemas", str(SCHEMAS), "--max-events", str(len(rows)), "--idle-timeout", "30",
        password=password,
    )  # fmt: skip

    assert run.status == VALID, run.stderr
    assert [line for line in run.lines if not line["valid"]] == []
    read = run.by_id()
    assert set(read) == {str(r["event_id"]) for r in rows}  # every event, each once
    for row in rows:
        line = read[str(row["event_id"])]
        assert line["type"] == row["event_type"]
        assert line["key"] == bytes(row["record_key"]).decode()
        assert line["pairseq"] == row["pairseq"]
        assert line["errors"] == []
        assert line["notes"] == []
    assert {line["key"] for line in run.lines if line["type"] == ORIGIN_GROUP} == set(movements)
    assert sorted(line["pairseq"] for line in run.lines) == list(range(1, len(rows) + 1))
    assert run.summary is not None
    assert run.summary["user"] == principal(CHAOYANG, topic_names)  # the default: the reader
    assert run.summary["group"].startswith(f"{topic_names.namespace}.yixian.{CHAOYANG}.")
    assert (run.summary["events"], run.summary["invalid"]) == (len(rows), 0)
    assert run.summary["epochs"][0]["missing"] == []


@dataclass
class ForgedTopic:
    topics: TopicNames
    password: str
    verdicts: dict[str, set[str]]
    """Each record's event id → the fields the consumer must name (none: valid)."""
    count: int
    examples: int
    unknown_field: str
    resent: str


def _forge(event: Any, pairseq: int | None = None, **changes: Any) -> dict[str, Any]:
    """An encoded event as a document, numbered, with ``changes`` applied on top."""
    document: dict[str, Any] = json.loads(event.encode())
    if pairseq is not None:
        document["pairseq"] = pairseq
    document.update(changes)
    return document


@pytest.fixture(scope="module")
def forged_topic(local_stack: LocalStack) -> ForgedTopic:
    """Putian's pair topic to Chaoyang, written by the cluster's super user (the loopback
    PLAINTEXT listener): one example of every event type, each as its writer encodes it
    and valid, then forgeries that each break one rule."""
    topics = TopicNames(namespace=f"t{uuid4().hex[:12]}")
    password = partner_principal(local_stack, topics)
    cluster_admin(local_stack, topics).link(PUTIAN, CHAOYANG, TopicPolicy())
    records: list[tuple[bytes, bytes]] = []
    verdicts: dict[str, set[str]] = {}

    def add(document: dict[str, Any], key: bytes, *fields: str) -> None:
        records.append((key, json.dumps(document, ensure_ascii=False).encode()))
        verdicts[document["id"]] = set(fields)

    examples = []
    on_pairs = [e for e in example_events() if Topic.PAIR in ROUTES[e.type].topics]
    for number, example in enumerate(on_pairs, start=1):
        event = example.model_copy(update={"source": node_source(PUTIAN), "pairseq": number})
        if isinstance(event.data, LinkHeartbeat):  # it names the link and what went before
            heartbeat = event.data.model_copy(
                update={"source": PUTIAN, "destination": CHAOYANG, "last_sequence": number - 1}
            )
            event = event.model_copy(update={"data": heartbeat})
        if isinstance(event.data, LinkDigest):
            digest = event.data.model_copy(update={"as_of_sequence": number - 1})
            event = event.model_copy(update={"data": digest})
        examples.append(event)
        add(_forge(event), record_key(event))
    schemas = {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.json")}
    assert {e.type for e in examples} == {
        t for t in schemas if EVENT_TYPE.fullmatch(t) and Topic.PAIR in ROUTES[t].topics
    }  # every type a pair topic carries (an activity goes to the local topic only)
    origin = next(e for e in examples if e.type == ORIGIN_GROUP)
    key, n = record_key(origin), len(examples)

    resent = _forge(origin)  # the same event again, as after a failure: valid, noted
    add(resent, key)
    unknown = _forge(origin, n + 1, id=str(uuid4()))  # a later v1 writer's optional field
    unknown["data"]["group"]["contact"]["fax"] = "+86 10 0000 0000"
    add(unknown, key, "data.group.contact.fax")
    # Gushi's own event, let onto Putian's topic by an admin
    add(_forge(origin.model_copy(update={"source": node_source(GUSHI)}), n + 2, id=str(uuid4())),
        key, "source")  # fmt: skip
    add(_forge(origin, id=str(uuid4())), key, "pairseq")  # never numbered
    add(_forge(origin, origin.pairseq, id=str(uuid4())), key, "pairseq")  # a number reused
    wrong_type = _forge(origin, n + 3, id=str(uuid4()))
    wrong_type["data"]["group"]["version"] = "2"
    add(wrong_type, key, "data.group.version")
    no_spec = _forge(origin, n + 4, id=str(uuid4()))
    del no_spec["specversion"]  # optional in the first v1 schemas; a CloudEvent needs it
    add(no_spec, key, "specversion")
    zeros = "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
    add(_forge(origin, n + 5, id=str(uuid4()), traceparent=zeros), key, "traceparent")
    add(_forge(origin, n + 6, id=str(uuid4())), str(uuid4()).encode(), "key")  # another movement
    year_ahead = int((datetime.now(UTC) + timedelta(days=365)).timestamp() * 1_000_000)
    add(_forge(origin, n + 7, id=str(uuid4()), pairepoch=year_ahead), key, "pairepoch")
    no_zone = _forge(origin, n + 8, id=str(uuid4()), time="2026-03-01T08:30:00")
    add(no_zone, key, "time")
    records.append((b"link", b"{not json"))
    verdicts["(not JSON)"] = {"value"}

    producer = Producer({"bootstrap.servers": local_stack.config.kafka_bootstrap,
                         "enable.idempotence": True})  # fmt: skip
    for record_key_, value in records:
        producer.produce(topics.pair(PUTIAN, CHAOYANG), value, key=record_key_)
    assert producer.flush(30) == 0
    return ForgedTopic(
        topics, password, verdicts, len(records), len(examples), unknown["id"], resent["id"]
    )


def _fields(line: dict[str, Any]) -> set[str]:
    return {error["field"] for error in line["errors"]}


def test_forged_events_are_reported_invalid_each_naming_its_field(
    consumer_jar: Path, local_stack: LocalStack, forged_topic: ForgedTopic
) -> None:
    forged = forged_topic
    args = (
        "--bootstrap-servers", local_stack.config.sasl_bootstrap,
        "--topic", forged.topics.pair(PUTIAN, CHAOYANG), "--schemas", str(SCHEMAS),
        "--max-events", str(forged.count), "--idle-timeout", "30",
    )  # fmt: skip
    tolerant_group = ("--group", f"{forged.topics.namespace}.yixian.{CHAOYANG}.tolerant")
    with ThreadPoolExecutor(max_workers=2) as pool:
        strict, tolerant = pool.map(
            lambda extra: consume(consumer_jar, *args, *extra, password=forged.password),
            [(), ("--tolerant", *tolerant_group)],
        )

    assert strict.status == INVALID, strict.stderr
    assert len(strict.lines) == forged.count
    found = strict.by_id()
    not_json = found.pop(None)
    assert _fields(not_json) == {"value"}
    assert not not_json["valid"]
    expected = {k: v for k, v in forged.verdicts.items() if k != "(not JSON)"}
    assert {i: _fields(line) for i, line in found.items()} == expected
    assert all(line["valid"] == (not expected[i]) for i, line in found.items())
    first, again = [line for line in strict.lines if line["id"] == forged.resent]
    assert first["notes"] == []
    assert again["valid"]
    assert again["notes"][0].startswith("sent again: pairseq")
    assert strict.summary is not None
    assert strict.summary["invalid"] == sum(1 for v in forged.verdicts.values() if v)
    n = forged.examples  # only events otherwise valid count; each number once
    assert strict.summary["epochs"] == [{"epoch": 0, "numbers": n, "highest": n, "missing": []}]

    # read as a node reads (ADR 3): a later writer's optional field is left out, not an error
    assert tolerant.status == INVALID, tolerant.stderr
    unknown = tolerant.by_id()[forged.unknown_field]
    assert unknown["valid"]
    assert unknown["errors"] == []
    assert unknown["notes"] == [
        "unknown field data.group.contact.fax left out (a later v1 writer's, docs/adr/0003)"
    ]
    assert sum(not line["valid"] for line in tolerant.lines) == strict.summary["invalid"] - 1


def test_the_broker_refuses_what_the_design_does_not_grant_in_one_line(
    consumer_jar: Path, local_stack: LocalStack, forged_topic: ForgedTopic
) -> None:
    topics, password = forged_topic.topics, forged_topic.password
    base = ("--bootstrap-servers", local_stack.config.sasl_bootstrap, "--schemas", str(SCHEMAS),
            "--idle-timeout", "5")  # fmt: skip
    own = ("--topic", topics.pair(PUTIAN, CHAOYANG))
    cases = [
        # a wrong password
        ((*base, *own), "not-the-password", "cannot log in"),
        # a group outside the node's own prefix
        ((*base, *own, "--group", f"{topics.namespace}.yixian.{PUTIAN}.x"), password,
         f"may use only groups starting with {topics.namespace}.yixian.{CHAOYANG}."),
        # the topic Chaoyang writes to Putian (so may describe): Chaoyang may not read it
        ((*base, "--topic", topics.pair(CHAOYANG, PUTIAN),
          "--username", principal(CHAOYANG, topics),
          "--group", f"{topics.namespace}.yixian.{CHAOYANG}.x"), password,
         f"only the destination node's principal, {principal(PUTIAN, topics)}, may"),
        # a pair not linked: no topic, no grant
        ((*base, "--topic", topics.pair(GUSHI, CHAOYANG)), password, "no such topic"),
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda case: consume(consumer_jar, *case[0], password=case[1]), cases))
    for (_, _, says), run in zip(cases, runs, strict=True):
        assert run.status == BROKER_REFUSED, run.stderr
        assert says in run.stderr
        assert run.lines == []
        assert "Exception" not in run.stderr
        assert "\tat " not in run.stderr


def test_a_check_sharing_its_group_with_another_consumer_stops(
    consumer_jar: Path, local_stack: LocalStack, forged_topic: ForgedTopic
) -> None:
    """Two members of one group split the partitions: neither would read every event, so
    both say so and stop instead of reporting a part of the topic as the whole."""
    args = ("--bootstrap-servers", local_stack.config.sasl_bootstrap, "--schemas", str(SCHEMAS),
            "--topic", forged_topic.topics.pair(PUTIAN, CHAOYANG), "--idle-timeout", "60")  # fmt: skip
    first = subprocess.Popen(
        java(consumer_jar, *args), env=environment(forged_topic.password),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        read = [first.stdout.readline() for _ in range(forged_topic.count)]
        assert all(read), "the first check read every record, then idles"
        second = consume(consumer_jar, *args, password=forged_topic.password)
        _, first_stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    says = "has another member, which takes some of the partitions"
    assert second.status == BAD_OPTION, second.stderr
    assert says in second.stderr
    assert first.returncode == BAD_OPTION, first_stderr
    assert says in first_stderr


def test_a_bad_option_is_one_line_naming_it(consumer_jar: Path, tmp_path: Path) -> None:
    dialect = "https://json-schema.org/draft/2020-12/schema"
    stray, broken = tmp_path / "stray", tmp_path / "broken"
    for folder, schema in (
        (stray, {"$schema": dialect, "$id": "urn:x"}),
        (broken, {"$schema": dialect, "$id": f"urn:yixian:schema:{ORIGIN_GROUP}",
                  "$ref": "#/$defs/Nowhere"}),
    ):  # fmt: skip
        folder.mkdir()
        (folder / f"{ORIGIN_GROUP}.json").write_text(json.dumps(schema))
    ok = ("--bootstrap-servers", "127.0.0.1:1", "--source", GUSHI, "--destination", CHAOYANG)
    schemas = ("--schemas", str(SCHEMAS))
    tls, nowhere = ("--security-protocol", "SASL_SSL"), tmp_path / "none.p12"
    cases: list[tuple[tuple[str, ...], str]] = [
        ((), "--bootstrap-servers is required"),
        (("--bootstrap-servers", "kafka", *ok[2:], *schemas), "--bootstrap-servers: 'kafka'"),
        ((*ok[:2], "--source", "41152", "--destination", CHAOYANG, *schemas), "--source"),
        ((*ok[:2], "--topic", f"yixian.v1.{GUSHI}.local", *schemas), "--topic"),
        ((*ok[:2], "--source", GUSHI, "--destination", GUSHI, *schemas), "two different nodes"),
        ((*ok, *schemas, "--max-events", "0"), "--max-events"),
        ((*ok, *schemas, "--idle-timeout", "soon"), "--idle-timeout"),
        ((*ok, *schemas, "--sasl-mechanism", "PLAIN"), "--sasl-mechanism"),
        ((*ok, *schemas, "--property", "sasl.jaas.config=x"), "--property sasl.jaas.config"),
        ((*ok, *schemas, "--property", "max.poll.records=many"), "--property"),
        ((*ok, *schemas, "--colour"), "unknown option '--colour'"),
        ((*ok, *schemas, *tls, "--property", f"ssl.truststore.location={nowhere}"), "none.p12"),
        ((*ok, "--schemas", str(tmp_path / "nowhere")), "--schemas"),
        ((*ok, "--schemas", str(stray)), "has $id 'urn:x'"),
        ((*ok, "--schemas", str(broken)), "is not a usable schema"),
        ((*ok, "--schemas", str(tmp_path)), "holds no event schema"),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda case: consume(consumer_jar, *case[0], password="x"), cases))
    no_password = consume(consumer_jar, *ok, *schemas, password=None)
    for (args, says), run in [*zip(cases, runs, strict=True),
                              ((ok, "YIXIAN_KAFKA_PASSWORD"), no_password)]:  # fmt: skip
        assert run.status == BAD_OPTION, (args, run.stderr)
        assert says in run.stderr, (args, run.stderr)
        assert "Exception" not in run.stderr, run.stderr
        assert "\tat " not in run.stderr, run.stderr
