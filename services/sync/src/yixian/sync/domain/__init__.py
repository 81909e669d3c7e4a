"""The sync service's domain: pure rules for applying partner events and link health."""

from .apply import Outcome, Refused, Replica, apply_host, apply_origin
from .digest import Repair, bucket_of, buckets, differing_buckets, reconcile
from .link import SequenceTracker, subtract_runs

__all__ = [
    "Outcome",
    "Refused",
    "Repair",
    "Replica",
    "SequenceTracker",
    "apply_host",
    "apply_origin",
    "bucket_of",
    "buckets",
    "differing_buckets",
    "reconcile",
    "subtract_runs",
]
