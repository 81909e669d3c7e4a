"""A member's concern (feedback) and its thread: states, time to first answer, overdue,
what the origin sees, and the statistics of answering. Pure: no I/O.

A concern is held at the node of the organization it is addressed to: the host's (a
visiting member's open movement) or the origin's (the member's own organization). It is
``open`` until its first answer, then ``answered``; a secretary closes it (``closed``); a
closed concern takes no answer. Its time to first answer is the time from being raised to
the first answer, stamped once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from yixian.contracts import Deadlines, FeedbackState, FeedbackSummary, SharedConcern

from .errors import InvalidTransition

__all__ = [
    "Addressee",
    "Answer",
    "Concern",
    "FeedbackState",
    "answer_statistics",
    "host_summary",
    "percentile",
    "text_digest",
]

SHARED_LIMIT = 20
"""How many of the latest shared concerns the host group carries to the origin."""


class Addressee(StrEnum):
    HOST = "host"
    ORIGIN = "origin"


def text_digest(text: str) -> str:
    """What the constraints compare to tell the same concern or answer from another."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    answer_id: UUID
    feedback_id: UUID
    text: str
    answered_at: datetime
    answered_by: str

    def view(self) -> dict[str, Any]:
        return {
            "answer_id": str(self.answer_id),
            "text": self.text,
            "answered_at": self.answered_at,
            "answered_by": self.answered_by,
        }


@dataclass(frozen=True, slots=True)
class Concern:
    feedback_id: UUID
    org_id: UUID
    """The organization answerable for the concern (where it is in the queue)."""
    movement_id: UUID | None
    member_id: UUID
    member_name: str
    addressed_to: Addressee
    text: str
    share_with_origin: bool
    state: FeedbackState
    raised_at: datetime
    raised_by: str
    first_answered_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None

    @property
    def digest(self) -> str:
        return text_digest(self.text)

    @property
    def first_answer_seconds(self) -> int | None:
        if self.first_answered_at is None:
            return None
        return max(0, int((self.first_answered_at - self.raised_at).total_seconds()))

    def answer_due(self, deadlines: Deadlines) -> datetime:
        return deadlines.feedback_answer_due(self.raised_at)

    def overdue(self, now: datetime, deadlines: Deadlines) -> bool:
        """Still waiting for its first answer past the node's answer deadline."""
        return self.state is FeedbackState.OPEN and now > self.answer_due(deadlines)

    def answered(self, at: datetime) -> Concern:
        """The concern after an answer: the first one stamps the time to first answer."""
        if self.state is FeedbackState.CLOSED:
            raise InvalidTransition(
                "is closed: a closed concern takes no answer", field="feedback_id"
            )
        return replace(
            self,
            state=FeedbackState.ANSWERED,
            first_answered_at=self.first_answered_at or at,
        )

    def closed(self, at: datetime, by: str) -> Concern:
        return replace(self, state=FeedbackState.CLOSED, closed_at=at, closed_by=by)

    def view(self, now: datetime, deadlines: Deadlines) -> dict[str, Any]:
        return {
            "feedback_id": str(self.feedback_id),
            "org_id": str(self.org_id),
            "movement_id": str(self.movement_id) if self.movement_id else None,
            "member_id": str(self.member_id),
            "member_name": self.member_name,
            "addressed_to": self.addressed_to.value,
            "text": self.text,
            "share_with_origin": self.share_with_origin,
            "state": self.state.value,
            "raised_at": self.raised_at,
            "raised_by": self.raised_by,
            "answer_due_at": self.answer_due(deadlines),
            "overdue": self.overdue(now, deadlines),
            "first_answered_at": self.first_answered_at,
            "first_answer_seconds": self.first_answer_seconds,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
        }


def host_summary(concerns: Sequence[Concern], answers: int) -> FeedbackSummary:
    """What the host group tells the origin of a visiting member's concerns (raised with the
    host): counts, states and times; a concern's text only where the member allowed it.
    ``answers``: how many answers the host gave (each answer is a new version)."""
    by_time = sorted(concerns, key=lambda c: c.raised_at)
    first_answered = [c for c in by_time if c.first_answered_at is not None]
    latest_answer = max(
        first_answered, key=lambda c: c.first_answered_at or c.raised_at, default=None
    )
    shared = [
        SharedConcern(
            feedback_id=c.feedback_id,
            text=c.text,
            state=c.state,
            raised_at=c.raised_at,
            first_answered_at=c.first_answered_at,
        )
        for c in by_time
        if c.share_with_origin
    ][-SHARED_LIMIT:]
    return FeedbackSummary(
        raised=len(by_time),
        answered=len(first_answered),
        open=sum(c.state is FeedbackState.OPEN for c in by_time),
        closed=sum(c.state is FeedbackState.CLOSED for c in by_time),
        answers=answers,
        last_raised_at=by_time[-1].raised_at if by_time else None,
        last_first_answer_seconds=latest_answer.first_answer_seconds if latest_answer else None,
        shared=shared,
    )


def percentile(values: Sequence[int], q: float) -> int | None:
    """The nearest-rank ``q``-quantile (0 < q <= 1) of ``values``; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def answer_statistics(
    concerns: Sequence[Concern], now: datetime, deadlines: Deadlines
) -> dict[str, Any]:
    """How concerns were answered: counts by state, overdue, and the median and 90th
    percentile of the time to first answer (seconds, nearest rank)."""
    seconds = [s for c in concerns if (s := c.first_answer_seconds) is not None]
    return {
        "raised": len(concerns),
        "open": sum(c.state is FeedbackState.OPEN for c in concerns),
        "answered": len(seconds),
        "closed": sum(c.state is FeedbackState.CLOSED for c in concerns),
        "overdue": sum(c.overdue(now, deadlines) for c in concerns),
        "first_answer_seconds": {
            "median": percentile(seconds, 0.5),
            "p90": percentile(seconds, 0.9),
        },
        "answer_within_hours": deadlines.feedback_answer_hours,
    }
