"""Settings of the notify service (environment, prefix ``YIXIAN_``)."""

from __future__ import annotations

from yixian.runtime import NodeSettings


class NotifySettings(NodeSettings):
    """The node-wide settings; the notify service adds its own as it grows."""
