"""Settings every service of a node reads from its environment (prefix ``YIXIAN_``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from yixian.contracts import JurisdictionCode, TopicNames


class KafkaSettings(BaseSettings):
    """How a service reaches the Kafka cluster (``YIXIAN_KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    username: str | None = None
    password: SecretStr | None = None
    ssl_cafile: str | None = None
    """CA bundle for SASL_SSL (default: the system's trusted CAs)."""
    topic_namespace: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9_-]{0,62})?$")] = ""

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_namespace)

    def consumer_group(self, node: str, service: str) -> str:
        """``yixian.<node>.<service>``, in the topic namespace if there is one."""
        prefix = f"{self.topic_namespace}." if self.topic_namespace else ""
        return f"{prefix}yixian.{node}.{service}"


class NodeSettings(BaseSettings):
    """What every service of a node needs: who the node is and where its stores are."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    node: JurisdictionCode
    database_url: str = "postgresql://yixian@127.0.0.1:15432/yixian"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout: float = Field(default=15.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
