"""``python -m yixian.notify``: run a node's notify service."""

from __future__ import annotations

from yixian.runtime.service import service_cli

from .bootstrap import SERVICE, migrate, serve, start_node
from .config import NotifySettings

cli, _ = service_cli(
    SERVICE, NotifySettings, serve, migrate, "A Yixian node's notify service.",
    start=start_node, host_port=8002,
)  # fmt: skip


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
