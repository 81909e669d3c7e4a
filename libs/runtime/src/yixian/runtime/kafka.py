"""The one place a service's FastStream Kafka broker is built from its settings."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import SASLScram256, SASLScram512

from .settings import KafkaSettings


def make_broker(settings: KafkaSettings, *, client_id: str, **options: Any) -> KafkaBroker:
    """A broker for ``settings``; connects only when the application starts it."""
    security = None
    if settings.security_protocol != "PLAINTEXT":
        if settings.username is None or settings.password is None:
            raise ValueError(
                "YIXIAN_KAFKA_USERNAME and YIXIAN_KAFKA_PASSWORD are required for SASL"
            )
        scram = SASLScram256 if settings.sasl_mechanism == "SCRAM-SHA-256" else SASLScram512
        security = scram(
            username=settings.username,
            password=settings.password.get_secret_value(),
            use_ssl=settings.security_protocol == "SASL_SSL",
        )
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        security=security,
        **options,
    )
