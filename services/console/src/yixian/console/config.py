"""Settings of the console (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from yixian.sync.config import SyncSettings


class ConsoleSettings(SyncSettings):
    """The node-wide settings (the console reads the node's database and Kafka as the
    operator's command does, hence sync's settings, which that command reads too), plus
    where the node's services listen and how long a session lasts."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8003, ge=0, le=65535)
    registry_url: str = Field(
        default="http://127.0.0.1:8000", pattern=r"^https?://", description="The registry's API."
    )
    sync_url: str = Field(default="http://127.0.0.1:8001", pattern=r"^https?://")
    notify_url: str | None = Field(
        default="http://127.0.0.1:8002",
        pattern=r"^https?://",
        description="notify's API (the notices of a movement); empty: none.",
    )
    node_name: str = Field(default="", max_length=100, description="Shown in the title bar.")
    console_session_idle_minutes: float = Field(default=30, gt=0, le=24 * 60)
    console_session_hours: float = Field(default=12, gt=0, le=7 * 24)
    console_secure_cookie: bool = Field(
        default=False, description="Mark the session cookie Secure (serve the console over HTTPS)."
    )
    service_timeout_seconds: float = Field(default=15, gt=0, le=300)

    @field_validator("notify_url", mode="before")
    @classmethod
    def _none_when_empty(cls, value: object) -> object:
        return None if value == "" else value
