"""The node's one way to Kafka: every client a service, the relay or the operator's command
uses is built here, from one reading of ``KafkaSettings`` (ADR 18).

- ``make_broker``: a FastStream broker, for the consumers (sync, notify);
- ``make_producer``: an idempotent-capable aiokafka producer, for the relay;
- ``read_topics``: topics' records from a start (their beginning, a time, or an offset
  per partition) up to where they ended when reading began, in batches, for sync's
  rebuild and the operator's trace (the part sync has not read yet);
- ``read_records``: exactly the records at some (topic, partition, offset) positions,
  for the operator's trace (the records the node's database says it received);
- ``topics_matching``, ``partitions_matching``, ``committed_offsets``, ``consumer_lag``,
  ``kafka_reachable``: what metrics, readiness, the trace and ``yixian node status`` ask
  the cluster;
- ``check_login``: whether the principal can reach the cluster and log in, and if not the
  setting at fault (``KafkaUnreachable``), for the operator's command;
- ``admin_config``: the same connection for librdkafka, for the cluster administrator's
  steps only (SCRAM credentials and ACLs, which aiokafka's admin client cannot make).

The node's clients are FastStream and the aiokafka it is built on; the security options
are worked out once (``Connection``) and rendered for each.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka import errors as errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from .settings import KafkaSettings

__all__ = [
    "QUIET_FETCH_WAIT_MS",
    "QUIET_LOOK_MS",
    "AIOKafkaProducer",
    "Connection",
    "ConsumerRecord",
    "KafkaUnreachable",
    "Position",
    "RecordsRead",
    "TopicPartition",
    "TopicRead",
    "admin_config",
    "batch_records",
    "check_login",
    "client_options",
    "committed_offsets",
    "consumer_lag",
    "errors",
    "kafka_reachable",
    "make_broker",
    "make_producer",
    "partitions_matching",
    "raw_bodies",
    "read_records",
    "read_topics",
    "topics_matching",
]

TIMEOUT = 10.0
"""Seconds a metadata or offsets request to the cluster may take."""


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach the cluster and log in, checked once: the one reading of the settings."""

    bootstrap_servers: str
    protocol: str
    mechanism: str
    username: str | None
    password: str | None
    cafile: str | None

    @classmethod
    def of(cls, settings: KafkaSettings) -> Connection:
        sasl = settings.security_protocol != "PLAINTEXT"
        if sasl and (settings.username is None or settings.password is None):
            raise ValueError(
                f"{settings.variable('username')} and {settings.variable('password')} are"
                f" required for {settings.security_protocol}"
            )
        return cls(
            settings.bootstrap_servers,
            settings.security_protocol,
            settings.sasl_mechanism,
            settings.username if sasl else None,
            settings.password.get_secret_value() if sasl and settings.password else None,
            settings.ssl_cafile,
        )

    @property
    def sasl(self) -> bool:
        return self.protocol != "PLAINTEXT"

    @property
    def uses_ssl(self) -> bool:
        return self.protocol == "SASL_SSL"

    def security(self) -> BaseSecurity | None:
        """For FastStream, and through it for aiokafka."""
        if not self.sasl:
            return None
        assert self.username is not None
        assert self.password is not None
        scram = SASLScram256 if self.mechanism == "SCRAM-SHA-256" else SASLScram512
        return scram(
            username=self.username,
            password=self.password,
            use_ssl=self.uses_ssl,
            ssl_context=ssl.create_default_context(cafile=self.cafile) if self.uses_ssl else None,
        )

    def aiokafka(self) -> dict[str, Any]:
        """An aiokafka client's connection options (FastStream's own rendering of them)."""
        security = self.security()
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        return options | (parse_security(security) if security is not None else {})

    def librdkafka(self) -> dict[str, Any]:
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.sasl:
            config |= {
                "security.protocol": self.protocol,
                "sasl.mechanism": self.mechanism,
                "sasl.username": self.username,
                "sasl.password": self.password,
            }
            if self.cafile:
                config["ssl.ca.location"] = self.cafile
        return config


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and login options for an aiokafka client."""
    return Connection.of(settings).aiokafka()


def admin_config(settings: KafkaSettings) -> dict[str, Any]:
    """The same connection for a librdkafka (confluent-kafka) client: the cluster
    administrator's SCRAM credentials and ACLs only."""
    return Connection.of(settings).librdkafka()


