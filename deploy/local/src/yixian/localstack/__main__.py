"""``python -m yixian.localstack``: drive the local Kafka + PostgreSQL stack."""

from __future__ import annotations

import json
import time

import typer

from .stack import LocalStack, StackError

app = typer.Typer(help="The real local stack: Kafka (KRaft) and PostgreSQL in throwaway folders.")


def _stack() -> LocalStack:
    return LocalStack.from_env()


@app.command()
def up() -> None:
    """Start Kafka and PostgreSQL (each only if not running) and wait until both answer."""
    stack = _stack()
    start = time.monotonic()
    try:
        stack.up(report=typer.echo)
    except StackError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"stack up in {time.monotonic() - start:.1f}s")
    typer.echo(stack.connection_help())


@app.command()
def down() -> None:
    """Stop what `up` started (and nothing else)."""
    _stack().down(report=typer.echo)


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show each server's state; exit 3 unless both are running."""
    state = _stack().status()
    if as_json:
        typer.echo(json.dumps(state, indent=2))
    else:
        for name, info in state.items():
            typer.echo(f"{name}:")
            for key, value in info.items():
                typer.echo(f"  {key:<10} {value}")
    if any(info["state"] != "running" for info in state.values()):
        raise typer.Exit(3)


@app.command()
def fetch() -> None:
    """Fetch the Kafka jars from Maven Central into the cache (done by `up` when needed)."""
    stack = _stack()
    fetched = stack.kafka.fetch()
    typer.echo(f"{'fetched' if fetched else 'already cached'}: {stack.kafka.libs}")


@app.command()
def clean() -> None:
    """Stop the stack and delete its data (the jar cache stays)."""
    _stack().clean(report=typer.echo)


@app.command()
def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave the nodes running afterwards."),
) -> None:
    """Three live nodes walk through the brief's scenarios; print a trace and the notices."""
    from .demo import main as run_demo

    run_demo(keep=keep)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
