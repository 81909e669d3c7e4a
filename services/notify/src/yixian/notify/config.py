"""Settings of the notify service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from datetime import time

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yixian.runtime import NodeSettings


class NotifySettings(NodeSettings):
    """The node-wide settings plus the channels and the pace of delivery."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8002, ge=0, le=65535)
    language: str = Field(default="zh-CN", pattern=r"^(zh-CN|en)$")
    time_zone: str = "Asia/Shanghai"
    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "yixian@localhost"
    sms_gateway: str | None = Field(default=None, description="Base URL of the SMS gateway.")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC key for signed webhooks (required to send them)."
    )
    app_endpoint: str | None = Field(default=None, description="Messaging-app template API.")
    app_template_id: str = "yixian-notice"
    email_per_second: float = Field(default=20, gt=0)
    sms_per_second: float = Field(default=10, gt=0)
    webhook_per_second: float = Field(default=50, gt=0)
    app_per_second: float = Field(default=10, gt=0)
    batch_size: int = Field(default=200, ge=1, le=5000)
    schedule_seconds: float = Field(
        default=60, gt=0, description="How often reminders are planned."
    )
    dispatch_concurrency: int = Field(default=8, ge=1, le=64)
    lease_seconds: float = Field(
        default=30, gt=0, description="A claimed batch not finished by then is sent again."
    )
