"""``python -m yixian.record``: run a node's outbox relay alone, or apply the node schema."""

from __future__ import annotations

import typer

from yixian.runtime import run
from yixian.runtime.service import service_cli

from .process import RelayNodeSettings, run_relay
from .schema import migrate_node

SERVICE = "relay"


async def _migrate(settings: RelayNodeSettings) -> list[str]:
    return await migrate_node(settings.database_url)


cli, _settings = service_cli(
    SERVICE, RelayNodeSettings, run_relay, _migrate, "A Yixian node's outbox relay (the default)."
)


@cli.command("relay")
def relay_command() -> None:
    """Run the outbox relay (a second instance is a hot standby)."""
    settings = _settings()
    raise typer.Exit(run(SERVICE, lambda: run_relay(settings)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
