"""What every service's entry points share: the command line and the health endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from fastapi import FastAPI, Response, status

from .lifecycle import run
from .logging import configure_logging
from .settings import NodeSettings

S = TypeVar("S", bound=NodeSettings)


def service_cli(
    service: str,
    settings_type: type[S],
    serve: Callable[[S], Coroutine[Any, Any, None]],
    migrate: Callable[[S], Coroutine[Any, Any, list[str]]],
    help_text: str,
) -> tuple[typer.Typer, Callable[[], S]]:
    """A Typer app that serves by default and has ``migrate``; and the settings loader
    (which also sets up the JSON logs) for the service's own extra commands."""
    cli = typer.Typer(help=help_text)

    def load() -> S:
        settings = settings_type()
        configure_logging(service=service, node=settings.node, level=settings.log_level)
        return settings

    @cli.callback(invoke_without_command=True)
    def default(ctx: typer.Context) -> None:
        """Run the service (the default)."""
        if ctx.invoked_subcommand is None:
            settings = load()
            raise typer.Exit(run(service, lambda: serve(settings)))

    @cli.command("migrate")
    def migrate_command() -> None:
        """Apply pending schema migrations and exit."""
        applied = asyncio.run(migrate(load()))
        typer.echo(f"applied: {', '.join(applied) or 'nothing (up to date)'}")

    return cli, load


def add_health_routes(
    app: FastAPI, node: str, readiness: Callable[[], Awaitable[dict[str, str]]]
) -> None:
    """``/healthz`` (the process is alive) and ``/readyz`` (every check says ok)."""

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "node": node}

    @app.get("/readyz", tags=["operations"])
    async def readyz(response: Response) -> dict[str, Any]:
        """The database, the migrations and the broker are ready."""
        checks = await readiness()
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"ready": ready, "node": node, "checks": checks}
