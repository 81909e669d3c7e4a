"""Composition root of the notify service: the one place its connections are built."""

from __future__ import annotations

from yixian.runtime import get_logger, open_resources, wait_for_stop_signal

from .config import NotifySettings

SERVICE = "notify"
log = get_logger(__name__)


async def serve(settings: NotifySettings) -> None:
    """Connect, announce readiness, and run until SIGTERM or SIGINT."""
    async with open_resources(settings, client_id=f"yixian-{SERVICE}-{settings.node}"):
        log.info("service started", kafka=settings.kafka.bootstrap_servers)
        await wait_for_stop_signal()
        log.info("service stopping")
    log.info("service stopped")
