"""``python -m yixian.notify``: run a node's notify service."""

from __future__ import annotations

import asyncio

import typer

from yixian.runtime import configure_logging, run

from .bootstrap import SERVICE, migrate, serve
from .config import NotifySettings

cli = typer.Typer(help="A Yixian node's notify service.")


def _settings() -> NotifySettings:
    settings = NotifySettings()
    configure_logging(service=SERVICE, node=settings.node, level=settings.log_level)
    return settings


@cli.callback(invoke_without_command=True)
def main_command(ctx: typer.Context) -> None:
    """Plan notices from the local topic and the clock, and send them (the default)."""
    if ctx.invoked_subcommand is None:
        settings = _settings()
        raise typer.Exit(run(SERVICE, lambda: serve(settings)))


@cli.command("migrate")
def migrate_command() -> None:
    """Apply pending schema migrations and exit."""
    applied = asyncio.run(migrate(_settings()))
    typer.echo(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
