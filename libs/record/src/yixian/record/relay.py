"""The outbox relay: publishes committed events to Kafka, in commit order, and marks them.

- One relay at a time: each instance waits for a PostgreSQL advisory lock, so a second
  instance is a hot standby that neither duplicates nor reorders; it takes over within a
  poll interval when the first one's connection drops.
- Wakes on ``LISTEN yixian_outbox`` (the outbox's insert trigger, and whoever puts rows
  back in the queue); with nothing to send it waits for that, looking again on its own
  only every ``idle_wait`` seconds (or when a resting topic may be sent again).
- Idempotent producer, ``acks=all``; each record keyed and labelled as its writer queued
  it (``outbox.record_key``: ``routes.ROUTES``' movement, claim or activity id, or
  ``link``; ``outbox.content_type``: the ``content-type`` header); a batch is sent in id
  order and marked published only after the broker acknowledged it.
- Pair-topic events are numbered here, per partner, in the order they are published; the
  numbers are committed before the batch is sent, so a batch sent again after a crash
  carries the same numbers (ADR 12). Each partner's numbers live in a link epoch, set when
  its ``pair_sequences`` row is created and stamped beside every number (``pairepoch``):
  a rebuilt database numbers from 1 again, but in a new, later epoch (ADR 16).
- While Kafka is down nothing is lost: rows stay unpublished and the relay retries with
  backoff; every send is bounded by a timeout so a dead broker cannot hang it.
- Each topic is sent on its own, so no destination waits for another. A row the broker
  will never take as it is (too large, a topic the node may not write to, no such topic:
  ``park_reason``) is parked with its reason and the relay goes on; the operator retries
  or discards it (``yixian outbox``). A topic failing for a passing reason (its partition
  leader away) rests with its own backoff while the others flow.
- Order holds per topic and partition up to a passing failure: nothing after it counts
  as sent. A parked row does not hold back the rows after it, even of its movement: every
  event carries its group's whole snapshot with its version (participations are keyed),
  so a later version supersedes the parked one and a parked version published later is
  ignored as older. A parked pair row keeps its number (ADR 15).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from yixian.contracts import numbered, record_headers
from yixian.runtime import DbConnection, KafkaSettings, get_logger
from yixian.runtime.kafka import AIOKafkaProducer, errors, make_producer

from .metrics import RelayMetrics
from .outbox import CHANNEL, MAX_RECORD_BYTES

log = get_logger(__name__)
RELAY_LOCK = 0x59_49_58_52  # "YIXR"


@dataclass(frozen=True, slots=True)
class RelaySettings:
    batch_size: int = 500
    poll_interval: float = 1.0
    """How often a standby relay asks for the lead, and the pause after a database error."""
    idle_wait: float = 30.0
    """The longest the leader waits for a notification when the outbox has nothing to send:
    a fallback for rows made sendable without one (written by hand)."""
    send_timeout: float = 15.0
    max_backoff: float = 10.0
    linger_ms: int = 5


PRODUCER_OPTIONS: dict[str, Any] = {
    "enable_idempotence": True,
    "acks": "all",
    "request_timeout_ms": 10_000,
    "retry_backoff_ms": 200,
    "max_request_size": MAX_RECORD_BYTES,
}


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
        # A session lock on a connection held for the relay's life: unlocked before the
        # connection goes back to the pool (which keeps a session as it is), or gone with
        # the connection when it drops or the process dies.
        async with self.pool.acquire() as conn:
            try:
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                    if await _sleep_or_stop(stop, self.settings.poll_interval):
                        return
                self.is_leader = True
                self.metrics.leader.set(1)
                log.info("relay is the leader")
                try:
                    await conn.add_listener(CHANNEL, self._on_notify)
                    try:
                        await self._publish_until(stop, conn)
                    finally:
                        await conn.remove_listener(CHANNEL, self._on_notify)
                finally:
                    await _unlock(conn)
            finally:
                self.is_leader = False
                self.metrics.leader.set(0)

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _publish_until(self, stop: asyncio.Event, conn: DbConnection) -> None:
        backoff = 0.5
        resting = _Resting(first=0.5, most=self.settings.max_backoff)
        producer: AIOKafkaProducer | None = None
        drained = False
        try:
            while not stop.is_set():
                if producer is None:
                    producer = await self._start_producer()
                    if producer is None:
                        await _sleep_or_stop(stop, backoff)
                        backoff = min(backoff * 2, self.settings.max_backoff)
                        continue
                if drained:  # the last batch took every row: sleep until one is added
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wait_wake_or_stop(stop),
                            resting.wait(self.settings.idle_wait),
                        )
                    if stop.is_set():
                        break
                # a row committed after this point wakes the relay again (its NOTIFY)
                self._wake.clear()
                rows, numbers = await take_batch(conn, self.settings.batch_size, resting.topics())
                drained = len(rows) < self.settings.batch_size
                if not rows:
                    continue
                outcome = await self._send(producer, rows, numbers)
                if outcome.sent:
                    marked = await conn.fetch(
                        "UPDATE outbox SET published_at = clock_timestamp()"
                        " WHERE id = ANY($1::bigint[]) RETURNING topic,"
                        " extract(epoch FROM published_at - created_at) AS latency",
                        outcome.sent,
                    )
                    self.published += len(outcome.sent)
                    self.metrics.published_rows(marked)
                if outcome.parked:
                    await self._park(conn, rows, outcome.parked)
                resting.settle({r["topic"] for r in rows} - outcome.failed)
                if outcome.failed or outcome.refused:
                    await _stop_quietly(producer)  # rebuilt: nothing of this batch in flight
                    producer = None
                    drained = False
                if outcome.failed and not (outcome.sent or outcome.parked):
                    log.warning(
                        "kafka unavailable; events stay in the outbox",
                        pending=len(rows),
                    )
                    await _sleep_or_stop(stop, backoff + random.uniform(0, backoff / 2))  # noqa: S311
                    backoff = min(backoff * 2, self.settings.max_backoff)
                    continue
                backoff = 0.5
                for topic in outcome.failed:
                    log.warning("topic unavailable; its events wait", topic=topic)
                    resting.failed(topic)
        finally:
            if producer is not None:
                await _stop_quietly(producer)

    async def _park(
        self, conn: DbConnection, rows: list[asyncpg.Record], parked: list[tuple[int, str]]
    ) -> None:
        await conn.execute(
            "UPDATE outbox SET parked_at = clock_timestamp(), park_reason = u.reason"
            " FROM unnest($1::bigint[], $2::text[]) AS u(id, reason) WHERE outbox.id = u.id",
            [row_id for row_id, _ in parked],
            [reason for _, reason in parked],
        )
        topics = {r["id"]: r["topic"] for r in rows}
        for row_id, reason in parked:
            log.warning("event parked", outbox_id=row_id, topic=topics[row_id], reason=reason)
            self.metrics.parked_row(topics[row_id], reason)

    async def _wait_wake_or_stop(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _start_producer(self) -> AIOKafkaProducer | None:
        producer = make_producer(
            self.kafka,
            client_id=self.client_id,
            linger_ms=self.settings.linger_ms,
            **PRODUCER_OPTIONS,
        )
        try:
            async with asyncio.timeout(self.settings.send_timeout):
                await producer.start()
        except (errors.KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka not reachable; outbox waits", error=str(exc) or type(exc).__name__)
            await _stop_quietly(producer)
            return None
        return producer

    async def _send(
        self, producer: AIOKafkaProducer, rows: list[asyncpg.Record], numbers: dict[int, Number]
    ) -> _Outcome:
        """Send a batch, each topic on its own and in id order."""
        by_topic: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            by_topic.setdefault(row["topic"], []).append(row)
        outcome = _Outcome()
        for part in await asyncio.gather(
            *(self._send_topic(producer, topic, part, numbers) for topic, part in by_topic.items())
        ):
            outcome.sent += part.sent
            outcome.parked += part.parked
            outcome.failed |= part.failed
            outcome.refused |= part.refused
        return outcome

    async def _send_topic(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        rows: list[asyncpg.Record],
        numbers: dict[int, Number],
    ) -> _Outcome:
        """Send one topic's rows in order: the ids acknowledged (a prefix of the rows not
        parked, up to the first passing failure), the rows to park."""
        outcome = _Outcome()
        futures: list[tuple[int, asyncio.Future[Any]]] = []
        whole_topic: str | None = None  # the topic refuses every row alike
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self.settings.send_timeout):
                for row in rows:
                    if whole_topic is not None:
                        outcome.parked.append((row["id"], whole_topic))
                        continue
                    try:
                        futures.append((row["id"], await self._send_row(producer, row, numbers)))
                    except errors.KafkaError as exc:
                        reason = await _refusal(producer, topic, exc)
                        if reason is None:
                            raise
                        outcome.parked.append((row["id"], reason))
                        whole_topic = None if reason == "too_large" else reason
                results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        except (errors.KafkaError, OSError, TimeoutError) as exc:
            log.warning("publishing failed", topic=topic, error=str(exc) or type(exc).__name__)
            failure = exc
            results = [_outcome(f, exc) for _, f in futures]
            for _, f in futures:
                f.cancel()
        held = failure is not None and len(futures) < len(rows)
        for (row_id, _), result in zip(futures, results, strict=True):
            if not isinstance(result, BaseException):
                if not held:
                    outcome.sent.append(row_id)
                continue
            outcome.refused = True
            if (reason := park_reason(result)) is not None:
                outcome.parked.append((row_id, reason))
            else:
                held = True  # keep the order: nothing after a passing failure counts as sent
        if held or failure is not None:
            outcome.failed.add(topic)
        return outcome

    async def _send_row(
        self, producer: AIOKafkaProducer, row: asyncpg.Record, numbers: dict[int, Number]
    ) -> asyncio.Future[Any]:
        value = bytes(row["value"])
        if (number := numbers.get(row["id"])) is not None:
            epoch, pairseq = number
            value = numbered(value, pairseq, epoch)
        future: asyncio.Future[Any] = await producer.send(
            row["topic"],
            value=value,
            key=bytes(row["record_key"]),
            headers=record_headers(row["event_type"], row["trace_id"], row["content_type"]),
        )
        return future


@dataclass(slots=True)
class _Outcome:
    """What became of a batch's rows (or one topic's)."""

    sent: list[int] = field(default_factory=list)
    parked: list[tuple[int, str]] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    """Topics with a passing failure: their rows not sent wait."""
    refused: bool = False
    """The broker failed a record: the producer is rebuilt before the next batch."""


def park_reason(exc: BaseException) -> str | None:
    """Why a row whose send failed with ``exc`` is parked (``parked.PARK_REASONS``); None
    for a failure that passes (the relay sends it again)."""
    if isinstance(exc, errors.MessageSizeTooLargeError | errors.RecordTooLargeError):
        return "too_large"
    if isinstance(exc, errors.TopicAuthorizationFailedError):
        return "not_authorized"
    if isinstance(exc, errors.InvalidTopicError):
        return "unknown_topic"
    return None


async def _refusal(producer: AIOKafkaProducer, topic: str, exc: errors.KafkaError) -> str | None:
    """``park_reason`` of a send the producer refused before queueing it. Its wait for the
    topic's metadata ends the same way for a topic the broker does not have and for a
    broker it cannot reach: the topic is unknown only if the broker answers without it."""
    if isinstance(exc, errors.UnknownTopicOrPartitionError):
        client = producer.client
        answered = await client.force_metadata_update()
        return "unknown_topic" if answered and topic not in client.cluster.topics() else None
    return park_reason(exc)


class _Resting:
    """Topics whose last send failed for a passing reason, each with its own backoff, so
    one topic's trouble delays no other."""

    def __init__(self, *, first: float, most: float) -> None:
        self.first, self.most = first, most
        self._until: dict[str, float] = {}
        self._delay: dict[str, float] = {}

    def topics(self) -> list[str]:
        now = asyncio.get_running_loop().time()
        return [t for t, until in self._until.items() if until > now]

    def wait(self, most: float) -> float:
        """Seconds until the first resting topic may be sent again, at most ``most``."""
        now = asyncio.get_running_loop().time()
        ahead = [until - now for until in self._until.values() if until > now]
        return min([most, *ahead])

    def failed(self, topic: str) -> None:
        delay = min(self._delay.get(topic, self.first / 2) * 2, self.most)
        self._delay[topic] = delay
        now = asyncio.get_running_loop().time()
        self._until[topic] = now + delay + random.uniform(0, delay / 2)  # noqa: S311

    def settle(self, topics: set[str]) -> None:
        for topic in topics:
            self._until.pop(topic, None)
            self._delay.pop(topic, None)


