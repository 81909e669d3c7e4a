"""Server-side sessions: the cookie carries only a random token; the API key it stands for
stays in this process's memory and is never written anywhere.

A session ends at sign-out, when the same browser signs in again, after ``idle`` without a
request, after ``lifetime`` in any case, or when the process stops (everyone signs in
again). One key holds at most ``per_key`` sessions: its own oldest gives way to a new one.
When ``capacity`` live sessions are open a sign-in is refused (``SessionsFull``) rather
than ending someone else's, so no key can sign the others out.
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


class SessionsFull(Exception):
    """Every place is taken by a live session: a new one must wait for one to end."""


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
        per_key: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.capacity = capacity
        self.per_key = per_key
        self.clock = clock
        self._open: OrderedDict[str, Session] = OrderedDict()

    def start(self, key: str, key_id: UUID) -> tuple[str, Session]:
        """A new session: its token (for the cookie, never stored) and the session.
        SessionsFull when ``capacity`` live sessions of other keys are open."""
        now = self.clock()
        self._sweep(now)
        own = [digest for digest, s in self._open.items() if s.key_id == key_id]
        while len(own) >= self.per_key:  # the key's own oldest gives way
            del self._open[own.pop(0)]
        if len(self._open) >= self.capacity:
            raise SessionsFull
        token = secrets.token_urlsafe(32)
        session = Session(key, key_id, secrets.token_urlsafe(32), now, now)
        self._open[_digest(token)] = session
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
        if self._expired(session, now):
            del self._open[digest]
            return None
        session.seen = now
        return session

    def end(self, token: str | None) -> Session | None:
        return self._open.pop(_digest(token), None) if token else None

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle or now - session.started > self.lifetime

    def _sweep(self, now: float) -> None:
        for digest in [d for d, s in self._open.items() if self._expired(s, now)]:
            del self._open[digest]

    def __len__(self) -> int:
        return len(self._open)
