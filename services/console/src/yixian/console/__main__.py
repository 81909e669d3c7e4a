"""``python -m yixian.console``: run a node's console."""

from __future__ import annotations

from yixian.runtime.service import service_cli

from .bootstrap import SERVICE, migrate, serve
from .config import ConsoleSettings

cli, _ = service_cli(SERVICE, ConsoleSettings, serve, migrate, "A Yixian node's console.")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
