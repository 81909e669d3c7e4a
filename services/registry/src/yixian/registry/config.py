"""Settings of the registry service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yixian.record.process import RelayNodeSettings


class ForwardPolicy(StrEnum):
    """What the origin does when a host forwards its member to another jurisdiction
    (ADR 19)."""

    FOLLOW = "follow"
    """The registry follows at once: the movement closes as relocated, one opens to the
    named host (a linked partner; any other stays in the to-do queue)."""
    CONFIRM = "confirm"
    """The forward waits in the to-do queue until a secretary follows it
    (``POST /v1/movements/{id}/forward/follow``)."""


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
    forward_policy: ForwardPolicy = Field(
        default=ForwardPolicy.FOLLOW,
        description="When a host forwards a member of this node: follow at once, or wait for"
        " a secretary to confirm (ADR 19).",
    )
    follow_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="How often the follower looks for forwards to follow (policy follow).",
    )
