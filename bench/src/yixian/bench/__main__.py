"""``python -m yixian.bench``: run the benchmark on the local stack, print the table and
write the JSON."""

from __future__ import annotations

import signal
import tempfile
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from yixian.localstack import LocalStack

from .figures import Sizes, run_bench
from .replay import replay_figures
from .report import Report

app = typer.Typer(help="Yixian's benchmark on the real local stack.")


class Phase(StrEnum):
    """A figure that can be measured on its own."""

    replay = "replay"
    end_to_end = "end-to-end"
    node_host = "node-host"


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
    only: Annotated[
        Phase | None,
        typer.Option(
            help="Measure this figure alone: replay on a database and topic of its own;"
            " end-to-end is the closed loop and its CPU per movement, on members imported for"
            " it (no other figure, no open-loop latency); node-host the idle nodes on a host"
            " and movements between two of them.",
        ),
    ] = None,
    replay_events: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Events on the pair topic for --only replay (default 200,000; 2,000 with"
            " --smoke).",
        ),
    ] = None,
    seconds: Annotated[
        int | None,
        typer.Option(min=1, help="The closed loop's length (default 60 s; 4 s with --smoke)."),
    ] = None,
    host_nodes: Annotated[
        int | None,
        typer.Option(min=2, help="Idle nodes on the node host (default 20; 2 with --smoke)."),
    ] = None,
) -> None:
    """Measure every figure beside its same-run ceiling or peer."""
    sizes = Sizes.smoke() if smoke else Sizes()
    if trace_events is not None:
        sizes = replace(sizes, trace_events=trace_events)
    if replay_events is not None:
        sizes = replace(sizes, replay=replay_events)
    if seconds is not None:
        sizes = replace(sizes, sustained_seconds=seconds)
    if host_nodes is not None:
        sizes = replace(sizes, host_nodes=host_nodes)
    if only is Phase.node_host:
        sizes = replace(sizes, only_node_host=True)
    if only is Phase.end_to_end:
        # enough members for the closed loop at 500 movements a second
        imported = min(sizes.imported, 500 * sizes.sustained_seconds)
        sizes = replace(sizes, only_end_to_end=True, imported=imported)
    stack = LocalStack.from_env()
    stack.up(report=lambda line: None)
    if only is Phase.replay:
        report = Report(smoke=sizes.tiny)
        logs = Path(tempfile.mkdtemp(prefix="yixian-bench-"))
        uvloop.run(replay_figures(stack, report, events=sizes.replay, logs=logs, say=typer.echo))
    else:
        report = uvloop.run(run_bench(stack, sizes, typer.echo))
    report.write(out)
    report.print()
    typer.echo(f"written to {out}")


def main() -> None:
    # a stop (SIGTERM) ends the run as Ctrl-C does: the phases' nodes and processes are
    # stopped on the way out rather than left running
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    app()


if __name__ == "__main__":
    main()
