"""Wrong Kafka settings against the real broker, with ``yixian`` as the operator runs it (a
process of its own, so that what librdkafka and aiokafka would print on the terminal is
seen): a non-zero exit, one line on stderr naming the setting, and none of the clients' own
log lines. The cases run side by side over one node that ``node init`` made with a known
password."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from yixian.contracts import TopicNames
from yixian.localstack import LocalStack
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER

pytestmark = pytest.mark.integration
GUSHI, CHAOYANG = "411525", "110105"
PASSWORD = "the-nodes-own-secret"
LEAKS = ("Traceback", "Unable connect", "Unclosed", "rdkafka", "%3|", "%4|", "%6|", "aiokafka")


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


async def yixian(env: dict[str, str], *args: str) -> Ran:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yixian.ops", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nobody listens once it is closed


async def test_wrong_kafka_settings_are_one_sentence_and_a_failure(
    local_stack: LocalStack, database_url: str, topic_names: TopicNames
) -> None:
    config = local_stack.config
    sasl = config.sasl_bootstrap
    who = f"{topic_names.namespace}.node-{GUSHI}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("YIXIAN_")}
    node = base | {
        "YIXIAN_NODE": GUSHI,
        "YIXIAN_PARTNERS": CHAOYANG,
        "YIXIAN_DATABASE_URL": database_url,
        "YIXIAN_NATIONAL_ID_KEY": "a-test-national-id-key-of-at-least-32-characters",
        "YIXIAN_KAFKA_BOOTSTRAP_SERVERS": sasl,
        "YIXIAN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "YIXIAN_KAFKA_TOPIC_NAMESPACE": topic_names.namespace,
        "YIXIAN_KAFKA_USERNAME": who,
        "YIXIAN_KAFKA_PASSWORD": PASSWORD,
    }
    admin = {
        "YIXIAN_ADMIN_KAFKA_BOOTSTRAP_SERVERS": sasl,
        "YIXIAN_ADMIN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "YIXIAN_ADMIN_KAFKA_USERNAME": ADMIN_USER,
        "YIXIAN_ADMIN_KAFKA_PASSWORD": ADMIN_PASSWORD,
    }
    made = await yixian(node | admin, "node", "init", "--root-name", "固始县委组织部", "--json")
    assert made.code == 0, made.stdout + made.stderr
    init = json.loads(made.stdout)
    assert init["kafka"]["principal"] == who
    assert init["kafka"]["password"] is None  # YIXIAN_KAFKA_PASSWORD's, not a new one
    assert made.stderr == ""
    nobody = closed_port()

    cases: dict[str, tuple[dict[str, str], tuple[str, ...], str]] = {
        "a wrong password": (
            node | {"YIXIAN_KAFKA_PASSWORD": "wrong"},
            ("node", "status"),
            f"YIXIAN_KAFKA_PASSWORD: the broker at {sasl} refused the login of principal"
            f" {who} (SASL authentication failed",
        ),
        "no broker there": (
            node | {"YIXIAN_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{nobody}"},
            ("node", "status"),
            f"YIXIAN_KAFKA_BOOTSTRAP_SERVERS: no Kafka broker answers (127.0.0.1:{nobody}:"
            " connection refused)",
        ),
        "no SASL to a SASL listener": (
            node | {"YIXIAN_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
            ("node", "status"),
            f"YIXIAN_KAFKA_SECURITY_PROTOCOL: the listener at {sasl} closed the connection of"
            " a PLAINTEXT client: it expects SASL",
        ),
        "SASL to the super user's listener": (
            node | {"YIXIAN_KAFKA_BOOTSTRAP_SERVERS": config.kafka_bootstrap},
            ("node", "status"),
            f"YIXIAN_KAFKA_SECURITY_PROTOCOL: the listener at {config.kafka_bootstrap} does"
            " not take a SASL_PLAINTEXT SCRAM-SHA-256 login",
        ),
        "the admin's wrong password": (
            node | admin | {"YIXIAN_ADMIN_KAFKA_PASSWORD": "wrong"},
            ("partner", "link", GUSHI, CHAOYANG),
            f"YIXIAN_ADMIN_KAFKA_PASSWORD: the broker at {sasl} refused the login of"
            f" principal {ADMIN_USER}",
        ),
        "a node as the administrator": (
            node
            | admin
            | {"YIXIAN_ADMIN_KAFKA_USERNAME": who, "YIXIAN_ADMIN_KAFKA_PASSWORD": PASSWORD},
            ("partner", "link", GUSHI, CHAOYANG),
            f"YIXIAN_ADMIN_KAFKA_USERNAME: principal {who} may not administer the cluster",
        ),
    }
    ok = await yixian(node, "node", "status", "--json")
    failing = dict(
        zip(
            cases, await asyncio.gather(*(yixian(e, *a) for e, a, _ in cases.values())), strict=True
        )
    )

    assert ok.code == 0, ok.stderr
    assert ok.stderr == ""
    report: dict[str, Any] = json.loads(ok.stdout)
    assert report["kafka_error"] is None
    assert f"{topic_names.namespace}.yixian.{GUSHI}.notify" in report["consumer_lag"]

    for case, ran in failing.items():
        said = cases[case][2]
        lines = ran.stderr.splitlines()
        assert ran.code == 1, f"{case}: exit {ran.code}\n{ran.stderr}"
        assert lines, case
        assert lines[-1].startswith(f"error: {said}"), f"{case}:\n{ran.stderr}"
        assert all(line.startswith("warning: ") for line in lines[:-1]), f"{case}:\n{ran.stderr}"
        assert not [leak for leak in LEAKS if leak in ran.stderr + ran.stdout], f"{case}:\n{ran}"
    # status still prints what the database says before it fails on Kafka
    assert f"node {GUSHI}: outbox backlog 0" in failing["a wrong password"].stdout
    # the PLAINTEXT client is warned that it does not log in
    assert failing["no SASL to a SASL listener"].stderr.startswith("warning: YIXIAN_KAFKA_")
