"""How often one client may try: a token bucket per name (a client's address, a presented
key's id), in this process's memory.

A bucket holds ``burst`` tries and gains one back every ``every`` seconds. Only the
``size`` most recently used names are remembered; a forgotten name starts full again,
which is what a name unused for ``burst * every`` seconds would have anyway.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    """Whole seconds until the next try is allowed (0 when this one is)."""
    first_refusal: bool = False
    """The first try refused since the name was last allowed one: the one worth recording."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    refusing: bool = False


class Throttle:
    def __init__(
        self,
        *,
        burst: int,
        every: float,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.every = every
        self.size = size
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, name: str) -> Verdict:
        """One try by ``name``: allowed (and counted), or refused with how long to wait."""
        now = self.clock()
        bucket = self._buckets.pop(name, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.at) / self.every)
        bucket.at = now
        self._buckets[name] = bucket
        while len(self._buckets) > self.size:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.refusing = False
            return Verdict(True)
        first, bucket.refusing = not bucket.refusing, True
        wait = max(1, math.ceil((1 - bucket.tokens) * self.every))
        return Verdict(False, wait, first)


@dataclass(frozen=True, slots=True)
class Limits:
    """The console's limits: sign-in tries per client address and per presented key id, and
    the audit rows written for refusals of people not signed in, per address."""

    by_address: Throttle = field(default_factory=lambda: Throttle(burst=30, every=2))
    by_key: Throttle = field(default_factory=lambda: Throttle(burst=10, every=6))
    anonymous: Throttle = field(default_factory=lambda: Throttle(burst=30, every=2))
