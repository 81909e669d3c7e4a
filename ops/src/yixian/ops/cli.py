"""``yixian``: the operator's command line for a node.

It reads the same ``YIXIAN_*`` variables as the node's services (who the node is, its
database, its Kafka principal); the cluster-admin steps (``node init``, ``partner link``)
use an admin principal from ``YIXIAN_ADMIN_KAFKA_*``.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from uuid import UUID, uuid4

import asyncpg
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from rich.console import Console
from rich.progress import DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from yixian.record import schema
from yixian.runtime import create_pool
from yixian.runtime.kafka import errors as kafka_errors
from yixian.runtime.settings import KafkaSettings
from yixian.sync.config import SyncSettings

from .kafka import ClusterAdmin, TopicPolicy, principal
from .trace import NotFound, database_hops, read_topic_hops, render, resolve, timeline

if TYPE_CHECKING:
    import httpx

    from . import status as node_status

app = typer.Typer(help="Operate a Yixian node.", no_args_is_help=True)
node_app = typer.Typer(help="The node itself.", no_args_is_help=True)
partner_app = typer.Typer(help="Links to partner nodes.", no_args_is_help=True)
dlq_app = typer.Typer(help="What sync could not accept.", no_args_is_help=True)
import_app = typer.Typer(help="Bulk imports through the registry's API.", no_args_is_help=True)
outbox_app = typer.Typer(help="What the relay could not publish.", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(outbox_app, name="outbox")
app.add_typer(partner_app, name="partner")
app.add_typer(dlq_app, name="dlq")
app.add_typer(import_app, name="import")

# wide enough for a table when the output goes to a file or another program
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class AdminKafkaSettings(KafkaSettings):
    """The cluster admin's connection (``YIXIAN_ADMIN_KAFKA_*``), for init and links."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_ADMIN_KAFKA_", extra="ignore")


def _settings() -> SyncSettings:
    try:
        return SyncSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"YIXIAN_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        err.print(f"[red]configuration:[/red] {problems}")
        raise typer.Exit(2) from None


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except (OSError, asyncpg.PostgresError) as exc:
        err.print(f"[red]database:[/red] {exc}")
        raise typer.Exit(1) from None