# -- consumers ------------------------------------------------------------------------------


def make_broker(settings: KafkaSettings, *, client_id: str, **options: Any) -> KafkaBroker:
    """A FastStream broker for ``settings``; connects only when the application starts it.

    It only consumes: no producer and no admin client of its own (the outbox relay is the
    node's one producer), one client and its connections fewer for each node a process
    serves; its subscribers must say ``no_reply=True``, or a record carrying a
    ``reply_to`` header would be answered."""
    connection = Connection.of(settings)
    options.setdefault("consumer_only", True)
    # a logger of our own: FastStream decorates its "faststream" logger with a handler of its own
    options.setdefault("logger", logging.getLogger("yixian.broker"))
    # a line per message ("Received", "Processed") only when debugging: our handlers log
    # what matters, with the trace id
    options.setdefault("log_level", logging.DEBUG)
    return KafkaBroker(
        connection.bootstrap_servers,
        client_id=client_id,
        security=connection.security(),
        **options,
    )


QUIET_FETCH_WAIT_MS = 2000
"""How long the broker holds a fetch of a node's consumer on a quiet topic (it answers as
soon as a record is there, unless the consumer asks for more: notify waits for a batch);
aiokafka's 500 ms costs each idle consumer a fetch every half second. The price: a seek (a
batch delivered again) or a newly subscribed topic waits for the fetch in flight, up to
this long."""
QUIET_LOOK_MS = 5000
"""How often a consumer's fetching routine looks around on its own (a rebalance, a seek,
records consumed and a fetch done wake it at once); aiokafka's 200 ms wakes it five times a
second for nothing."""


async def raw_bodies(message: Any) -> Any:
    """A decoder that keeps the bytes: each service validates its records itself."""
    return message.body


def batch_records(message: KafkaMessage) -> tuple[Any, ...]:
    """The consumer records behind a batch message, in order (a batch subscriber's raw
    message is a tuple from the broker, a list from FastStream's in-memory test broker)."""
    raw = message.raw_message
    return tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)


# -- producing --------------------------------------------------------------------------------


def make_producer(settings: KafkaSettings, *, client_id: str, **options: Any) -> AIOKafkaProducer:
    """A producer for ``settings`` (not started); ``options`` are aiokafka's."""
    return AIOKafkaProducer(client_id=client_id, **client_options(settings), **options)


# -- reading a topic to its end ---------------------------------------------------------------


class TopicRead:
    """The records of some topics from a start up to where each partition ended when
    reading began (``read_topics``)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer | None,
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        max_records: int,
    ) -> None:
        self._consumer = consumer
        self._ends = ends
        self._max_records = max_records
        self.starts = starts
        """Where each partition's reading starts."""
        self.total = sum(ends[tp] - starts[tp] for tp in ends)
        """How many records there are to read."""
        self.read = 0
        """How many records the cluster has handed over so far (a record written after
        reading began included, though it is not yielded)."""
        self._remaining = {tp for tp in ends if ends[tp] > starts[tp]}

    @property
    def remaining(self) -> frozenset[TopicPartition]:
        """The partitions not yet read to where they ended (a partition whose last batch
        has just been handed out may still be among them)."""
        return frozenset(self._remaining)

    async def batches(self) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
        """Batches of records, in offset order within a partition."""
        while self._remaining:
            assert self._consumer is not None  # there is something to read
            batches = await self._consumer.getmany(
                *self._remaining, timeout_ms=1000, max_records=self._max_records
            )
            for tp, records in batches.items():
                self.read += len(records)
                wanted = [r for r in records if r.offset < self._ends[tp]]
                if wanted:
                    yield wanted
                if records and records[-1].offset + 1 >= self._ends[tp]:
                    self._remaining.discard(tp)


