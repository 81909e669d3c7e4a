"""What ``make up`` tells an operator: a node's settings (its principal on the SASL
listener, its own database), the administrator's login for ``yixian node init``, and the
PLAINTEXT listener marked as the super user's, all with the ports in force."""

from __future__ import annotations

import re
from pathlib import Path

from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER, KafkaServer, LocalStack, StackConfig
from yixian.runtime.settings import KafkaSettings

PORTS = {"kafka_port": 29192, "controller_port": 29193, "sasl_port": 29194, "postgres_port": 25532}


def _help(tmp_path: Path) -> str:
    return LocalStack(
        StackConfig(state_dir=tmp_path, cache_dir=tmp_path, **PORTS)
    ).connection_help()


def _settings(text: str, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf"^  ({prefix}\w+)=(\S+)", text, re.M))


def test_a_node_is_told_to_log_in_on_the_sasl_listener(tmp_path: Path) -> None:
    text = _help(tmp_path)
    node = _settings(text, "YIXIAN_KAFKA_")
    assert node["YIXIAN_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:29194"
    assert node["YIXIAN_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert node["YIXIAN_KAFKA_USERNAME"] == "<namespace>.node-<code>"
    settings = KafkaSettings(
        bootstrap_servers=node["YIXIAN_KAFKA_BOOTSTRAP_SERVERS"],
        security_protocol=node["YIXIAN_KAFKA_SECURITY_PROTOCOL"],  # type: ignore[arg-type]
        username="prov.node-411525",
        password="x",
    )
    assert settings.security_protocol == "SASL_PLAINTEXT"
    database = _settings(text, "YIXIAN_DATABASE_")["YIXIAN_DATABASE_URL"]
    assert database == "postgresql://yixian@127.0.0.1:25532/<the"  # "<the node's database>"


def test_the_admin_login_is_given_for_node_init(tmp_path: Path) -> None:
    admin = _settings(_help(tmp_path), "YIXIAN_ADMIN_KAFKA_")
    assert admin == {
        "YIXIAN_ADMIN_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29194",
        "YIXIAN_ADMIN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "YIXIAN_ADMIN_KAFKA_USERNAME": ADMIN_USER,
        "YIXIAN_ADMIN_KAFKA_PASSWORD": ADMIN_PASSWORD,
    }


def test_the_plaintext_listener_is_marked_as_the_super_users(tmp_path: Path) -> None:
    text = _help(tmp_path)
    plaintext = [line for line in text.splitlines() if "127.0.0.1:29192" in line]
    assert len(plaintext) == 1
    assert plaintext[0].startswith("Not for nodes: ")
    assert "super user" in plaintext[0]
    assert "YIXIAN_STACK_SASL_PORT=29194 YIXIAN_STACK_KAFKA_PORT=29192" in text
    assert "YIXIAN_STACK_POSTGRES_PORT=25532" in text


def test_the_partitions_a_broker_keeps_are_counted(tmp_path: Path) -> None:
    kafka = KafkaServer(StackConfig(state_dir=tmp_path, cache_dir=tmp_path, **PORTS), "4.1.1")
    assert kafka.partitions_kept() == 0  # no data yet
    for name in ("t1.yixian.v1.411525.local-0", "t1.yixian.v1.411525.local-1",
                 "__consumer_offsets-0", "__cluster_metadata-0"):  # fmt: skip
        (kafka.data_dir / name).mkdir(parents=True)
    (kafka.data_dir / "meta.properties").write_text("")
    assert kafka.partitions_kept() == 2
