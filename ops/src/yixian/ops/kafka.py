"""The cluster side of a node: its topics, its principal and exactly the grants it needs.

A node ``N`` (principal ``User:node-N``, prefixed by the topic namespace if there is one):

- reads and writes its local topic ``yixian.v1.N.local``;
- writes its dead-letter topics ``yixian.v1.N.dlq.*``;
- writes the pair topics it sends on (``N.to.*``), reads those addressed to it (``*.to.N``);
- uses only its own consumer groups ``yixian.N.*``.

Read and Write imply Describe, so no grant names Describe. Nothing else is granted: under
the StandardAuthorizer with ``allow.everyone.if.no.acl.found=false`` no ACL means no access.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from yixian.contracts import TopicNames
from yixian.runtime.kafka import admin_config
from yixian.runtime.settings import KafkaSettings

from .trouble import Trouble

TIMEOUT = 30.0
DAY_MS = 24 * 3600 * 1000


class Operation(StrEnum):
    READ = "READ"
    WRITE = "WRITE"


class Resource(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"


class Pattern(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


@dataclass(frozen=True, order=True, slots=True)
class Grant:
    """One ALLOW ACL: ``principal`` may ``operation`` on the resource ``name``."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: Operation

    def binding(self) -> AclBinding:
        return AclBinding(
            ResourceType[self.resource.value],
            self.name,
            ResourcePatternType[self.pattern.value],
            f"User:{self.principal}",
            "*",
            AclOperation[self.operation.value],
            AclPermissionType.ALLOW,
        )

    @classmethod
    def from_binding(cls, binding: AclBinding) -> Grant:
        return cls(
            principal=binding.principal.removeprefix("User:"),
            resource=Resource(_name(binding.restype)),
            pattern=Pattern(_name(binding.resource_pattern_type)),
            name=binding.name,
            operation=Operation(_name(binding.operation)),
        )


def _name(value: object) -> str:
    """An enum member's name (the client types these fields loosely)."""
    return str(getattr(value, "name", value))


def principal(node: str, topics: TopicNames) -> str:
    """The node's Kafka user name."""
    return f"{topics.namespace}.node-{node}" if topics.namespace else f"node-{node}"


def group_prefix(node: str, kafka: KafkaSettings) -> str:
    """Every consumer group of ``node`` starts with this."""
    return kafka.consumer_group(node, "")


def dead_letter_prefix(node: str, topics: TopicNames) -> str:
    return topics.dead_letter(node, "x")[:-1]


def node_grants(node: str, kafka: KafkaSettings) -> list[Grant]:
    topics = kafka.topics
    who = principal(node, topics)
    local, dead_letters = topics.local(node), dead_letter_prefix(node, topics)
    return [
        Grant(who, Resource.TOPIC, Pattern.LITERAL, local, Operation.READ),
        Grant(who, Resource.TOPIC, Pattern.LITERAL, local, Operation.WRITE),
        Grant(who, Resource.TOPIC, Pattern.PREFIXED, dead_letters, Operation.WRITE),
        Grant(who, Resource.GROUP, Pattern.PREFIXED, group_prefix(node, kafka), Operation.READ),
    ]


def link_grants(a: str, b: str, topics: TopicNames) -> list[Grant]:
    """Both directions of the link between ``a`` and ``b``."""
    grants = []
    for source, destination in ((a, b), (b, a)):
        topic = topics.pair(source, destination)
        grants.append(
            Grant(
                principal(source, topics), Resource.TOPIC, Pattern.LITERAL, topic, Operation.WRITE
            )
        )
        grants.append(
            Grant(
                principal(destination, topics),
                Resource.TOPIC,
                Pattern.LITERAL,
                topic,
                Operation.READ,
            )
        )
    return grants


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    partitions: int = 3
    replication_factor: int = -1  # the cluster's default
    pair_retention_days: int | None = None  # None: kept for ever (replay and rebuild read it)
    local_retention_days: int | None = 90
    dead_letter_retention_days: int | None = None

    @staticmethod
    def _retention(days: int | None) -> dict[str, str]:
        return {"retention.ms": str(days * DAY_MS) if days is not None else "-1"}

    def pair(self) -> dict[str, str]:
        return self._retention(self.pair_retention_days) | {"cleanup.policy": "delete"}

    def local(self) -> dict[str, str]:
        return self._retention(self.local_retention_days)

    def dead_letter(self) -> dict[str, str]:
        return self._retention(self.dead_letter_retention_days)


