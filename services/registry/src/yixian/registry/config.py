"""Settings of the registry service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from pydantic import Field

from yixian.runtime import NodeSettings


class RegistrySettings(NodeSettings):
    """The node-wide settings plus where the HTTP API listens."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
