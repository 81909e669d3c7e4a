"""Which organization of this node answers for a movement: at its origin the member's
organization; at its host the one a host secretary assigned (then the one that checked
the member in), else the one the origin suggested if it exists here, else the root."""

from __future__ import annotations

from yixian.contracts.expressions import Fact, Kind, origin

HOST_ORG_HINT = Fact(
    "host_org_hint", origin("destination", "host_org_hint", "org_id", kind=Kind.UUID)
)
"""The host organization the origin suggested (it may not exist at the host)."""
