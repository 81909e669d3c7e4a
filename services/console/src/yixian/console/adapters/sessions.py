"""Server-side sessions: the cookie carries only a random token; the API key it stands for
stays in this process's memory and is never written anywhere.

A session ends at sign-out, after ``idle`` without a request, after ``lifetime`` in any
case, or when the process stops (everyone signs in again).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID


@dataclass
class Session:
    key: str
    """The API key the person signed in with: what the console presents to the services."""
    key_id: UUID
    csrf: str
    """The token every form and htmx request of this session must send back."""
    started: float
    seen: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """The open sessions, by a digest of their token (oldest first)."""

    def __init__(
        self,
        *,
        idle: float,
        lifetime: float,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.capacity = capacity
        self.clock = clock
        self._open: OrderedDict[str, Session] = OrderedDict()

    def start(self, key: str, key_id: UUID) -> tuple[str, Session]:
        """A new session: its token (for the cookie, never stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(key, key_id, secrets.token_urlsafe(32), now, now)
        self._open[_digest(token)] = session
        while len(self._open) > self.capacity:  # the oldest give way
            self._open.popitem(last=False)
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token``; an expired one ends here."""
        if not token:
            return None
        digest = _digest(token)
        session = self._open.get(digest)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle or now - session.started > self.lifetime:
            del self._open[digest]
            return None
        session.seen = now
        return session

    def end(self, token: str | None) -> Session | None:
        return self._open.pop(_digest(token), None) if token else None

    def __len__(self) -> int:
        return len(self._open)
