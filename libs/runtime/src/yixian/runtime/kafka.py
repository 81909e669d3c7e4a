"""The one place a service's FastStream Kafka broker is built from its settings."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage
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
        use_ssl = settings.security_protocol == "SASL_SSL"
        security = scram(
            username=settings.username,
            password=settings.password.get_secret_value(),
            use_ssl=use_ssl,
            ssl_context=ssl.create_default_context(cafile=settings.ssl_cafile) if use_ssl else None,
        )
    # a logger of our own: FastStream decorates its "faststream" logger with a handler of its own
    options.setdefault("logger", logging.getLogger("yixian.broker"))
    # a line per message ("Received", "Processed") only when debugging: our handlers log
    # what matters, with the trace id
    options.setdefault("log_level", logging.DEBUG)
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        security=security,
        **options,
    )


def aiokafka_security(settings: KafkaSettings) -> dict[str, Any]:
    """The security options of an aiokafka client for ``settings`` (none for PLAINTEXT)."""
    if settings.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {
        "security_protocol": settings.security_protocol,
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.username,
        "sasl_plain_password": settings.password.get_secret_value() if settings.password else None,
    }
    if settings.security_protocol == "SASL_SSL":
        options["ssl_context"] = ssl.create_default_context(cafile=settings.ssl_cafile)
    return options


async def kafka_reachable(settings: KafkaSettings) -> bool:
    """True if the cluster answers a metadata request within three seconds."""
    from aiokafka import AIOKafkaClient  # the runtime's one direct aiokafka use

    client = AIOKafkaClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=3000,
        **aiokafka_security(settings),
    )
    try:
        async with asyncio.timeout(3):
            await client.bootstrap()
        return True
    except Exception:
        return False
    finally:
        await client.close()


async def raw_bodies(message: Any) -> Any:
    """A decoder that keeps the bytes: each service validates its records itself."""
    return message.body


def batch_records(message: KafkaMessage) -> tuple[Any, ...]:
    """The consumer records behind a batch message, in order."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)
