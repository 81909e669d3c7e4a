"""``python -m yixian.sync``: run a node's sync service, or rebuild from the pair topics."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

import typer

from yixian.runtime import create_pool
from yixian.runtime.lifecycle import run
from yixian.runtime.service import service_cli

from .bootstrap import SERVICE, migrate, serve, start_node, sync_config, utc_now
from .config import SyncSettings
from .service_layer.rebuild import SyncStillRunning, rebuild

cli, _settings = service_cli(
    SERVICE, SyncSettings, serve, migrate, "A Yixian node's sync service.",
    start=start_node, host_port=8001,
)  # fmt: skip


@cli.command("rebuild")
def rebuild_command(
    partner: Annotated[str, typer.Option(help="Division code of the partner to rebuild from.")],
    since: Annotated[
        datetime | None,
        typer.Option(help="Apply records from this time on, keeping what is here (default: all)."),
    ] = None,
) -> None:
    """Rebuild the partner-owned data from its pair topic; stop the sync service first."""
    settings = _settings()
    refused: list[str] = []

    async def go() -> None:
        try:
            await rebuild_from_topic()
        except SyncStillRunning as exc:
            refused.append(str(exc))

    async def rebuild_from_topic() -> None:
        await migrate(settings)
        pool = await create_pool(settings.database_url, size=3)
        try:
            with typer.progressbar(length=1, label=f"rebuilding from {partner}") as bar:
                state = {"total": 0, "done": 0}

                def progress(done: int, total: int) -> None:
                    if total != state["total"]:
                        bar.length = max(total, 1)
                        state["total"] = total
                    bar.update(done - state["done"])
                    state["done"] = done

                started = time.monotonic()
                report = await rebuild(
                    pool,
                    settings.kafka,
                    sync_config(settings),
                    partner,
                    utc_now,
                    since=since,
                    progress=progress,
                )
                elapsed = time.monotonic() - started
        finally:
            await pool.close()
        rate = report.records / elapsed if elapsed > 0 else 0.0
        typer.echo(
            f"{report.records} records in {elapsed:.2f} s ({rate:,.0f} records/s):"
            f" {report.outcomes}"
        )

    if run("sync rebuild", go) != 0:
        raise typer.Exit(1)
    if refused:
        typer.echo(f"not rebuilt: {refused[0]}", err=True)
        raise typer.Exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
