"""Settings of the sync service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from yixian.runtime import NodeSettings


class SyncSettings(NodeSettings):
    """The node-wide settings; the sync service adds its own as it grows."""
