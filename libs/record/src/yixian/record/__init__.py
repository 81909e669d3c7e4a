"""The node's shared record: movements, their group history, participations and the
outbox every service publishes through (ADR 17).

The tables are the node schema's (``migrations/``, applied by ``schema``); the relay
(``relay``, run by ``process`` or ``python -m yixian.record relay``) publishes the outbox;
who writes and reads each is the matrix in this package's
canvas, ``libs/record/README.md``, held against the SQL by
``tests/contract/test_ownership.py``.
"""

from .history import (
    HISTORY_INSERT,
    ParticipationLike,
    add_history,
    add_history_rows,
    add_participation,
    add_participations,
    forget_received_participations,
    with_history,
)
from .outbox import MAX_RECORD_BYTES, Outbox

__all__ = [
    "HISTORY_INSERT",
    "MAX_RECORD_BYTES",
    "Outbox",
    "ParticipationLike",
    "add_history",
    "add_history_rows",
    "add_participation",
    "add_participations",
    "forget_received_participations",
    "with_history",
]
