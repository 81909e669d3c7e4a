"""What every service's entry points share: the command line and the health endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg
import typer
from fastapi import FastAPI, Response, status
from pydantic import ValidationError

from .host import HostSettings, NodeHost, StartNode
from .lifecycle import run
from .logging import configure_logging, get_logger
from .migrations import Schemas
from .settings import KafkaSettings, NodeSettings, invalid_setting
from .tracing import configure_tracing

S = TypeVar("S", bound=NodeSettings)


def service_cli(
    service: str,
    settings_type: type[S],
    serve: Callable[[S], Coroutine[Any, Any, None]],
    migrate: Callable[[S], Coroutine[Any, Any, list[str]]],
    help_text: str,
    *,
    start: StartNode[S] | None = None,
    host_port: int = 0,
) -> tuple[typer.Typer, Callable[[], S]]:
    """A Typer app that serves by default and has ``migrate`` (and, given how to ``start``
    one node's part, ``host``: every node of a directory in this process, listening on
    ``host_port`` unless ``YIXIAN_HOST_HTTP_PORT`` says otherwise); and the settings loader
    (which also sets up the JSON logs) for the service's own extra commands."""
    cli = typer.Typer(help=help_text)

    def load() -> S:
        settings = settings_type()
        configure_logging(service=service, node=settings.node, level=settings.log_level)
        configure_tracing(service, settings.node)
        kafka = settings.kafka
        if kafka.security_protocol == "PLAINTEXT":
            get_logger(__name__).warning(
                "kafka without a login",
                detail=f"{kafka.variable('security_protocol')} is PLAINTEXT: the node reaches"
                f" {kafka.bootstrap_servers} as the anonymous principal (a super user on the"
                " local stack's PLAINTEXT listener), not as its own; see docs/operating.md",
            )
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

    if start is not None:
        node_start = start

        @cli.command("host")
        def host_command() -> None:
            """Serve every node whose settings file is in YIXIAN_HOST_DIR (ADR 30)."""
            try:
                host = HostSettings()
            except ValidationError as exc:
                setting, why = invalid_setting(exc, (HostSettings,))
                typer.echo(f"{setting}: {why}", err=True)
                raise typer.Exit(2) from None
            if not host.dir.is_dir():
                typer.echo(f"YIXIAN_HOST_DIR: {host.dir} is not a directory", err=True)
                raise typer.Exit(2)
            if host.http_port is None:
                host = host.model_copy(update={"http_port": host_port})
            configure_logging(service=service, node="host", level=host.log_level)
            configure_tracing(service, "host")
            keeper = NodeHost(service, settings_type, migrate, node_start, host)
            raise typer.Exit(run(service, keeper.run))

    return cli, load


def add_health_routes(
    app: FastAPI,
    node: str,
    readiness: Callable[[], Awaitable[dict[str, str]]],
    degradation: Callable[[], Awaitable[list[str]]] | None = None,
) -> None:
    """``/healthz`` (the process is alive) and ``/readyz`` (``readiness_report``)."""

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "node": node}

    @app.get("/readyz", tags=["operations"])
    async def readyz(response: Response) -> dict[str, Any]:
        """The database, the migrations and the broker are ready; what is degraded."""
        degraded = await degradation() if degradation is not None else []
        return readiness_report(response, node, await readiness(), degraded)


def readiness_report(
    response: Response, node: str, checks: dict[str, str], degraded: list[str]
) -> dict[str, Any]:
    """The body of ``/readyz``, and its status: 503 unless every check says ok. What is
    ``degraded`` (e.g. outbox rows parked for an operator) is said, and is no reason to
    take the service out of rotation: that would stop what still works."""
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"ready": ready, "node": node, "checks": checks, "degraded": degraded}


def readiness_checks(
    pool: asyncpg.Pool, kafka: KafkaSettings, schemas: Schemas
) -> Callable[[], Awaitable[dict[str, str]]]:
    """The checks ``/readyz`` runs: the database answers and has every migration of
    ``schemas`` (the node's shared record and the service's own) applied; the broker
    answers."""
    from .kafka import kafka_reachable
    from .migrations import pending_all

    async def readiness() -> dict[str, str]:
        checks = {"database": "ok", "migrations": "ok"}
        try:
            async with pool.acquire() as conn:
                pending = await pending_all(conn, schemas)
            if pending:
                checks["migrations"] = f"pending: {', '.join(pending)}"
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            checks["database"] = checks["migrations"] = f"unavailable: {exc}"
        checks["kafka"] = "ok" if await kafka_reachable(kafka) else "unavailable"
        return checks

    return readiness
