"""The console's screens, one router per part."""

from __future__ import annotations

from . import auth, node, statistics, trail, work

ROUTERS = (auth.router, work.router, statistics.router, node.router, trail.router)

__all__ = ["ROUTERS"]
