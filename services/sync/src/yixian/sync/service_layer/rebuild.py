"""Rebuilding the partner-owned data of this node from a pair topic.

The partner's groups of shared movements, the participations it recorded and the inbox
rows of its events are cleared, then every record of the pair topic up to its current
end is applied again, from the start or from a point in time. This node's own groups are
never touched; nothing is announced again on the local topic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from yixian.record import forget_received_participations
from yixian.runtime import DbConnection, KafkaSettings, get_logger
from yixian.runtime.kafka import read_topics
from yixian.sync.adapters.unit_of_work import PostgresTransactions

from .applier import Applier, SyncConfig
from .repositories import Inbound

log = get_logger(__name__)


@dataclass
class RebuildReport:
    records: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


async def clear_partner_data(conn: DbConnection, node: str, partner: str) -> None:
    async with conn.transaction():
        await conn.execute(
            "UPDATE movements SET origin_version = 0, origin_status = NULL, origin_group = NULL"
            " WHERE origin = $1 AND host = $2",
            partner,
            node,
        )
        await forget_received_participations(conn, origin=node, host=partner)
        await conn.execute(
            "UPDATE movements SET host_version = 0, host_status = NULL, host_group = NULL"
            " WHERE origin = $1 AND host = $2",
            node,
            partner,
        )
        await conn.execute("DELETE FROM inbox WHERE source = $1", partner)
        await conn.execute(
            "UPDATE links SET epoch = 0, contiguous = 0, partner_sent = 0, missing_since = NULL"
            " WHERE partner = $1",
            partner,
        )
        await conn.execute("DELETE FROM link_received WHERE partner = $1", partner)


async def rebuild(
    pool: asyncpg.Pool,
    kafka: KafkaSettings,
    config: SyncConfig,
    partner: str,
    clock: Callable[[], datetime],
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Clear what ``partner`` owns here and apply its pair topic again."""
    topic = config.topics.pair(partner, config.node)
    report = RebuildReport()
    async with read_topics(kafka, [topic], since=since) as reading:
        if since is None:
            async with pool.acquire() as conn:
                await clear_partner_data(conn, config.node, partner)
        transactions = PostgresTransactions(pool, node=config.node, topics=config.topics)
        applier = Applier(transactions, config, clock, rebuilding=True)
        async for records in reading.batches():
            outcomes = await applier.handle_batch(
                [Inbound(r.topic, r.partition, r.offset, r.key, r.value or b"") for r in records]
            )
            for outcome in outcomes:
                report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            report.records += len(outcomes)
            if progress:
                progress(report.records, reading.total)
    log.info("rebuild done", partner=partner, records=report.records, outcomes=report.outcomes)
    return report
