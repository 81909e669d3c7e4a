"""``python -m yixian.bench``: run the benchmark on the local stack, print the table and
write the JSON."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from yixian.localstack import LocalStack

from .figures import Sizes, run_bench

app = typer.Typer(help="Yixian's benchmark on the real local stack.")


@app.command()
def run(
    smoke: Annotated[bool, typer.Option(help="Tiny sizes: checks the benchmark, not speed.")] = (
        False
    ),
    out: Annotated[Path, typer.Option(help="Where the JSON goes.")] = Path(
        ".stack/bench/results.json"
    ),
    trace_events: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Records of other movements on the host's incoming topic before the trace"
            " figure (default 2,000,000; 5,000 with --smoke).",
        ),
    ] = None,
    node_host_only: Annotated[
        bool,
        typer.Option(
            help="Only the node host's figures: idle nodes on a host, movements between two."
        ),
    ] = False,
    host_nodes: Annotated[
        int | None,
        typer.Option(min=2, help="Idle nodes on the node host (default 20; 2 with --smoke)."),
    ] = None,
) -> None:
    """Measure every figure beside its same-run ceiling or peer."""
    sizes = Sizes.smoke() if smoke else Sizes()
    if trace_events is not None:
        sizes = replace(sizes, trace_events=trace_events)
    if host_nodes is not None:
        sizes = replace(sizes, host_nodes=host_nodes)
    stack = LocalStack.from_env()
    stack.up(report=lambda line: None)
    report = uvloop.run(run_bench(stack, sizes, typer.echo, node_host_only=node_host_only))
    report.write(out)
    report.print()
    typer.echo(f"written to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
