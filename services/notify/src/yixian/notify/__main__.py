"""``python -m yixian.notify``: run the notify service of one node."""

from __future__ import annotations

from yixian.runtime import configure_logging, run

from .bootstrap import SERVICE, serve
from .config import NotifySettings


def main() -> None:
    settings = NotifySettings()
    configure_logging(service=SERVICE, node=settings.node, level=settings.log_level)
    raise SystemExit(run(SERVICE, lambda: serve(settings)))


if __name__ == "__main__":
    main()