@asynccontextmanager
async def read_topics(
    settings: KafkaSettings,
    topics: Sequence[str],
    *,
    since: datetime | None = None,
    start_offsets: Mapping[TopicPartition, int] | None = None,
    partitions: Iterable[TopicPartition] | None = None,
    max_records: int = 1000,
    fetch_bytes: int | None = None,
) -> AsyncIterator[TopicRead]:
    """Read ``topics`` from their beginning (or from the first record at or after
    ``since``) up to where they end now. ``start_offsets``: where to start instead, for
    the partitions it names (kept within the partition's first and next offset).
    ``partitions``: the partitions the cluster has, if the caller has just asked
    (``partitions_matching``); asked for otherwise. ``fetch_bytes``: how much one fetch
    may bring from a partition (aiokafka's default, 1 MiB, otherwise). No consumer group:
    nothing is committed."""
    partitions = await _known(settings, topics, partitions)
    if not partitions:  # none of the topics is there: nothing to read, and no consumer
        # (stopping an aiokafka consumer that was never assigned raises CancelledError)
        yield TopicRead(None, {}, {}, max_records)
        return
    sizes = {} if fetch_bytes is None else {
        "max_partition_fetch_bytes": fetch_bytes,
        "fetch_max_bytes": max(fetch_bytes, 50 * 1024 * 1024),
    }  # fmt: skip
    consumer = _reader(settings, **sizes)
    try:
        await consumer.start()
        ends: dict[TopicPartition, int] = {}
        starts: dict[TopicPartition, int] = {}
        if partitions:
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            if since is None:
                starts = await consumer.beginning_offsets(partitions)
            else:
                found = await consumer.offsets_for_times(
                    {tp: int(since.timestamp() * 1000) for tp in partitions}
                )
                starts = {tp: (found[tp].offset if found[tp] else ends[tp]) for tp in partitions}
            if start_offsets:
                given = {tp: start_offsets[tp] for tp in partitions if tp in start_offsets}
                firsts = await consumer.beginning_offsets(list(given)) if given else {}
                for tp, offset in given.items():
                    starts[tp] = min(max(offset, firsts[tp]), ends[tp])
            # explicit offsets: seek_to_beginning() can lose a race with the position the
            # fetcher has just reset the new assignment to, and then nothing is read
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
        yield TopicRead(consumer, starts, ends, max_records)
    finally:
        await consumer.stop()