Number = tuple[int, int]
"""A pair event's (link epoch, pair number); epoch 0: numbered before epochs (ADR 16)."""


_TAKE_BATCH = (
    "WITH batch AS (SELECT id, topic, destination, pairseq, pairepoch, record_key, value,"
    "  event_type, trace_id, content_type FROM outbox WHERE published_at IS NULL"
    "  AND parked_at IS NULL AND topic <> ALL($2::text[]) ORDER BY id LIMIT $1),"
    " fresh AS (SELECT id, destination,"
    "  row_number() OVER (PARTITION BY destination ORDER BY id) AS nth,"
    "  count(*) OVER (PARTITION BY destination) AS counted"
    "  FROM batch WHERE destination IS NOT NULL AND pairseq IS NULL),"
    " taken AS (INSERT INTO pair_sequences (destination, last_sequence, numbered_in)"
    "  SELECT destination, count(*), yixian_numbering_identity() FROM fresh GROUP BY destination"
    "  ON CONFLICT (destination) DO UPDATE SET"
    "  last_sequence = CASE WHEN pair_sequences.numbered_in = EXCLUDED.numbered_in"
    "   THEN pair_sequences.last_sequence + EXCLUDED.last_sequence ELSE EXCLUDED.last_sequence END,"
    "  epoch = CASE WHEN pair_sequences.numbered_in = EXCLUDED.numbered_in"
    "   THEN pair_sequences.epoch ELSE EXCLUDED.epoch END,"
    "  numbered_in = EXCLUDED.numbered_in"
    "  RETURNING destination, epoch, last_sequence),"
    " numbered AS (UPDATE outbox SET pairseq = t.last_sequence - f.counted + f.nth,"
    "  pairepoch = t.epoch FROM fresh f JOIN taken t USING (destination) WHERE outbox.id = f.id"
    "  RETURNING outbox.id, outbox.pairseq, outbox.pairepoch)"
    " SELECT b.id, b.topic, b.destination, coalesce(n.pairseq, b.pairseq) AS pairseq,"
    " coalesce(n.pairepoch, b.pairepoch) AS pairepoch, b.record_key, b.value, b.event_type,"
    " b.trace_id, b.content_type FROM batch b LEFT JOIN numbered n USING (id) ORDER BY b.id"
)
"""The next rows to send, the pair-topic ones numbered, in one statement (one round trip,
one commit). Rows numbered before (a batch sent again) keep their numbers; the others take
the next numbers of their partner, in id order, in its epoch while the same database gives
them; from 1 in a new, later epoch once the database is another (a restored backup, a
loaded dump)."""


async def take_batch(
    conn: DbConnection, limit: int, resting: list[str]
) -> tuple[list[asyncpg.Record], dict[int, Number]]:
    """Up to ``limit`` rows waiting to be sent (none of the ``resting`` topics), in id
    order, and the (epoch, number) of their pair-topic rows by outbox id (epoch 0: numbered
    before epochs), committed before anything is sent."""
    rows = await conn.fetch(_TAKE_BATCH, limit, resting)
    numbers = {
        r["id"]: (r["pairepoch"] or 0, r["pairseq"]) for r in rows if r["pairseq"] is not None
    }
    return rows, numbers


def _outcome(future: asyncio.Future[Any], failure: BaseException) -> Any:
    if future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return failure


async def _unlock(conn: DbConnection) -> None:
    """Give up the relay's lock; a connection that cannot is closed, the lock with it."""
    try:
        await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await producer.stop()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, or return early when ``stop`` is set; True if stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
