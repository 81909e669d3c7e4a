"""``python -m yixian.localstack.sim`` (``make sim``): the network simulation on the local
stack, its figures printed and written to ``.stack/sim/results.json``; exit status 1 when a
check failed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import asyncpg
import typer

from yixian.contracts import TopicNames
from yixian.localstack.hosts import HOSTED_SERVICES
from yixian.localstack.stack import MAX_CONNECTIONS, LocalStack, StackError
from yixian.runtime.host import HostSettings

from .plan import MAX_NODES, FaultKind
from .run import Options, Result, simulate, write_result

NAMESPACE_PREFIX = "sim-"
"""The topic namespaces of simulations: a run deletes its own topics, and any a run that
was stopped left behind."""

app = typer.Typer(add_completion=False)


def _faults(value: str) -> frozenset[FaultKind]:
    if value == "all":
        return frozenset(FaultKind)
    if value == "none":
        return frozenset()
    kinds = [part.strip() for part in value.split(",") if part.strip()]
    known = {kind.value for kind in FaultKind}
    unknown = [kind for kind in kinds if kind not in known]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: not a fault; all, none, or of {', '.join(sorted(known))}"
        )
    return frozenset(FaultKind(kind) for kind in kinds)


@app.command()
def main(
    nodes: Annotated[int, typer.Option(min=2, max=MAX_NODES, help="Jurisdictions.")] = 50,
    hosts: Annotated[int, typer.Option(min=1, max=MAX_NODES, help="Node hosts.")] = 5,
    movements: Annotated[int, typer.Option(min=1, max=100_000, help="Members leaving.")] = 3000,
    seed: Annotated[int, typer.Option(help="The plan's seed: the same seed, the same day.")] = 1,
    faults: Annotated[
        str,
        typer.Option(
            help="all, none, or some of offline,kill,broker,database (comma-separated).",
        ),
    ] = "all",
    day_seconds: Annotated[
        float, typer.Option(min=10, max=3600, help="How long the simulated day lasts.")
    ] = 300.0,
    keep: Annotated[
        bool, typer.Option(help="Keep the nodes' databases and topics afterwards.")
    ] = False,
) -> None:
    """A day of a network of nodes on node hosts, with faults; then every replica pair is
    compared and every notice counted, and the figures are printed."""
    options = Options(nodes, hosts, movements, seed, _faults(faults), day_seconds)
    stack = LocalStack.from_env()
    try:
        stack.up(report=lambda _line: None)
    except StackError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    short = asyncio.run(_connections_short(stack, options.nodes))
    if short:
        typer.secho(short, fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    result = asyncio.run(_run(stack, options, keep))
    path = stack.config.state_dir / "sim" / "results.json"
    write_result(result, path)
    typer.echo(f"result: {path}")
    if not result.ok:
        raise typer.Exit(1)


async def _connections_short(stack: LocalStack, nodes: int) -> str | None:
    """Why PostgreSQL cannot take the simulation's connections, if it cannot: every node
    may hold a full pool per hosted service, and the checks read every database at once."""
    per_node = len(HOSTED_SERVICES) * HostSettings.model_fields["pool_size"].get_default()
    needed = nodes * per_node + nodes + 10
    conn = await asyncpg.connect(stack.config.database_dsn("postgres"))
    try:
        allowed = int(await conn.fetchval("SHOW max_connections"))
        used = int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity"))
    finally:
        await conn.close()
    if allowed - used >= needed:
        return None
    return (
        f"PostgreSQL allows {allowed} connections and {used} are in use; {nodes} hosted nodes"
        f" may need {needed}. The stack starts it with max_connections={MAX_CONNECTIONS}:"
        " restart a server started before that (make down && make up), or run fewer --nodes."
    )


async def _run(stack: LocalStack, options: Options, keep: bool) -> Result:
    root = stack.config.state_dir / "sim"
    await asyncio.to_thread(stack.kafka.delete_topics, [NAMESPACE_PREFIX])
    topics = TopicNames(f"{NAMESPACE_PREFIX}{int(time.time())}")
    made: list[str] = []

    async def database(code: str) -> str:
        made.append(f"sim_{code}")
        return await stack.fresh_database(f"sim_{code}")

    try:
        return await simulate(stack, options, Path(root), database, topics)
    finally:
        if not keep:
            await asyncio.to_thread(stack.kafka.delete_topics, [f"{topics.namespace}."])
            await _drop(stack, made)


async def _drop(stack: LocalStack, names: list[str]) -> None:
    conn = await asyncpg.connect(stack.config.database_dsn("postgres"))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    app()
