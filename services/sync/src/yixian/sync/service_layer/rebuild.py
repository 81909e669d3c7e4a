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
from aiokafka import AIOKafkaConsumer, TopicPartition

from yixian.record import forget_received_participations
from yixian.runtime import DbConnection, KafkaSettings, get_logger
from yixian.runtime.kafka import aiokafka_security
from yixian.sync.adapters.store import Inbound

from .applier import Applier, SyncConfig

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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **aiokafka_security(kafka),
    )
    await consumer.start()
    report = RebuildReport()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if since is None:
            # explicit offsets: seek_to_beginning() can lose a race with the position the
            # fetcher has just reset the new assignment to, and then nothing is read
            starts = await consumer.beginning_offsets(partitions)
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
        else:
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            starts = {tp: (found[tp].offset if found[tp] else ends[tp]) for tp in partitions}
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
        total = sum(ends[tp] - starts[tp] for tp in partitions)
        async with pool.acquire() as conn:
            if since is None:
                await clear_partner_data(conn, config.node, partner)
        applier = Applier(pool, config, clock, rebuilding=True)
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=1000)
            for tp, records in batches.items():
                wanted = [r for r in records if r.offset < ends[tp]]
                outcomes = await applier.handle_batch(
                    [Inbound(r.topic, r.partition, r.offset, r.key, r.value or b"") for r in wanted]
                )
                for outcome in outcomes:
                    report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
                report.records += len(outcomes)
                if progress:
                    progress(report.records, total)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)  # done up to where the topic ended when we began
    finally:
        await consumer.stop()
    log.info("rebuild done", partner=partner, records=report.records, outcomes=report.outcomes)
    return report
