"""The sync service's domain: pure rules for applying partner events and link health."""

from .apply import (
    Outcome,
    Refused,
    Replica,
    StoredMovement,
    apply_host,
    apply_origin,
    receive_host,
    receive_origin,
    receive_participation,
)
from .digest import Repair, bucket_of, buckets, differing_buckets, reconcile
from .link import SequenceTracker, subtract_runs

__all__ = [
    "Outcome",
    "Refused",
    "Repair",
    "Replica",
    "SequenceTracker",
    "StoredMovement",
    "apply_host",
    "apply_origin",
    "bucket_of",
    "buckets",
    "differing_buckets",
    "receive_host",
    "receive_origin",
    "receive_participation",
    "reconcile",
    "subtract_runs",
]
