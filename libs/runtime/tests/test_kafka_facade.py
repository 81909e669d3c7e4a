"""The Kafka facade reads the settings once and renders the same connection for every
client: FastStream, aiokafka and (for the cluster administrator) librdkafka."""

from __future__ import annotations

import ssl
from types import SimpleNamespace
from typing import Any

import pytest
from faststream.security import SASLScram256, SASLScram512

from yixian.runtime.kafka import (
    Connection,
    admin_config,
    batch_records,
    client_options,
    make_broker,
)
from yixian.runtime.settings import KafkaSettings

SASL = {
    "bootstrap_servers": "broker-1:9094,broker-2:9094",
    "security_protocol": "SASL_PLAINTEXT",
    "username": "node-411525",
    "password": "s3cret",
}


def test_plaintext_needs_nothing_but_the_servers() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:19092", username="ignored")
    assert client_options(settings) == {"bootstrap_servers": "127.0.0.1:19092"}
    assert admin_config(settings) == {"bootstrap.servers": "127.0.0.1:19092"}
    assert Connection.of(settings).security() is None


@pytest.mark.parametrize(
    ("mechanism", "kind"), [("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)]
)
def test_every_client_logs_in_the_same_way(mechanism: str, kind: type[Any]) -> None:
    settings = KafkaSettings(**SASL, sasl_mechanism=mechanism)
    assert isinstance(Connection.of(settings).security(), kind)
    assert client_options(settings) == {
        "bootstrap_servers": "broker-1:9094,broker-2:9094",
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "node-411525",
        "sasl_plain_password": "s3cret",
    }
    assert admin_config(settings) == {
        "bootstrap.servers": "broker-1:9094,broker-2:9094",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": "node-411525",
        "sasl.password": "s3cret",
    }


def test_sasl_ssl_verifies_the_broker_with_the_given_authority() -> None:
    ca = ssl.get_default_verify_paths().cafile
    if ca is None:
        pytest.skip("this machine has no default CA bundle file to load")
    settings = KafkaSettings(**(SASL | {"security_protocol": "SASL_SSL"}), ssl_cafile=ca)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert admin_config(settings)["ssl.ca.location"] == ca


def test_sasl_without_credentials_is_refused_for_every_client() -> None:
    settings = KafkaSettings(security_protocol="SASL_PLAINTEXT", username="node-411525")
    for build in (
        client_options,
        admin_config,
        lambda s: make_broker(s, client_id="x"),
    ):
        with pytest.raises(ValueError, match="YIXIAN_KAFKA_PASSWORD"):
            build(settings)


def test_a_password_is_never_in_the_connection_s_text() -> None:
    assert "s3cret" not in repr(KafkaSettings(**SASL))


@pytest.mark.parametrize("raw", [("a", "b"), ["a", "b"]])
def test_a_batch_is_its_records_whichever_broker_delivers_it(raw: Any) -> None:
    """The broker hands a batch subscriber a tuple, FastStream's test broker a list."""
    assert batch_records(SimpleNamespace(raw_message=raw)) == ("a", "b")  # type: ignore[arg-type]


def test_a_single_record_is_a_batch_of_one() -> None:
    record = object()
    assert batch_records(SimpleNamespace(raw_message=record)) == (record,)  # type: ignore[arg-type]
