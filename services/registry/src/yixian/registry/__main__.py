"""``python -m yixian.registry``: run a node's registry, or set it up."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import typer

from yixian.runtime.service import service_cli

from .bootstrap import SERVICE, NodeAlreadyInitialised, init_node, migrate, serve, start_node
from .config import RegistrySettings

cli, _settings = service_cli(
    SERVICE, RegistrySettings, serve, migrate, "A Yixian node's registry.",
    start=start_node, host_port=8000,
)  # fmt: skip


@cli.command("init")
def init_command(
    root_name: str = typer.Option(..., help="Name of the node's root organization."),
    operator: str = typer.Option("operator", help="Name of the first operator key."),
) -> None:
    """Create the node's root organization and its first operator API key (printed once)."""
    settings = _settings()

    async def init() -> tuple[UUID, str]:
        await migrate(settings)
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await init_node(conn, settings.node, root_name=root_name, operator=operator)
        except NodeAlreadyInitialised as exc:
            raise typer.BadParameter(str(exc)) from exc
        finally:
            await conn.close()

    org_id, key = asyncio.run(init())
    typer.echo(f"root organization: {org_id}")
    typer.echo(f"operator API key (shown once): {key}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
