"""Settings every service of a node reads from its environment (prefix ``YIXIAN_``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from dotenv import dotenv_values
from pydantic import (
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from yixian.contracts import Deadlines, TopicNames

from .divisions import DivisionCode

_DIVISION = TypeAdapter[str](DivisionCode)
_NODE_FILE: ContextVar[Path | None] = ContextVar("node_file", default=None)


@contextmanager
def reading_node_file(path: Path) -> Iterator[None]:
    """Settings made inside the block (and the blocks they hold: Kafka, deadlines) come from
    ``path`` alone, not from the process's environment: how a node host reads each node's
    own file (ADR 30). A context variable, so two nodes starting at once do not mix."""
    token = _NODE_FILE.set(path)
    try:
        yield
    finally:
        _NODE_FILE.reset(token)


def use_node_file(path: Path) -> None:
    """From now on in this context, node settings come from ``path`` alone (a command run
    for one node of a host)."""
    _NODE_FILE.set(path)


def node_file_in_use() -> Path | None:
    return _NODE_FILE.get()


def node_file_values(path: Path) -> dict[str, str | None]:
    """The lines of a node's file, as written: a ``${NAME}`` in a value stays as it is
    (python-dotenv would fill it in from the process's environment, which belongs to no
    node)."""
    return dict(dotenv_values(path, encoding="utf-8", interpolate=False))


class _NodeFile(DotEnvSettingsSource):
    """One node's file as a settings source (:func:`node_file_values`)."""

    def _read_env_file(self, file_path: Path) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in node_file_values(file_path).items()}


class _NodeScopedSettings(BaseSettings):
    """Settings read from the environment, or from one node's file inside
    :func:`reading_node_file` (unless ``node_scoped`` is off: settings that are never a
    node's, e.g. the cluster admin's login, always come from the environment)."""

    node_scoped: ClassVar[bool] = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _NODE_FILE.get() if cls.node_scoped else None
        if path is None:
            return (init_settings, env_settings, dotenv_settings, file_secret_settings)
        return (init_settings, _NodeFile(settings_cls, env_file=path))


class KafkaSettings(_NodeScopedSettings):
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

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of ``field`` (``YIXIAN_KAFKA_PASSWORD``, or with the
        prefix of a subclass: ``YIXIAN_ADMIN_KAFKA_PASSWORD``), for messages that name it."""
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    def consumer_group(self, node: str, service: str) -> str:
        """``yixian.<node>.<service>``, in the topic namespace if there is one."""
        prefix = f"{self.topic_namespace}." if self.topic_namespace else ""
        return f"{prefix}yixian.{node}.{service}"


class DeadlineSettings(_NodeScopedSettings):
    """The deadlines of the rules in force, one block every service of the node reads
    (``YIXIAN_DEADLINES__*``); which side each belongs to: :class:`yixian.contracts.Deadlines`."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_DEADLINES__", extra="ignore")

    check_in_days: int = Field(default=30, ge=1, le=365)
    transfer_reply_days: int = Field(default=30, ge=1, le=365)
    report_interval_days: int = Field(default=365, ge=30, le=730)
    lost_contact_suspension_days: int = Field(default=183, ge=30, le=730)
    lost_contact_removal_days: int = Field(default=730, ge=30, le=3650)
    feedback_answer_hours: int = Field(default=24, ge=1, le=24 * 30)
    dues_due_day: int = Field(default=10, ge=1, le=28)
    visitor_claim_days: int = Field(default=7, ge=0, le=365)

    def to_domain(self) -> Deadlines:
        return Deadlines(**self.model_dump())


class NodeSettings(_NodeScopedSettings):
    """What every service of a node needs: who the node is and where its stores are."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_", extra="ignore")

    node: DivisionCode
    partners: str = Field(
        default="",
        description="Comma-separated division codes of the linked nodes: the registry accepts "
        "movements only to these; sync sends them heartbeats and digests.",
    )
    database_url: str = "postgresql://yixian@127.0.0.1:15432/yixian"
    database_pool_size: int | None = Field(
        default=None,
        ge=2,
        le=100,
        description="The most connections each of the node's services keeps to its database"
        " (default: the service's own, registry 10, sync and notify 6; on a node host, the"
        " host's YIXIAN_HOST_POOL_SIZE).",
    )
    database_idle_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="A pooled connection unused this long is closed (on a node host, the"
        " host's YIXIAN_HOST_POOL_IDLE_SECONDS).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout: float = Field(default=15.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)

    @field_validator("partners")
    @classmethod
    def _partner_codes(cls, value: str) -> str:
        codes = [c.strip() for c in value.split(",") if c.strip()]
        return ",".join(_DIVISION.validate_python(code) for code in codes)

    @model_validator(mode="after")
    def _not_its_own_partner(self) -> NodeSettings:
        if self.node in self.partner_codes:
            raise ValueError(f"YIXIAN_PARTNERS names the node itself ({self.node})")
        return self

    @property
    def partner_codes(self) -> frozenset[str]:
        return frozenset(c for c in self.partners.split(",") if c)


SECRET_WORDS = ("password", "key", "secret")
"""A setting whose name holds one of these never has its value shown in a message."""


def invalid_setting(exc: ValidationError, kinds: Iterable[type[BaseSettings]]) -> tuple[str, str]:
    """The first invalid setting of ``exc`` as (its variable, why): the error names the
    settings class it came from (the node's, or a nested block's), whose prefix ``kinds``
    gives; the value given is shown unless the name says it may be secret. A rule across
    settings is ``("configuration", why)``: its message names them."""
    prefix = next(
        (kind.model_config.get("env_prefix", "") for kind in kinds if kind.__name__ == exc.title),
        "YIXIAN_",
    )
    first = exc.errors()[0]
    reason = str(first["msg"]).removeprefix("Value error, ")
    path = "_".join(str(part) for part in first["loc"])
    if not path:
        return "configuration", reason
    given = first.get("input")
    secret = any(word in path.lower() for word in SECRET_WORDS)
    shown = (
        f" (is {given!r})"
        if isinstance(given, str) and first["type"] != "missing" and not secret
        else ""
    )
    return f"{prefix}{path}".upper(), f"{reason}{shown}"
