"""``python -m yixian.registry``: run the registry service of one node."""

from __future__ import annotations

from yixian.runtime import configure_logging, run

from .bootstrap import SERVICE, serve
from .config import RegistrySettings


def main() -> None:
    settings = RegistrySettings()
    configure_logging(service=SERVICE, node=settings.node, level=settings.log_level)
    raise SystemExit(run(SERVICE, lambda: serve(settings)))


if __name__ == "__main__":
    main()
