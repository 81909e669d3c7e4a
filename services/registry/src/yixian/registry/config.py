"""Settings of the registry service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yixian.registry.domain import Deadlines
from yixian.runtime import NodeSettings


class DeadlineSettings(BaseModel):
    """Deadlines of the rules in force; a node may set its own (``YIXIAN_DEADLINES__*``)."""

    check_in_days: int = Field(default=30, ge=1, le=365)
    transfer_reply_days: int = Field(default=30, ge=1, le=365)
    report_interval_days: int = Field(default=365, ge=30, le=730)
    lost_contact_suspension_days: int = Field(default=183, ge=30, le=730)
    lost_contact_removal_days: int = Field(default=730, ge=30, le=3650)

    def to_domain(self) -> Deadlines:
        return Deadlines(**self.model_dump())


class RegistrySettings(NodeSettings):
    """The node-wide settings plus the HTTP API, the national-ID key and the relay."""

    model_config = SettingsConfigDict(
        env_prefix="YIXIAN_", env_nested_delimiter="__", extra="ignore"
    )

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    national_id_key: SecretStr = Field(
        min_length=32,
        description=(
            "HMAC key for national ID numbers: this node's own secret, shared with no other"
            " node and never sent (ADR 14); also keys the idempotency fingerprints."
        ),
    )
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)
    run_relay: bool = Field(default=True, description="Run the outbox relay in this process.")
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=1.0, gt=0, le=60)
