"""``python -m yixian.bench``: run the benchmark on the local stack, print the table and
write the JSON."""

from __future__ import annotations

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
) -> None:
    """Measure every figure beside its same-run ceiling or peer."""
    stack = LocalStack.from_env()
    stack.up(report=lambda line: None)
    report = uvloop.run(run_bench(stack, Sizes.smoke() if smoke else Sizes(), typer.echo))
    report.write(out)
    report.print()
    typer.echo(f"written to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
