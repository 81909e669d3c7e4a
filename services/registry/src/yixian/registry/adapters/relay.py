"""The outbox relay: publishes committed events to Kafka, in commit order, and marks them.

- One relay at a time: each instance waits for a PostgreSQL advisory lock, so a second
  instance is a hot standby that neither duplicates nor reorders; it takes over within a
  poll interval when the first one's connection drops.
- Wakes on ``LISTEN yixian_outbox`` (the outbox's insert trigger) and polls as a fallback.
- Idempotent producer, ``acks=all``; records keyed by movement id; a batch is sent in id
  order and marked published only after the broker acknowledged it.
- Pair-topic events are numbered here, per partner, in the order they are published; the
  numbers are committed before the batch is sent, so a batch sent again after a crash
  carries the same numbers (ADR 12).
- While Kafka is down nothing is lost: rows stay unpublished and the relay retries with
  backoff; every send is bounded by a timeout so a dead broker cannot hang it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from yixian.contracts import numbered
from yixian.registry.adapters.metrics import RelayMetrics
from yixian.runtime import DbConnection, KafkaSettings, get_logger
from yixian.runtime.kafka import aiokafka_security

log = get_logger(__name__)
RELAY_LOCK = 0x59_49_58_52  # "YIXR"
CHANNEL = "yixian_outbox"


@dataclass(frozen=True, slots=True)
class RelaySettings:
    batch_size: int = 500
    poll_interval: float = 1.0
    send_timeout: float = 15.0
    max_backoff: float = 10.0
    linger_ms: int = 5


def producer_options(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
    }
    return options | aiokafka_security(kafka)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        kafka: KafkaSettings,
        *,
        client_id: str,
        settings: RelaySettings | None = None,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics or RelayMetrics()
        self.kafka = kafka
        self.client_id = client_id
        self.settings = settings or RelaySettings()
        self.published = 0
        self.is_leader = False
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self._lead(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay lost the database; retrying", error=str(exc))
                self.is_leader = False
                await _sleep_or_stop(stop, self.settings.poll_interval)
            except Exception:
                log.exception("relay failed unexpectedly; retrying")
                self.is_leader = False
                await _sleep_or_stop(stop, self.settings.poll_interval)

    async def _lead(self, stop: asyncio.Event) -> None:
        # A session lock on a connection held for the relay's life: released when the
        # connection goes back to the pool (asyncpg unlocks all) or dies with the process.
        async with self.pool.acquire() as conn:
            try:
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                    if await _sleep_or_stop(stop, self.settings.poll_interval):
                        return
                self.is_leader = True
                self.metrics.leader.set(1)
                log.info("relay is the leader")
                await conn.add_listener(CHANNEL, self._on_notify)
                try:
                    await self._publish_until(stop, conn)
                finally:
                    await conn.remove_listener(CHANNEL, self._on_notify)
            finally:
                self.is_leader = False
                self.metrics.leader.set(0)

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _publish_until(self, stop: asyncio.Event, conn: DbConnection) -> None:
        backoff = 0.5
        producer: AIOKafkaProducer | None = None
        try:
            while not stop.is_set():
                if producer is None:
                    producer = await self._start_producer()
                    if producer is None:
                        await _sleep_or_stop(stop, backoff)
                        backoff = min(backoff * 2, self.settings.max_backoff)
                        continue
                self._wake.clear()
                rows = await conn.fetch(
                    "SELECT id, topic, destination, pairseq, record_key, value, event_type,"
                    " trace_id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
                    self.settings.batch_size,
                )
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wait_wake_or_stop(stop), self.settings.poll_interval
                        )
                    continue
                numbers = await _number(conn, rows)
                sent = await self._send(producer, rows, numbers)
                if sent:
                    marked = await conn.fetch(
                        "UPDATE outbox SET published_at = clock_timestamp()"
                        " WHERE id = ANY($1::bigint[]) RETURNING topic,"
                        " extract(epoch FROM published_at - created_at) AS latency",
                        sent,
                    )
                    self.published += len(sent)
                    self.metrics.published_rows(marked)
                if len(sent) < len(rows):
                    log.warning(
                        "kafka unavailable; events stay in the outbox",
                        pending=len(rows) - len(sent),
                    )
                    await _stop_quietly(producer)
                    producer = None
                    await _sleep_or_stop(stop, backoff + random.uniform(0, backoff / 2))  # noqa: S311
                    backoff = min(backoff * 2, self.settings.max_backoff)
                else:
                    backoff = 0.5
        finally:
            if producer is not None:
                await _stop_quietly(producer)

    async def _wait_wake_or_stop(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _start_producer(self) -> AIOKafkaProducer | None:
        producer = AIOKafkaProducer(
            **producer_options(self.kafka, self.client_id), linger_ms=self.settings.linger_ms
        )
        try:
            async with asyncio.timeout(self.settings.send_timeout):
                await producer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka not reachable; outbox waits", error=str(exc) or type(exc).__name__)
            await _stop_quietly(producer)
            return None
        return producer

    async def _send(
        self, producer: AIOKafkaProducer, rows: list[asyncpg.Record], numbers: dict[int, int]
    ) -> list[int]:
        """Send a batch in order; the ids acknowledged, a prefix of ``rows``."""
        futures: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self.settings.send_timeout):
                for row in rows:
                    value = bytes(row["value"])
                    if (pairseq := numbers.get(row["id"])) is not None:
                        value = numbered(value, pairseq)
                    futures.append(
                        await producer.send(
                            row["topic"],
                            value=value,
                            key=bytes(row["record_key"]),
                            headers=[
                                ("content-type", b"application/cloudevents+json; charset=utf-8"),
                                ("ce_type", row["event_type"].encode()),
                                ("trace_id", row["trace_id"].encode()),
                            ],
                        )
                    )
                results = await asyncio.gather(*futures, return_exceptions=True)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("publishing failed", error=str(exc) or type(exc).__name__)
            results = [_outcome(f, exc) for f in futures]
            for f in futures:
                f.cancel()
        sent: list[int] = []
        for row, result in zip(rows, results, strict=False):
            if isinstance(result, BaseException):
                break  # keep commit order: nothing after a failure counts as sent
            sent.append(row["id"])
        return sent


async def _number(conn: DbConnection, rows: list[asyncpg.Record]) -> dict[int, int]:
    """The pair numbers of a batch's pair-topic rows, by outbox id: those numbered before
    (a batch sent again) keep theirs, the others take the next ones of their partner, in id
    order, committed before anything is sent."""
    numbers = {r["id"]: r["pairseq"] for r in rows if r["pairseq"] is not None}
    fresh = [r for r in rows if r["destination"] is not None and r["pairseq"] is None]
    if not fresh:
        return numbers
    counts = Counter(r["destination"] for r in fresh)
    async with conn.transaction():
        last: dict[str, int] = dict(
            await conn.fetch(  # type: ignore[arg-type]  # (destination, last_sequence) rows
                "INSERT INTO pair_sequences (destination, last_sequence)"
                " SELECT * FROM unnest($1::text[], $2::bigint[])"
                " ON CONFLICT (destination) DO UPDATE"
                " SET last_sequence = pair_sequences.last_sequence + EXCLUDED.last_sequence"
                " RETURNING destination, last_sequence",
                list(counts),
                list(counts.values()),
            )
        )
        following = {d: last[d] - n + 1 for d, n in counts.items()}
        for row in fresh:
            numbers[row["id"]] = following[row["destination"]]
            following[row["destination"]] += 1
        await conn.execute(
            "UPDATE outbox SET pairseq = u.pairseq"
            " FROM unnest($1::bigint[], $2::bigint[]) AS u(id, pairseq) WHERE outbox.id = u.id",
            [r["id"] for r in fresh],
            [numbers[r["id"]] for r in fresh],
        )
    return numbers


def _outcome(future: asyncio.Future[Any], failure: BaseException) -> Any:
    if future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return failure


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await producer.stop()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, or return early when ``stop`` is set; True if stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