def _reader(settings: KafkaSettings, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group, for reading positions the caller seeks to."""
    return AIOKafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        request_timeout_ms=int(TIMEOUT * 1000),
        **options,
    )


# -- reading records by position --------------------------------------------------------------


class Position(NamedTuple):
    """Where a record lies: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int


@dataclass
class RecordsRead:
    """What ``read_records`` found."""

    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    """The records asked for that the cluster still has, by topic, partition and offset."""
    missing: list[Position] = field(default_factory=list)
    """Positions the cluster has no record at (a topic or partition gone, an offset
    deleted by retention or compaction, or one never written)."""
    read: int = 0
    """How many records the cluster handed over: those asked for, and at most one past
    each run of consecutive positions with a record missing at its end."""


READ_FETCH_BYTES = 64 * 1024
"""What a read by position fetches from a partition at a time: a record and its
neighbours in the batch it was produced in, not a megabyte of what follows it."""


async def read_records(
    settings: KafkaSettings,
    positions: Iterable[Position],
    *,
    partitions: Iterable[TopicPartition] | None = None,
) -> RecordsRead:
    """The records at ``positions``, and only those: each run of consecutive offsets of a
    partition is one seek and as many records as the run is long, whatever lies between
    the runs. Positions repeated count once; a record not fetched within ``TIMEOUT`` is
    taken for missing. ``partitions``: as for ``read_topics``."""
    wanted: dict[TopicPartition, set[int]] = {}
    for topic, partition, offset in positions:
        wanted.setdefault(TopicPartition(topic, partition), set()).add(offset)
    result = RecordsRead()
    if not wanted:
        return result
    existing = set(await _known(settings, sorted({tp.topic for tp in wanted}), partitions))
    for tp in sorted(set(wanted) - existing):
        result.missing += [Position(tp.topic, tp.partition, o) for o in sorted(wanted.pop(tp))]
    if not wanted:
        return result
    consumer = _reader(settings, max_partition_fetch_bytes=READ_FETCH_BYTES)
    try:
        await consumer.start()
        partitions = sorted(wanted)
        consumer.assign(partitions)
        firsts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        runs: dict[TopicPartition, list[tuple[int, int]]] = {}
        for tp in partitions:
            there = sorted(o for o in wanted[tp] if firsts[tp] <= o < ends[tp])
            result.missing += [
                Position(tp.topic, tp.partition, o) for o in sorted(wanted[tp] - set(there))
            ]
            if there:
                runs[tp] = _runs(there)
                # every partition starts fetching its first run at once
                consumer.seek(tp, runs[tp][0][0])
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        for tp, tp_runs in runs.items():
            for index, (first, last) in enumerate(tp_runs):
                if index:
                    consumer.seek(tp, first)
                await _read_run(consumer, tp, first, last, deadline, result)
            consumer.pause(tp)
    finally:
        await consumer.stop()
    result.records.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return result


def _runs(offsets: list[int]) -> list[tuple[int, int]]:
    """Sorted offsets as runs of consecutive ones, (first, last) each."""
    runs: list[tuple[int, int]] = []
    for offset in offsets:
        if runs and runs[-1][1] + 1 == offset:
            runs[-1] = (runs[-1][0], offset)
        else:
            runs.append((offset, offset))
    return runs


async def _read_run(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    first: int,
    last: int,
    deadline: float,
    result: RecordsRead,
) -> None:
    """Offsets ``first`` to ``last`` of ``tp``, from where the consumer was sought to."""
    loop = asyncio.get_running_loop()
    found: set[int] = set()
    next_offset = first
    while next_offset <= last and loop.time() < deadline:
        left_ms = max(int((deadline - loop.time()) * 1000), 1)
        batch = await consumer.getmany(
            tp, timeout_ms=min(left_ms, 1000), max_records=last - next_offset + 1
        )
        records = batch.get(tp, [])
        result.read += len(records)
        for record in records:
            if record.offset <= last:
                result.records.append(record)
                found.add(record.offset)
        if records:
            next_offset = records[-1].offset + 1
    result.missing += [
        Position(tp.topic, tp.partition, o) for o in range(first, last + 1) if o not in found
    ]


async def _partitions(settings: KafkaSettings, topics: Sequence[str]) -> list[TopicPartition]:
    """The partitions of those of ``topics`` the cluster has (and lets the node see)."""
    wanted = set(topics)
    return [tp for tp in await _described(settings) if tp.topic in wanted]


async def _known(
    settings: KafkaSettings, topics: Sequence[str], partitions: Iterable[TopicPartition] | None
) -> list[TopicPartition]:
    """``_partitions``, or those of ``partitions`` (already asked for) of ``topics``."""
    if partitions is None:
        return await _partitions(settings, topics)
    wanted = set(topics)
    return sorted(tp for tp in set(partitions) if tp.topic in wanted)


async def _described(settings: KafkaSettings) -> list[TopicPartition]:
    """Every partition of every topic the cluster lets the node see."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(TIMEOUT * 1000))
    try:
        await admin.start()
        described = await admin.describe_topics()  # every topic: asking names none into being
    finally:
        await admin.close()
    return sorted(
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in topic["partitions"]
    )


# -- asking the cluster ---------------------------------------------------------------------


async def partitions_matching(settings: KafkaSettings, pattern: str) -> list[TopicPartition]:
    """Every partition of the topics the principal can see whose name matches ``pattern``
    (one question to the cluster, whose answer ``read_topics`` and ``read_records`` take)."""
    compiled = re.compile(pattern)
    return [tp for tp in await _described(settings) if compiled.match(tp.topic)]


async def topics_matching(settings: KafkaSettings, pattern: str) -> list[str]:
    """The topics the principal can see whose name matches ``pattern``."""
    compiled = re.compile(pattern)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    try:
        await consumer.start()
        return sorted(name for name in await consumer.topics() if compiled.match(name))
    finally:
        await consumer.stop()


async def committed_offsets(
    settings: KafkaSettings, group: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """Where ``group`` has committed in each of ``partitions`` (None: no commit there)."""
    partitions = sorted(set(partitions))
    if not partitions:
        return {}
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(TIMEOUT * 1000))
    try:
        await admin.start()
        committed = await _group_offsets(admin, group, partitions)
    finally:
        await admin.close()
    marks: dict[TopicPartition, int | None] = {}
    for tp in partitions:
        mark = committed.get(tp)
        marks[tp] = mark.offset if mark is not None and mark.offset >= 0 else None
    return marks


_COORDINATOR_NOT_READY = (
    errors.GroupCoordinatorNotAvailableError,
    errors.CoordinatorLoadInProgressError,
    errors.NotCoordinatorForGroupError,
)


async def _group_offsets(
    admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, Any]:
    """The group's committed offsets. A cluster asked about groups for the first time
    creates its offsets topic and elects the group's coordinator: until then the answer
    is "not available", retried here for up to ``TIMEOUT`` seconds."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    pause = 0.1
    while True:
        try:
            offsets: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(
                group, partitions=partitions
            )
            return offsets
        except _COORDINATOR_NOT_READY:
            if asyncio.get_running_loop().time() + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


async def group_members(settings: KafkaSettings, group: str) -> int:
    """How many consumers are in ``group`` now (0: none, or no such group)."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(TIMEOUT * 1000))
    try:
        await admin.start()
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        pause = 0.1
        while True:
            try:
                [described] = await admin.describe_consumer_groups([group])
                break
            except _COORDINATOR_NOT_READY:  # as in _group_offsets
                if asyncio.get_running_loop().time() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
    finally:
        await admin.close()
    # a group: (error code, group, state, protocol type, protocol, members, ...)
    return sum(len(g[5]) for g in described.groups)


async def consumer_lag(
    settings: KafkaSettings, group: str, topics: Iterable[str]
) -> dict[str, int]:
    """Records not yet committed by ``group``, per topic (all of them if it never
    committed); topics that do not exist are left out."""
    lag: dict[str, int] = {}
    for (topic, _), behind in (await partition_lag(settings, group, topics)).items():
        lag[topic] = lag.get(topic, 0) + behind
    return lag


async def partition_lag(
    settings: KafkaSettings, group: str, topics: Iterable[str]
) -> dict[tuple[str, int], int]:
    """Records not yet committed by ``group``, per (topic, partition), as ``consumer_lag``."""
    options = client_options(settings) | {"request_timeout_ms": int(TIMEOUT * 1000)}
    partitions = await _partitions(settings, list(topics))
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**options)
    try:
        await consumer.start()
        try:
            await admin.start()
            committed = await _group_offsets(admin, group, partitions)
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
        finally:
            await admin.close()
    finally:
        await consumer.stop()
    lag: dict[tuple[str, int], int] = {}
    for tp in partitions:
        mark = committed.get(tp)
        start = mark.offset if mark is not None and mark.offset >= 0 else starts[tp]
        lag[(tp.topic, tp.partition)] = max(ends[tp] - start, 0)
    return lag


class KafkaUnreachable(Exception):
    """The principal could not reach the cluster or log in. ``field`` is the setting at
    fault, a field of ``KafkaSettings`` (``bootstrap_servers``, ``security_protocol``,
    ``password``, ...); ``message`` says what happened, in one sentence."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


async def check_login(settings: KafkaSettings, within: float = TIMEOUT) -> None:
    """Log in to a bootstrap server as ``settings`` say and ask it for metadata, trying each
    server in turn; ``KafkaUnreachable`` names the setting at fault when none lets the
    principal in. The clients' own retries would only log the reason and time out."""
    if settings.security_protocol != "PLAINTEXT":
        for field in ("username", "password"):
            if getattr(settings, field) is None:
                raise KafkaUnreachable(
                    field, f"is not set, and {settings.security_protocol} logs in with one"
                )
    connection = Connection.of(settings)
    options = connection.aiokafka()
    servers = [s.strip() for s in options.pop("bootstrap_servers").split(",") if s.strip()]
    who = f"principal {connection.username}" if connection.sasl else "the anonymous principal"
    problems: list[str] = []
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdecimal():
            raise KafkaUnreachable("bootstrap_servers", f"{server!r} is not host:port")
        try:
            async with asyncio.timeout(within):
                conn = await create_conn(
                    host, int(port), request_timeout_ms=int(within * 1000), **options
                )
                try:
                    await conn.send(MetadataRequest([]))
                finally:
                    conn.close()
            return
        except errors.SaslAuthenticationFailed:
            raise KafkaUnreachable(
                "password",
                f"the broker at {server} refused the login of {who} (SASL authentication"
                " failed: a wrong password, or no such principal)",
            ) from None
        except (errors.IllegalSaslStateError, errors.UnsupportedSaslMechanismError) as exc:
            raise KafkaUnreachable(
                "security_protocol",
                f"the listener at {server} does not take a {connection.protocol}"
                f" {connection.mechanism} login ({type(exc).__name__})",
            ) from None
        except errors.IncompatibleBrokerVersion:
            raise KafkaUnreachable(
                "bootstrap_servers",
                f"{server} is not a broker's client listener (a controller's?)",
            ) from None
        except errors.KafkaConnectionError:
            if connection.sasl:
                problems.append(f"{server}: the connection closed")
                continue
            raise KafkaUnreachable(
                "security_protocol",
                f"the listener at {server} closed the connection of a PLAINTEXT client: it"
                " expects SASL (SASL_PLAINTEXT or SASL_SSL)",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise KafkaUnreachable(
                "ssl_cafile", f"the certificate of {server} is not trusted ({exc.verify_message})"
            ) from None
        except ssl.SSLError as exc:
            raise KafkaUnreachable(
                "security_protocol", f"no TLS handshake with {server} ({exc.reason})"
            ) from None
        except TimeoutError:
            problems.append(f"{server}: no answer within {within:.0f}s")
        except ConnectionResetError:
            if connection.uses_ssl:
                raise KafkaUnreachable(
                    "security_protocol",
                    f"the listener at {server} reset a TLS handshake: it does not speak TLS",
                ) from None
            problems.append(f"{server}: the connection was reset")
        except OSError as exc:
            problems.append(f"{server}: {_reason(exc)}")
    raise KafkaUnreachable(
        "bootstrap_servers", f"no Kafka broker answers ({'; '.join(problems) or 'no servers'})"
    )


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    return exc.strerror or str(exc) or type(exc).__name__


async def kafka_reachable(settings: KafkaSettings) -> bool:
    """True if the cluster answers a metadata request within three seconds."""
    client = AIOKafkaClient(**client_options(settings), request_timeout_ms=3000)
    try:
        async with asyncio.timeout(3):
            await client.bootstrap()
        return True
    except Exception:
        return False
    finally:
        await client.close()