async def _connect(settings: SyncSettings) -> asyncpg.Connection:
    conn = await asyncpg.connect(settings.database_url)
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(
            codec, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    return conn


def _admin(settings: SyncSettings) -> ClusterAdmin:
    return ClusterAdmin(AdminKafkaSettings(), settings.kafka)


def _policy(partitions: int, replication: int) -> TopicPolicy:
    return TopicPolicy(partitions=partitions, replication_factor=replication)


Partitions = Annotated[int, typer.Option(min=1, help="Partitions of each new topic.")]
Replication = Annotated[
    int, typer.Option(help="Replication factor of new topics (-1: the cluster's default).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# -- node ---------------------------------------------------------------------------------


@node_app.command("init")
def node_init(
    password: Annotated[
        str | None,
        typer.Option(
            envvar="YIXIAN_NODE_KAFKA_PASSWORD",
            help="The node principal's password (default: a new random one, printed once).",
        ),
    ] = None,
    root_name: Annotated[
        str | None,
        typer.Option(help="Create the root organization with this name and a first operator key."),
    ] = None,
    kafka: Annotated[bool, typer.Option(help="Also set up topics, principal and ACLs.")] = True,
    partitions: Partitions = 3,
    replication_factor: Replication = -1,
) -> None:
    """Migrate the node's database; create its topics, its Kafka principal and its ACLs."""
    from yixian.notify import bootstrap as notify
    from yixian.registry import bootstrap as registry
    from yixian.sync import bootstrap as sync

    settings = _settings()

    async def migrate() -> list[str]:
        applied = []
        for service in (registry, sync, notify):
            applied += await schema.migrate(
                settings.database_url, service.SERVICE, service.MIGRATIONS
            )
        return applied

    applied = _run(migrate())
    out.print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    if root_name is not None:

        async def root() -> tuple[UUID, str]:
            conn = await _connect(settings)
            try:
                return await registry.init_node(conn, settings.node, root_name=root_name)
            finally:
                await conn.close()

        try:
            org_id, key = _run(root())
        except registry.NodeAlreadyInitialised as exc:
            out.print(f"root organization: {exc}")
        else:
            out.print(f"root organization: {org_id}")
            out.print(f"operator API key (shown once): {key}")
    if not kafka:
        return
    secret = password or secrets.token_urlsafe(24)
    created = _admin(settings).init_node(
        settings.node, secret, _policy(partitions, replication_factor)
    )
    out.print(f"topics created: {', '.join(created) or 'none (all there)'}")
    out.print(f"Kafka principal: User:{principal(settings.node, settings.kafka.topics)}")
    if password is None:
        out.print(f"its password (shown once; set YIXIAN_KAFKA_PASSWORD to it): {secret}")


@node_app.command("status")
def node_status_command(as_json: AsJson = False) -> None:
    """Outbox backlog, consumer lag and link health per partner, dead letters."""
    from . import status as node_status  # the sync service's modules: only this command's

    settings = _settings()

    async def gather() -> node_status.NodeStatus:
        pool = await create_pool(settings.database_url, size=2)
        try:
            return await node_status.gather(pool, settings)
        finally:
            await pool.close()

    report = _run(gather())
    if as_json:
        out.print_json(data=report.as_json())
        return
    out.print(
        f"node {settings.node}: outbox backlog {report.backlog}"
        + (f" (oldest {report.oldest_pending_seconds:.0f}s)" if report.backlog else "")
        + f", dead letters {report.dead_letters} open"
        + f", parked {sum(held.rows for held in report.parked)}"
    )
    if report.parked:
        parked = Table("parked to", "reason", "rows", "since")
        for held in report.parked:
            parked.add_row(held.topic, held.reason, str(held.rows), f"{held.since:%F %T}")
        out.print(parked)
    lag = Table("consumer group", "topic", "lag")
    for group, topics in report.lag.items():
        for topic, value in topics.items():
            lag.add_row(group, topic, str(value))
    out.print(lag)
    links = Table("partner", "state", "received up to", "missing", "sent", "backlog", "last heard")
    for link in report.links:
        links.add_row(
            link["partner"],
            link["state"],
            str(link["received_up_to"]),
            str(len(link["missing"])),
            str(link["last_sequence_sent"]),
            str(link["outbox_backlog"]),
            link["last_event_at"] or link["last_heartbeat_at"] or "never",
        )
    out.print(links)


# -- partners -----------------------------------------------------------------------------


@partner_app.command("link")
def partner_link(
    a: Annotated[str, typer.Argument(help="Division code of one node.")],
    b: Annotated[str, typer.Argument(help="Division code of the other.")],
    partitions: Partitions = 3,
    replication_factor: Replication = -1,
) -> None:
    """Create the two pair topics between A and B (kept for ever) and their ACLs."""
    kafka = KafkaSettings()
    try:
        topics = kafka.topics
        names = [topics.pair(a, b), topics.pair(b, a)]
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    admin = ClusterAdmin(AdminKafkaSettings(), kafka)
    created = admin.link(a, b, _policy(partitions, replication_factor))
    out.print(f"linked {a} ⇄ {b}: {', '.join(names)}")
    out.print(f"topics created: {', '.join(created) or 'none (both there)'}")


# -- dead letters -------------------------------------------------------------------------


@partner_app.command("anti-entropy")
def anti_entropy(
    partner: Annotated[str, typer.Argument(help="The partner to compare shared movements with.")],
) -> None:
    """Send the partner a digest of every movement the two share, now: where a copy differs,
    the owner's copy replaces the other (a damaged replica, a gap that cannot be filled)."""
    from yixian.sync.adapters.store import SyncStore
    from yixian.sync.bootstrap import utc_now
    from yixian.sync.service_layer.links import send_digest

    settings = _settings()

    async def send() -> None:
        conn = await _connect(settings)
        try:
            async with conn.transaction():
                store = SyncStore(conn, settings.node, settings.kafka.topics)
                await send_digest(store, partner, settings.policy, utc_now())
        finally:
            await conn.close()

    _run(send())
    out.print(f"digest sent to {partner}: differing movements are repaired by their owners")


@dlq_app.command("list")
def dlq_list(
    every: Annotated[bool, typer.Option("--all", help="Include those already retried.")] = False,
    as_json: AsJson = False,
) -> None:
    """The records sync could not accept, with the reason."""
    settings = _settings()

    async def fetch() -> list[dict[str, Any]]:
        conn = await _connect(settings)
        try:
            rows = await conn.fetch(
                'SELECT id, topic, partition, "offset", reason, errors, received_at, retried_at,'
                " retry_outcome FROM dead_letters WHERE $1 OR retried_at IS NULL"
                " OR retry_outcome = 'dead_letter' ORDER BY id",
                every,
            )
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    rows = _run(fetch())
    if as_json:
        out.print_json(data=[{k: _plain(v) for k, v in r.items()} for r in rows])
        return
    table = Table("id", "received", "where", "reason", "retried")
    for r in rows:
        retried = f"{r['retried_at']:%F %T} {r['retry_outcome']}" if r["retried_at"] else ""
        table.add_row(
            str(r["id"]),
            f"{r['received_at']:%F %T}",
            f"{r['topic']}[{r['partition']}]@{r['offset']}",
            r["reason"],
            retried,
        )
    out.print(table)


@dlq_app.command("retry")
def dlq_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letters to retry.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Retry every open dead letter.")] = False,
) -> None:
    """Apply dead letters again (after a fix on either side); each says how it went."""
    from yixian.sync.bootstrap import build_applier, sync_config

    if not ids and not every:
        err.print("name the dead letters to retry, or pass --all")
        raise typer.Exit(2)
    settings = _settings()

    async def retry() -> list[tuple[int, str]]:
        pool = await create_pool(settings.database_url, size=2)
        try:
            applier = build_applier(pool, sync_config(settings))
            wanted = await pool.fetch(
                "SELECT id FROM dead_letters WHERE (retried_at IS NULL"
                " OR retry_outcome = 'dead_letter') AND ($1 OR id = ANY($2::bigint[]))"
                " ORDER BY id",
                every,
                ids or [],
            )
            results = []
            with Progress(*Progress.get_default_columns(), console=err) as bar:
                task = bar.add_task("retrying", total=len(wanted))
                for row in wanted:
                    results.append((row["id"], await applier.retry_dead_letter(row["id"])))
                    bar.advance(task)
            return results
        finally:
            await pool.close()

    for dead_id, outcome in _run(retry()):
        out.print(f"{dead_id}: {outcome}")


# -- parked outbox rows -------------------------------------------------------------------

Actor = Annotated[
    str, typer.Option(help="Who does it, for the audit log (default: cli:<login name>).")
]


def _actor(actor: str) -> str:
    return actor or f"cli:{getpass.getuser()}"


@outbox_app.command("parked")
def outbox_parked(as_json: AsJson = False) -> None:
    """The rows the relay parked (it cannot publish them as they are), with the reason."""
    from yixian.record.parked import PARK_REASONS, parked_rows

    settings = _settings()

    async def fetch() -> list[dict[str, Any]]:
        conn = await _connect(settings)
        try:
            return [dict(r) for r in await parked_rows(conn)]
        finally:
            await conn.close()

    rows = _run(fetch())
    if as_json:
        out.print_json(data=[{k: _plain(v) for k, v in r.items()} for r in rows])
        return
    table = Table("id", "parked", "to", "#", "event", "bytes", "reason")
    for r in rows:
        table.add_row(
            str(r["id"]),
            f"{r['parked_at']:%F %T}",
            r["topic"],
            str(r["pairseq"] or ""),
            r["event_type"],
            str(r["bytes"]),
            r["park_reason"],
        )
    out.print(table)
    for reason in sorted({r["park_reason"] for r in rows}):
        out.print(f"{reason}: {PARK_REASONS.get(reason, reason)}")


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Parked rows to send again.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every parked row.")] = False,
    actor: Actor = "",
) -> None:
    """Send parked rows again, with the pair numbers they had (after a fix: an ACL
    granted, a topic created, a limit raised); a row refused again is parked again."""
    from yixian.registry.adapters.parked import retry_parked

    if not ids and not every:
        err.print("name the parked rows to retry, or pass --all")
        raise typer.Exit(2)
    settings = _settings()

    async def retry() -> list[int]:
        conn = await _connect(settings)
        try:
            return await retry_parked(conn, None if every else ids, actor=_actor(actor))
        finally:
            await conn.close()

    done = _run(retry())
    out.print(f"back in the relay's queue: {', '.join(map(str, done)) or 'none'}")


@outbox_app.command("discard")
def outbox_discard(
    ids: Annotated[list[int], typer.Argument(help="Parked rows to give up on.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")],
    actor: Actor = "",
) -> None:
    """Never send these parked rows; a pair row's number stays a gap that the partner's
    digest exchange settles (the group's next version, or anti-entropy, carries the data)."""
    from yixian.registry.adapters.parked import discard_parked

    settings = _settings()

    async def discard() -> list[int]:
        conn = await _connect(settings)
        try:
            return await discard_parked(conn, ids, actor=_actor(actor), note=reason)
        finally:
            await conn.close()

    done = _run(discard())
    out.print(f"discarded: {', '.join(map(str, done)) or 'none'}")


# -- replay -------------------------------------------------------------------------------


@app.command("replay")
def replay(
    partner: Annotated[str, typer.Option(help="The partner whose events to ask for again.")],
    first: Annotated[int, typer.Option("--from", min=1, help="First pair sequence number.")],
    last: Annotated[int | None, typer.Option("--to", help="Last one (default: the latest).")] = (
        None
    ),
) -> None:
    """Ask a partner to publish a range of its pair events to this node again."""
    from yixian.contracts import ReplayRequested, make_event
    from yixian.sync.adapters.store import SyncStore
    from yixian.sync.bootstrap import utc_now

    settings = _settings()

    async def ask() -> UUID:
        conn = await _connect(settings)
        try:
            async with conn.transaction():
                store = SyncStore(conn, settings.node, settings.kafka.topics)
                request = ReplayRequested(
                    request_id=uuid4(),
                    from_sequence=first,
                    to_sequence=last,
                    epoch=await store.link_epoch(partner) or None,  # the numbers this link follows
                    reason="asked by the operator",
                )
                await store.publish_to(
                    partner, make_event(request, node=settings.node, time=utc_now())
                )
                return request.request_id
        finally:
            await conn.close()

    request_id = _run(ask())
    out.print(f"replay of {partner}'s events {first}..{last or 'latest'} asked ({request_id})")


# -- import -------------------------------------------------------------------------------


@import_app.command("members")
def import_members(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON lines.")],
    registry_url: Annotated[str, typer.Option(envvar="YIXIAN_REGISTRY_URL")] = (
        "http://127.0.0.1:8080"
    ),
    api_key: Annotated[str, typer.Option(envvar="YIXIAN_API_KEY", help="An operator key.")] = "",
    fmt: Annotated[Literal["csv", "jsonl"] | None, typer.Option("--format")] = None,
) -> None:
    """Stream members into the registry (CSV with a header line, or JSON lines)."""
    import httpx  # only this command's: every command starts faster without it

    if not api_key:
        err.print("an operator API key is needed: --api-key or YIXIAN_API_KEY")
        raise typer.Exit(2)
    kind = fmt or ("jsonl" if file.suffix in {".jsonl", ".ndjson"} else "csv")
    media = "text/csv" if kind == "csv" else "application/x-ndjson"
    size = file.stat().st_size

    async def send() -> httpx.Response:
        with Progress(
            *Progress.get_default_columns()[:-1], DownloadColumn(), TimeRemainingColumn(),
            console=err,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"importing {file.name}", total=size)

            async def chunks() -> AsyncIterator[bytes]:
                with file.open("rb") as source:
                    while chunk := source.read(1 << 20):
                        bar.advance(task, len(chunk))
                        yield chunk

            async with httpx.AsyncClient(
                base_url=registry_url, timeout=httpx.Timeout(60, read=3600)
            ) as client:
                return await client.post(
                    "/v1/members/import",
                    content=chunks(),
                    headers={
                        "Authorization": f"Bearer {api_key}",
                        "Content-Type": media,
                        "Idempotency-Key": f"import-{file.name}-{size}-{int(file.stat().st_mtime)}",
                    },
                )

    try:
        response = asyncio.run(send())
    except httpx.HTTPError as exc:
        err.print(f"[red]registry:[/red] {exc}")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        err.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    report = response.json()
    out.print(
        f"accepted {report['accepted']}, duplicates {report['duplicates']},"
        f" rejected {report['rejected']}"
    )
    for problem in report["errors"]:
        out.print(f"  line {problem['line']}: {problem['field']}: {problem['reason']}")


# -- trace --------------------------------------------------------------------------------


@app.command("trace")
def trace(
    identifier: Annotated[UUID, typer.Argument(help="A movement id, a member id or an event id.")],
    as_json: AsJson = False,
    topics: Annotated[
        bool, typer.Option(help="Also read the pair topics addressed to this node.")
    ] = True,
) -> None:
    """Everything that happened to a movement, on this node and on the topics it reads."""
    settings = _settings()

    async def collect() -> tuple[list[Any], int]:
        conn = await _connect(settings)
        try:
            movements, _event = await resolve(conn, identifier)
            hops = await database_hops(conn, settings.node, movements)
            missing = 0
            if topics:
                try:
                    found = await read_topic_hops(settings.kafka, settings.node, movements, conn)
                except (kafka_errors.KafkaError, ValueError) as exc:
                    err.print(
                        f"[red]kafka:[/red] {exc!r} (--no-topics traces from the database alone)"
                    )
                    raise typer.Exit(1) from None
                hops += found.hops
                missing = found.missing
        finally:
            await conn.close()
        return timeline(hops), missing

    try:
        hops, missing = _run(collect())
    except NotFound as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    if missing:
        err.print(
            f"[yellow]{missing} record(s) this node received are no longer on the pair"
            " topics (a retention or a deleted topic): their partner hops are not shown[/yellow]"
        )
    if as_json:
        out.print_json(data=[hop.as_json() for hop in hops])
        return
    for line in render(hops):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def main() -> None:
    app()


if __name__ == "__main__":
    main()
