"""Settings of the registry service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yixian.runtime import NodeSettings


class RegistrySettings(NodeSettings):
    """The node-wide settings plus the HTTP API, the national-ID key and the relay."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    national_id_key: SecretStr = Field(
        min_length=32,
        description=(
            "HMAC key for national ID numbers: this node's own secret, shared with no other"
            " node and never sent (ADR 14); also keys the idempotency fingerprints."
        ),
    )
    run_relay: bool = Field(default=True, description="Run the outbox relay in this process.")
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=1.0, gt=0, le=60)
