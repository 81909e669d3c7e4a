"""Sending planned notices: due ones first, each claimed with a lease so that two
dispatchers never send the same notice; opt-outs, quiet hours and channel rate limits
are honoured; transient failures retry with backoff and jitter; permanent ones, or too
many retries, end as dead with the reason.

Each outcome is recorded as soon as it is known, so a crash can repeat at most the
notices in flight (``concurrency``). A repeat carries the same notice key on every
channel (Message-ID, ``Idempotency-Key``, ``X-Yixian-Notice-Id``), so receivers drop it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import asyncpg

from yixian.notify.adapters.channels import Channel, Delivery, Notice, Outcome
from yixian.notify.adapters.metrics import NotifyMetrics
from yixian.notify.domain.policy import QuietHours, TokenBucket, backoff
from yixian.notify.domain.rules import Channel as ChannelName
from yixian.runtime import get_logger

log = get_logger(__name__)
MAX_ATTEMPTS = 8
IDLE_MOST = 30.0
"""The longest an idle dispatcher waits without being woken: for notices this process did
not plan (another instance's, or written by hand)."""


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Mapping[ChannelName, Channel],
        *,
        rates: Mapping[ChannelName, float],
        quiet: QuietHours,
        clock: Callable[[], datetime],
        batch: int = 50,
        concurrency: int = 8,
        lease: timedelta = timedelta(seconds=30),
        metrics: NotifyMetrics | None = None,
        send_timeout: float = 20.0,
    ) -> None:
        self.pool = pool
        self.metrics = metrics or NotifyMetrics()
        self.channels = channels
        self.buckets = {
            name: TokenBucket(rate=rate, burst=max(1.0, rate / 10)) for name, rate in rates.items()
        }
        self.quiet = quiet
        self.clock = clock
        self.batch = batch
        self.concurrency = concurrency
        self.lease = lease
        """How long a claim lasts: a crashed dispatcher's notices are taken up after it."""
        self.send_timeout = send_timeout
        """A channel that takes longer is taken as a failure to retry."""
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Notices were just planned: look for due ones now, not when the wait ends."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, idle: float = 0.5, most: float = IDLE_MOST) -> None:
        """Send until ``stop`` is set. After a round that found nothing due, wait until the
        first pending notice falls due (at least ``idle``, at most ``most`` seconds), or
        until :meth:`wake` says notices were planned; after a failure, ``idle``."""
        while not stop.is_set():
            self._wake.clear()  # a wake during the round makes the next one start at once
            try:
                sent = await self.dispatch_once()
                wait = 0.0 if sent else await self._until_due(idle, most)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("dispatch failed; retrying", error=str(exc) or type(exc).__name__)
                wait = idle
            except Exception:
                log.exception("dispatch failed unexpectedly; retrying")
                wait = idle
            if wait > 0:
                await self._rest(stop, wait)

    async def _until_due(self, idle: float, most: float) -> float:
        """Seconds until the first pending notice is due, within ``idle`` and ``most``."""
        due: datetime | None = await self.pool.fetchval(
            "SELECT min(next_attempt_at) FROM notices WHERE status = 'pending'"
        )
        if due is None:
            return most
        return min(max((due - self.clock()).total_seconds(), idle), most)

    async def _rest(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def dispatch_once(self) -> int:
        """Claim a batch of due notices, send them, record each outcome as it comes."""
        now = self.clock()
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "UPDATE notices SET lease_until = $1::timestamptz + $3::interval"
                " WHERE notice_key IN (SELECT notice_key FROM notices WHERE status = 'pending'"
                " AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1)"
                " ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
                " RETURNING *, EXISTS (SELECT 1 FROM opt_outs o"
                " WHERE o.member_id = notices.member_id AND o.channel = notices.channel)"
                " AS opted_out",
                now,
                self.batch,
                self.lease,
            )
        if not rows:
            return 0
        semaphore = asyncio.Semaphore(self.concurrency)

        async def handle(row: asyncpg.Record) -> None:
            async with semaphore:
                started = asyncio.get_running_loop().time()
                result = await self._one(row)
                elapsed = asyncio.get_running_loop().time() - started
            self.metrics.attempts.labels(channel=row["channel"], outcome=result[1]).inc()
            self.metrics.send_seconds.labels(channel=row["channel"]).observe(elapsed)
            # recorded at once: a crash can repeat only what was in flight
            await self.pool.execute(
                "UPDATE notices SET status = $2, next_attempt_at = $3, last_error = $4,"
                " attempts = $5, lease_until = NULL,"
                " sent_at = CASE WHEN $2 = 'sent' THEN clock_timestamp() ELSE sent_at END"
                " WHERE notice_key = $1",
                *result,
            )

        await asyncio.gather(*(handle(r) for r in rows))
        return len(rows)

    async def _one(self, row: asyncpg.Record) -> tuple[str, str, object, str | None, int]:
        key, attempts = row["notice_key"], row["attempts"]
        channel = ChannelName(row["channel"])
        now = self.clock()
        if row["opted_out"] and not row["mandatory"]:
            return key, "suppressed", now, f"the member opted out of {channel.value}", attempts
        held_until = self.quiet.holds(channel, now, row["urgent"])
        if held_until is not None:
            return key, "pending", held_until, "quiet hours", attempts
        sender = self.channels.get(channel)
        if sender is None:
            return key, "dead", now, f"channel {channel.value} is not configured", attempts
        bucket = self.buckets.get(channel)
        if bucket is not None:
            while (wait := bucket.wait(time.monotonic())) > 0:  # noqa: ASYNC110  (pacing)
                await asyncio.sleep(wait)
        delivery = await self._send(sender, row)
        attempts += 1
        if delivery.outcome is Outcome.SENT:
            return key, "sent", now, None, attempts
        if delivery.outcome is Outcome.FAILED or attempts >= MAX_ATTEMPTS:
            log.warning("notice dead", reason=row["reason"], error=delivery.detail)
            return key, "dead", now, delivery.detail, attempts
        retry_at = now + timedelta(seconds=backoff(attempts))
        return key, "pending", retry_at, delivery.detail, attempts

    async def _send(self, sender: Channel, row: asyncpg.Record) -> Delivery:
        notice = Notice(
            key=row["notice_key"],
            reason=row["reason"],
            address=row["address"],
            subject=row["subject"],
            body=row["body"],
            movement_id=str(row["movement_id"]) if row["movement_id"] else None,
            member_id=str(row["member_id"]) if row["member_id"] else None,
        )
        try:
            # a channel that neither answers nor fails must not hold the dispatcher: the
            # notice is tried again later (its key makes a late first delivery harmless)
            async with asyncio.timeout(self.send_timeout):
                return await sender.send(notice)
        except TimeoutError:
            log.warning("channel did not answer in time", channel=row["channel"])
            return Delivery(Outcome.RETRY, f"no answer within {self.send_timeout:.0f}s")
        except Exception as exc:
            log.exception("channel failed")
            return Delivery(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
