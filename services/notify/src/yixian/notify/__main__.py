"""``python -m yixian.notify``: run a node's notify service."""

from __future__ import annotations

from yixian.runtime.service import service_cli

from .bootstrap import SERVICE, migrate, serve
from .config import NotifySettings

cli, _ = service_cli(SERVICE, NotifySettings, serve, migrate, "A Yixian node's notify service.")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
