"""When and how fast notices go out: quiet hours, rate limits, retries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .rules import Channel


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No SMS at night (node time) unless the notice is urgent."""

    start: time = time(22, 0)
    end: time = time(7, 0)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    channels: frozenset[Channel] = frozenset({Channel.SMS})

    def holds(self, channel: Channel, at: datetime, urgent: bool) -> datetime | None:
        """When a notice held by quiet hours may go (None: it may go now)."""
        if urgent or channel not in self.channels:
            return None
        local = at.astimezone(self.zone)
        clock = local.time()
        quiet = (
            clock >= self.start or clock < self.end
            if self.start > self.end
            else self.start <= clock < self.end
        )
        if not quiet:
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.zone)


def backoff(
    attempt: int, base: float = 2.0, cap: float = 600.0, rng: random.Random | None = None
) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): exponential with full jitter."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass
class TokenBucket:
    """At most ``rate`` sends a second on average, bursts of up to ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds to wait before one more send may go (and take its token if 0)."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate
