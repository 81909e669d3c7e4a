"""Settings of the sync service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yixian.runtime import NodeSettings

from .domain.apply import MAX_VERSION_AHEAD
from .service_layer.links import LinkPolicy


class SyncSettings(NodeSettings):
    """The node-wide settings (among them the partners, ``YIXIAN_PARTNERS``) plus the link
    policy. The pair topics of the linked partners (these and those in ``links``) are
    consumed; the partners also get heartbeats and digests."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8001, ge=0, le=65535)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    silence_seconds: float = Field(default=35.0, gt=0)
    gap_grace_seconds: float = Field(default=5.0, gt=0)
    digest_seconds: float = Field(default=300.0, gt=0)
    link_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the link upkeep looks again while a link is astir (a gap to ask"
        " for, numbers to record): a transaction per such link each look. Links at rest are"
        " looked at when a heartbeat or digest falls due, or when the consumer applied events.",
    )
    digest_buckets: int = Field(default=256, ge=1, le=65536)
    replay_backoff_max_seconds: float = Field(
        default=120.0, gt=0, description="The longest wait between replay requests for a gap."
    )
    max_pairseq_ahead: int = Field(
        default=100_000,
        ge=1,
        description="A pair number this far past the highest seen is refused.",
    )
    max_version_ahead: int = Field(
        default=MAX_VERSION_AHEAD,
        ge=1,
        description="A group version this far past the replica's is refused (a repair copy"
        " from the owner is not).",
    )
    metadata_refresh_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often the linked partners and Kafka's metadata are read again.",
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Records applied per transaction."
    )

    @property
    def policy(self) -> LinkPolicy:
        return LinkPolicy(
            heartbeat_interval=timedelta(seconds=self.heartbeat_seconds),
            silence=timedelta(seconds=self.silence_seconds),
            gap_grace=timedelta(seconds=self.gap_grace_seconds),
            digest_interval=timedelta(seconds=self.digest_seconds),
            bucket_count=self.digest_buckets,
            replay_backoff_max=timedelta(seconds=self.replay_backoff_max_seconds),
            max_ahead=self.max_pairseq_ahead,
        )

    @property
    def consumer_group(self) -> str:
        return self.kafka.consumer_group(self.node, "sync")