class ClusterAdmin:
    """What ``node init`` and ``partner link`` do on the cluster; every step is idempotent."""

    def __init__(self, admin_kafka: KafkaSettings, namespace_kafka: KafkaSettings) -> None:
        # librdkafka logs through Python's logging (kept off the terminal), not to stderr
        self.client = AdminClient(
            admin_config(admin_kafka) | {"logger": logging.getLogger("yixian.ops.librdkafka")}
        )
        self.admin = admin_kafka
        self.kafka = namespace_kafka
        self.topics = namespace_kafka.topics

    def ensure_topics(self, wanted: dict[str, dict[str, str]], policy: TopicPolicy) -> list[str]:
        """Create the topics that do not exist yet; return those created."""
        existing = set(self.client.list_topics(timeout=TIMEOUT).topics)
        new = [
            NewTopic(name, policy.partitions, policy.replication_factor, config=config)
            for name, config in wanted.items()
            if name not in existing
        ]
        if not new:
            return []
        for future in self.client.create_topics(new, request_timeout=TIMEOUT).values():
            try:
                future.result(timeout=TIMEOUT)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
        return [topic.topic for topic in new]

    def ensure_user(self, user: str, password: str) -> None:
        # one mechanism per request: the broker refuses two changes to a user at once
        for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
            upsert = UserScramCredentialUpsertion(
                user, ScramCredentialInfo(mechanism, 8192), password.encode()
            )
            for future in self.client.alter_user_scram_credentials([upsert]).values():
                future.result(timeout=TIMEOUT)

    def grant(self, grants: Iterable[Grant]) -> None:
        bindings = [g.binding() for g in grants]
        if bindings:
            for future in self.client.create_acls(bindings, request_timeout=TIMEOUT).values():
                future.result(timeout=TIMEOUT)

    def grants_of(self, user: str) -> set[Grant]:
        """Every ACL naming ``user``, whatever it is on."""
        wanted = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]  # None matches any name
            ResourcePatternType.ANY,
            f"User:{user}",
            None,  # type: ignore[arg-type]  # and any host
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        found = self.client.describe_acls(wanted, request_timeout=TIMEOUT).result(timeout=TIMEOUT)
        return {Grant.from_binding(binding) for binding in found}

    def init_node(self, node: str, password: str, policy: TopicPolicy) -> list[str]:
        created = self.ensure_topics(
            {
                self.topics.local(node): policy.local(),
                self.topics.dead_letter(node, "sync"): policy.dead_letter(),
            },
            policy,
        )
        self.ensure_user(principal(node, self.topics), password)
        self.grant(node_grants(node, self.kafka))
        return created

    def link(self, a: str, b: str, policy: TopicPolicy) -> list[str]:
        return self.link_all(a, [b], policy)

    def link_all(self, node: str, partners: Iterable[str], policy: TopicPolicy) -> list[str]:
        """``node`` linked with each of ``partners``: their pair topics made in one request,
        their grants in another."""
        partners = list(partners)
        wanted = {}
        for partner in partners:
            wanted[self.topics.pair(node, partner)] = policy.pair()
            wanted[self.topics.pair(partner, node)] = policy.pair()
        created = self.ensure_topics(wanted, policy)
        self.grant(g for partner in partners for g in link_grants(node, partner, self.topics))
        return created


_LOGIN = frozenset({"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"})
_REFUSED = frozenset(
    {
        "CLUSTER_AUTHORIZATION_FAILED",
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    }
)
_UNREACHABLE = frozenset(
    {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "REQUEST_TIMED_OUT", "_RESOLVE"}
)
_OPTIONS = {
    "INVALID_REPLICATION_FACTOR": "--replication-factor",
    "INVALID_PARTITIONS": "--partitions",
}


def admin_trouble(exc: KafkaException, admin: KafkaSettings) -> Trouble:
    """What the cluster said to an administrator's step, naming the setting to fix."""
    error: KafkaError | None = exc.args[0] if exc.args else None
    name = error.name() if isinstance(error, KafkaError) else "UNKNOWN"
    text = error.str() if isinstance(error, KafkaError) else str(exc)
    who = admin.username or "the anonymous principal"
    if name in _LOGIN:
        return Trouble(
            admin.variable("password"), f"the broker refused the login of principal {who} ({text})"
        )
    if name in _REFUSED:
        return Trouble(
            admin.variable("username"),
            f"principal {who} may not administer the cluster ({name}): the steps that make"
            " topics, principals and ACLs need a cluster administrator",
        )
    if name in _UNREACHABLE:
        return Trouble(
            admin.variable("bootstrap_servers"),
            f"the cluster at {admin.bootstrap_servers} did not answer ({text})",
        )
    if name in _OPTIONS:
        return Trouble(_OPTIONS[name], text)
    return Trouble(admin.variable("bootstrap_servers"), f"the cluster refused: {name} ({text})")
