"""Rebuilding the partner-owned data of this node from a pair topic.

The partner's groups of shared movements, the participations it recorded and the inbox
rows of its events are cleared, then every record of the pair topic up to its current
end is applied again, from the start or from a point in time. This node's own groups are
never touched; nothing is announced again on the local topic.

The topic is read in large fetches and applied in chunks of ``CHUNK`` records, set-wise
(``replay.Replay``): the same rows as the applier writes, a few statements a chunk. A chunk
is decoded while the one before it is written: Python on one core, PostgreSQL on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from yixian.record import forget_received_participations
from yixian.runtime import DbConnection, KafkaSettings, get_logger
from yixian.runtime.kafka import group_members, read_topics
from yixian.sync.adapters.unit_of_work import PostgresTransactions

from .applier import Applier, SyncConfig
from .replay import Decoded, Forgotten, Other, Replay
from .repositories import Inbound

log = get_logger(__name__)

CHUNK = 5_000
"""Records applied together: a few statements each, whatever the chunk's size."""
COLLECT_EVERY = 20
"""Chunks between two runs of Python's cyclic garbage collector (``_collecting_rarely``)."""
YIELD_EVERY = 1000
"""Records decoded between two chances for the chunk before to be written."""
FETCH_BYTES = 4 * 1024 * 1024
"""What one fetch may bring from a partition (about 3,000 events of 1.2 KB)."""


class SyncStillRunning(Exception):
    """The node's sync service consumes its partners' topics: a rebuild would race it."""


@dataclass
class RebuildReport:
    records: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


async def clear_partner_data(conn: DbConnection, node: str, partner: str) -> None:
    """Forget what ``partner`` sent but its groups of the movements and its events: the
    attendances it recorded and the link's numbers. The groups (with the marks of the
    events that set them) and the inbox rows of its events are the replay's to forget
    (``replay.Forgotten``), each as late as it can: most are set again to what they
    were, and then not written at all."""
    async with conn.transaction():
        await forget_received_participations(conn, origin=node, host=partner)
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
    """Clear what ``partner`` owns here and apply its pair topic again. Refused
    (``SyncStillRunning``) while the node's sync service consumes: nothing else may apply
    the partner's events meanwhile."""
    group = kafka.consumer_group(config.node, "sync")
    if running := await group_members(kafka, group):
        raise SyncStillRunning(
            f"the sync service of node {config.node} is running ({running} consumer(s) in"
            f" {group}; one that was killed stays until its session times out, seconds):"
            " stop it before a rebuild"
        )
    topic = config.topics.pair(partner, config.node)
    report = RebuildReport()
    transactions = PostgresTransactions(pool, node=config.node, topics=config.topics)
    async with read_topics(
        kafka, [topic], since=since, max_records=CHUNK, fetch_bytes=FETCH_BYTES
    ) as reading:
        forgotten: dict[str, Forgotten] = {}
        if since is None:
            async with pool.acquire() as conn:
                await clear_partner_data(conn, config.node, partner)
            async with transactions() as uow:
                forgotten[partner] = Forgotten.held(await uow.store.partner_groups_held(partner))
        replay = Replay(Applier(transactions, config, clock, rebuilding=True), forgotten=forgotten)

        def counted(outcomes: list[str]) -> None:
            for outcome in outcomes:
                report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            report.records += len(outcomes)
            if progress:
                progress(report.records, reading.total)

        with _collecting_rarely():
            pipeline = _Pipeline(replay, counted)
            try:
                async for records in reading.batches():
                    await pipeline.add(
                        Inbound(r.topic, r.partition, r.offset, r.key, r.value or b"")
                        for r in records
                    )
                await pipeline.close()
            finally:
                await pipeline.abandon()
        await replay.finish()
    log.info("rebuild done", partner=partner, records=report.records, outcomes=report.outcomes)
    return report


class _Pipeline:
    """Records applied in chunks of ``CHUNK``, each decoded while the one before is written
    (the decoding gives way every ``YIELD_EVERY`` records, so that the writing goes on)."""

    def __init__(self, replay: Replay, counted: Callable[[list[str]], None]) -> None:
        self.replay = replay
        self.counted = counted
        self.chunk: list[Inbound] = []
        self.applying: asyncio.Task[list[str]] | None = None
        self.chunks = 0

    async def add(self, records: Iterable[Inbound]) -> None:
        self.chunk += records
        if len(self.chunk) >= CHUNK:
            await self._next()

    async def close(self) -> None:
        """Apply what is left, and wait for it."""
        if self.chunk:
            await self._next()
        await self._applied()

    async def abandon(self) -> None:
        """Stop the chunk being written, if any (after a failure)."""
        if self.applying is not None and not self.applying.done():
            self.applying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.applying

    async def _next(self) -> None:
        chunk, self.chunk = self.chunk, []
        decoded: list[Decoded | Other] = []
        for start in range(0, len(chunk), YIELD_EVERY):
            decoded += self.replay.decode(chunk[start : start + YIELD_EVERY])
            await asyncio.sleep(0)
        await self._applied()
        self.applying = asyncio.create_task(self.replay.apply_decoded(decoded))
        self.chunks += 1
        if self.chunks % COLLECT_EVERY == 0:
            gc.collect()

    async def _applied(self) -> None:
        if self.applying is not None:
            applying, self.applying = self.applying, None
            self.counted(await applying)


@contextlib.contextmanager
def _collecting_rarely() -> Iterator[None]:
    """Python's cyclic garbage collector off (``_Pipeline`` runs it every ``COLLECT_EVERY``
    chunks). A chunk holds some hundred thousand objects, alive while it is decoded and
    written, and each automatic collection walks them: at the default thresholds the
    collector took half of the rebuild's CPU, and at 50,000 allocations still a third. A
    replay makes few cycles (some hundred for 200,000 events); reference counting frees
    the rest."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
