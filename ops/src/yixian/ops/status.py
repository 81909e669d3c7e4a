"""``yixian node status``: what an operator looks at first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from yixian.record.parked import ParkedGroup, parked_groups
from yixian.runtime.kafka import errors, partition_lag, topics_matching
from yixian.sync.adapters.store import OPEN_DEAD_LETTERS
from yixian.sync.bootstrap import build_keeper
from yixian.sync.config import SyncSettings

from .trouble import Trouble, kafka_login


@dataclass
class NodeStatus:
    node: str
    backlog: int
    oldest_pending_seconds: float
    dead_letters: int
    parked: list[ParkedGroup] = field(default_factory=list)
    lag: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per consumer group, the records not yet committed per topic."""
    partition_lag: dict[str, dict[str, dict[int, int]]] = field(default_factory=dict)
    """Per consumer group, topic and partition."""
    links: list[dict[str, Any]] = field(default_factory=list)
    kafka_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "outbox_backlog": self.backlog,
            "oldest_pending_seconds": self.oldest_pending_seconds,
            "dead_letters_open": self.dead_letters,
            "outbox_parked": [group.as_json() for group in self.parked],
            "consumer_lag": self.lag,
            "consumer_lag_by_partition": self.partition_lag,
            "links": self.links,
            "kafka_error": self.kafka_error,
        }


async def gather(pool: asyncpg.Pool, settings: SyncSettings) -> NodeStatus:
    row = await pool.fetchrow(
        "SELECT count(*) AS backlog,"
        " coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS oldest"
        " FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
    )
    assert row is not None
    dead = await pool.fetchval(f"SELECT count(*) FROM dead_letters WHERE {OPEN_DEAD_LETTERS}")  # noqa: S608 (a constant)
    keeper = build_keeper(settings, pool)
    status = NodeStatus(
        node=settings.node,
        backlog=row["backlog"],
        oldest_pending_seconds=float(row["oldest"]),
        dead_letters=dead,
        parked=await parked_groups(pool),
        links=[view.as_json() for view in await keeper.views()],
    )
    kafka, node, topics = settings.kafka, settings.node, settings.kafka.topics
    try:
        await kafka_login(kafka)
        incoming = await topics_matching(kafka, topics.incoming_pattern(node))
        groups = {
            kafka.consumer_group(node, "sync"): incoming,
            kafka.consumer_group(node, "notify"): [topics.local(node)],
        }
        for group, names in groups.items():
            by_partition = status.partition_lag[group] = {}
            for (topic, partition), behind in (await partition_lag(kafka, group, names)).items():
                by_partition.setdefault(topic, {})[partition] = behind
            status.lag[group] = {topic: sum(p.values()) for topic, p in by_partition.items()}
    except Trouble as trouble:  # the database half of the report is still worth printing
        status.kafka_error = str(trouble)
    except errors.KafkaError as exc:
        status.kafka_error = (
            f"{kafka.variable('username')}: principal {kafka.username} may not ask the cluster"
            f" this ({type(exc).__name__}): yixian node init grants what a node needs"
        )
    return status
