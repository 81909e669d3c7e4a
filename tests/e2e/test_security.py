"""Security on the wire, against the local broker's SASL/SCRAM listener and its
StandardAuthorizer: every principal can do exactly what the design grants, and an event
forged with another node's source is refused even when an admin puts it on a pair topic."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from yixian.contracts import OriginGroup, OriginGroupChanged, TopicNames, make_event
from yixian.localstack import LocalStack
from yixian.localstack.network import eventually
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.kafka import (
    ClusterAdmin,
    Grant,
    Operation,
    Pattern,
    Resource,
    TopicPolicy,
    principal,
)
from yixian.runtime.settings import KafkaSettings

from .conftest import NetworkFactory
from .test_sync_scenarios import CHAOYANG, GUSHI, outflow

PUTIAN = "350300"
NODES = (GUSHI, PUTIAN, CHAOYANG)
DENIED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}

pytestmark = pytest.mark.e2e


def _sasl(stack: LocalStack, user: str, password: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": stack.config.sasl_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": password,
    }


def _settings(stack: LocalStack, namespace: str, *, admin: bool) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=stack.config.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        username=ADMIN_USER if admin else None,
        password=ADMIN_PASSWORD if admin else None,
        topic_namespace=namespace,
    )


@pytest.fixture
def three_nodes(local_stack: LocalStack, topic_names: TopicNames) -> dict[str, str]:
    """Three nodes set up as ``yixian node init`` and ``partner link`` do; their passwords."""
    admin = ClusterAdmin(
        _settings(local_stack, topic_names.namespace, admin=True),
        _settings(local_stack, topic_names.namespace, admin=False),
    )
    policy = TopicPolicy(partitions=1)
    passwords = {node: f"{node}-{uuid4().hex}" for node in NODES}
    for node in NODES:
        admin.init_node(node, passwords[node], policy)
    for a, b in itertools.combinations(NODES, 2):
        admin.link(a, b, policy)
    return passwords


def designed(topics: TopicNames, who: str, topic: str) -> set[Operation | str]:
    """What the design says ``who``'s principal may do with ``topic``, written out longhand."""
    allowed: set[Operation | str] = set()
    if topic == topics.local(who):
        allowed |= {Operation.READ, Operation.WRITE}
    if topic.startswith(topics.dead_letter(who, "x")[:-1]):
        allowed.add(Operation.WRITE)
    for other in NODES:
        if other != who and topic == topics.pair(who, other):
            allowed.add(Operation.WRITE)
        if other != who and topic == topics.pair(other, who):
            allowed.add(Operation.READ)
    if allowed:
        allowed.add("DESCRIBE")
    return allowed


def test_each_principal_has_exactly_the_designed_acls(
    local_stack: LocalStack, topic_names: TopicNames, three_nodes: dict[str, str]
) -> None:
    admin = ClusterAdmin(
        _settings(local_stack, topic_names.namespace, admin=True),
        _settings(local_stack, topic_names.namespace, admin=False),
    )
    t = topic_names
    for node in NODES:
        who = principal(node, t)
        expected = {
            Grant(who, Resource.TOPIC, Pattern.LITERAL, t.local(node), Operation.READ),
            Grant(who, Resource.TOPIC, Pattern.LITERAL, t.local(node), Operation.WRITE),
            Grant(who, Resource.TOPIC, Pattern.PREFIXED, f"{t.namespace}.yixian.v1.{node}.dlq.",
                  Operation.WRITE),
            Grant(who, Resource.GROUP, Pattern.PREFIXED, f"{t.namespace}.yixian.{node}.",
                  Operation.READ),
        }  # fmt: skip
        for other in NODES:
            if other != node:
                expected.add(
                    Grant(who, Resource.TOPIC, Pattern.LITERAL, t.pair(node, other),
                          Operation.WRITE)
                )  # fmt: skip
                expected.add(
                    Grant(who, Resource.TOPIC, Pattern.LITERAL, t.pair(other, node), Operation.READ)
                )
        assert admin.grants_of(who) == expected, node


def _can_describe(config: dict[str, Any], topic: str) -> bool:
    consumer = Consumer(config | {"group.id": "unused"})
    try:
        found = consumer.list_topics(topic=topic, timeout=20).topics[topic]
        if found.error is not None and found.error.code() not in DENIED:
            raise AssertionError(f"describe {topic}: {found.error}")
        return found.error is None
    finally:
        consumer.close()


def _writes(config: dict[str, Any], topics: list[str]) -> dict[str, bool]:
    """Produce one record to each topic; which ones the broker took."""
    producer = Producer(config | {"message.timeout.ms": 10000, "acks": "all"})
    results: dict[str, bool] = {}

    def delivered(error: KafkaError | None, message: Any) -> None:
        if error is not None and error.code() not in DENIED:
            raise AssertionError(f"produce {message.topic()}: {error}")
        results[message.topic()] = error is None

    for topic in topics:
        producer.produce(topic, b"probe", key=b"link", on_delivery=delivered)
    producer.flush(30)
    return results


