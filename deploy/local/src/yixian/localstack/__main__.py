"""``python -m yixian.localstack``: drive the local Kafka + PostgreSQL stack."""

from __future__ import annotations

import json
import signal
import threading
import time

import typer

from .sinks import free_port
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
def sinks(
    smtp_port: int = typer.Option(2525, min=0, max=65535, help="The mail server's port (0: any)."),
    http_port: int = typer.Option(
        8025, min=0, max=65535, help="The SMS gateway's and webhooks' port (0: any)."
    ),
) -> None:
    """Run a local mail server and SMS/webhook gateway on loopback for notify (as the demo
    does), printing each notice that arrives as a JSON line, until stopped."""
    from .sinks import HttpSink, Mail, MailSink, Request

    def mail_line(mail: Mail) -> None:
        _line({"channel": "email", "to": mail.to, "subject": mail.subject, "body": mail.body})

    def http_line(request: Request) -> None:
        try:
            body: object = request.json()
        except ValueError:
            body = request.body.decode(errors="replace")
        _line({"channel": "http", "path": request.path, "body": body})

    try:
        mail = MailSink(port=smtp_port or free_port(), on_arrival=mail_line).start()
        http = HttpSink(port=http_port or free_port(), on_arrival=http_line).start()
    except OSError as exc:
        typer.secho(f"--smtp-port/--http-port: {exc.strerror}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(
        "notify's settings for these sinks:\n"
        f"  YIXIAN_SMTP_HOST=127.0.0.1 YIXIAN_SMTP_PORT={mail.port}\n"
        f"  YIXIAN_SMS_GATEWAY={http.url}/sms",
        err=True,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    mail.stop()
    http.stop()


def _line(record: dict[str, object]) -> None:
    print(json.dumps(record, ensure_ascii=False, default=list), flush=True)


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
