"""Settings of the registry service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yixian.record.process import RelayNodeSettings


class RegistrySettings(RelayNodeSettings):
    """The relay's settings (it runs in this process unless ``run_relay`` is off) plus the
    HTTP API and the national-ID key."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    http_port: int = Field(default=8000, ge=0, le=65535)
    national_id_key: SecretStr = Field(
        min_length=32,
        description=(
            "HMAC key for national ID numbers: this node's own secret, shared with no other"
            " node and never sent (ADR 14); also keys the idempotency fingerprints."
        ),
    )
    run_relay: bool = Field(default=True, description="Run the outbox relay in this process.")