def _can_consume(config: dict[str, Any], group: str, topic: str) -> bool:
    """Subscribe as ``group`` and wait for a record (True) or a refusal (False)."""
    consumer = Consumer(
        config
        | {
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = datetime.now(UTC).timestamp() + 30
        while datetime.now(UTC).timestamp() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            error = message.error()
            if error is None:
                return True
            # a topic the principal may not even describe is unknown to it
            if error.code() in DENIED | {
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError._UNKNOWN_TOPIC,
            }:
                return False
        raise AssertionError(f"{group} on {topic}: neither a record nor a refusal in 30 s")
    finally:
        consumer.close()


def test_the_full_matrix_of_principals_topics_and_operations(
    local_stack: LocalStack, topic_names: TopicNames, three_nodes: dict[str, str]
) -> None:
    t = topic_names
    topics = [t.local(n) for n in NODES] + [t.dead_letter(n, "sync") for n in NODES]
    topics += [t.pair(a, b) for a, b in itertools.permutations(NODES, 2)]
    configs = {n: _sasl(local_stack, principal(n, t), three_nodes[n]) for n in NODES}

    actual: dict[tuple[str, str], set[Operation | str]] = {}
    wrote = {n: _writes(configs[n], topics) for n in NODES}  # every readable topic has a record

    def probe(node: str, topic: str) -> tuple[tuple[str, str], set[Operation | str]]:
        can: set[Operation | str] = set()
        if _can_describe(configs[node], topic):
            can.add("DESCRIBE")
        if wrote[node][topic]:
            can.add(Operation.WRITE)
        if _can_consume(configs[node], f"{t.namespace}.yixian.{node}.probe", topic):
            can.add(Operation.READ)
        return (node, topic), can

    with ThreadPoolExecutor(max_workers=6) as pool:
        actual = dict(pool.map(lambda pair: probe(*pair), itertools.product(NODES, topics)))

    expected = {(n, topic): designed(t, n, topic) for n, topic in itertools.product(NODES, topics)}
    wrong = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
    assert not wrong, wrong
    # the grants are not empty: each node can do something, and only with its own things
    assert all(expected[(n, t.local(n))] for n in NODES)

    # consumer groups: only a node's own
    for node, owner in itertools.product(NODES, NODES):
        usable = _can_consume(configs[node], f"{t.namespace}.yixian.{owner}.g", t.local(node))
        assert usable == (node == owner), (node, owner)


async def test_a_forged_source_is_refused_even_on_the_right_topic(
    network: NetworkFactory, local_stack: LocalStack, topic_names: TopicNames
) -> None:
    nodes = await network([GUSHI, PUTIAN, CHAOYANG], secure=True)
    gushi, chaoyang = nodes[GUSHI], nodes[CHAOYANG]
    branch = await gushi.org("第一支部")
    member = await gushi.member(branch, "张三")
    created = await gushi.post("/v1/movements", outflow(member, CHAOYANG), 201)
    movement = created["movement_id"]

    async def expected() -> bool:
        return (await chaoyang.replica(movement))[0] is not None

    await eventually(expected, what="Chaoyang expects the member")
    before = await chaoyang.replica(movement)
    pair = topic_names.pair(GUSHI, CHAOYANG)

    # Putian's principal cannot write to Gushi's topic at all
    putian = _sasl(local_stack, principal(PUTIAN, topic_names), f"{PUTIAN}-local-secret")
    assert _writes(putian, [pair]) == {pair: False}

    # an admin can; the event claims to come from Putian with a newer origin group
    group = OriginGroup.model_validate(before[0])
    newer = OriginGroupChanged(group=group.model_copy(update={"version": group.version + 1}))
    forged = make_event(
        newer, node=PUTIAN, time=datetime.now(UTC), correlationid=group.movement_id
    ).with_pairseq(10_000)
    producer = Producer(_sasl(local_stack, ADMIN_USER, ADMIN_PASSWORD))
    producer.produce(pair, forged.encode(), key=movement.encode())
    assert producer.flush(30) == 0

    async def dead_lettered() -> bool:
        rows = await chaoyang.query("SELECT reason FROM dead_letters")
        return any("forged source" in r["reason"] for r in rows)

    await eventually(dead_lettered, what="the forged event in the dead letters")
    assert await chaoyang.replica(movement) == before
    reasons = await chaoyang.query("SELECT reason, errors FROM dead_letters")
    assert json.loads(reasons[0]["errors"])[0]["field"] == "source"
