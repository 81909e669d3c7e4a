"""``yixian``: the operator's command line for a node.

It reads the same ``YIXIAN_*`` variables as the node's services (who the node is, its
database, its Kafka principal); the cluster-admin steps (``node init``, ``partner link``)
use an admin principal from ``YIXIAN_ADMIN_KAFKA_*``. A setting that does not work stops a
command with one sentence naming it, and a non-zero exit (``trouble.py``).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from uuid import UUID, uuid4

import asyncpg
import httpx
import typer
from confluent_kafka import KafkaException
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.progress import DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from yixian.record import schema
from yixian.runtime import DeadlineSettings
from yixian.runtime.kafka import errors as kafka_errors
from yixian.runtime.settings import (
    KafkaSettings,
    node_file_in_use,
    node_file_values,
    use_node_file,
)
from yixian.sync.config import SyncSettings

from . import capacity
from . import status as node_status
from .kafka import ClusterAdmin, TopicPolicy, admin_trouble, principal
from .trace import NotFound, database_hops, read_topic_hops, render, resolve, timeline
from .trouble import (
    DatabaseUrl,
    Trouble,
    connect,
    database_trouble,
    ensure_database,
    kafka_login,
    pool,
    quiet_libraries,
    settings_trouble,
)

# Click's own help layout: it wraps and never cuts a variable's or an option's name short,
# as Rich's tables do in a narrow terminal. No locals in a traceback: they hold secrets.
_TYPER: dict[str, Any] = {
    "no_args_is_help": True,
    "rich_markup_mode": None,
    "pretty_exceptions_show_locals": False,
}
app = typer.Typer(help="Operate a Yixian node.", **_TYPER)
node_app = typer.Typer(help="The node itself.", **_TYPER)
partner_app = typer.Typer(help="Links to partner nodes.", **_TYPER)
dlq_app = typer.Typer(help="What sync could not accept.", **_TYPER)
import_app = typer.Typer(help="Bulk imports through the registry's API.", **_TYPER)
outbox_app = typer.Typer(help="What the relay could not publish.", **_TYPER)
key_app = typer.Typer(help="The node's API keys.", **_TYPER)
host_app = typer.Typer(help="The nodes a node host serves (ADR 30).", **_TYPER)
app.add_typer(node_app, name="node")
app.add_typer(key_app, name="key")
app.add_typer(outbox_app, name="outbox")
app.add_typer(partner_app, name="partner")
app.add_typer(dlq_app, name="dlq")
app.add_typer(import_app, name="import")
app.add_typer(host_app, name="host")

# wide enough for a table when the output goes to a file or another program
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True, highlight=False)
T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)


class AdminKafkaSettings(KafkaSettings):
    """The cluster admin's connection (``YIXIAN_ADMIN_KAFKA_*``), for init and links."""

    model_config = SettingsConfigDict(env_prefix="YIXIAN_ADMIN_KAFKA_", extra="ignore")
    node_scoped = False
    """The operator's own login: from the environment, also when the node's settings come
    from a node file (``--node-file``; a node's file never holds the admin's)."""


_SETTINGS_KINDS: tuple[type[BaseSettings], ...] = (
    SyncSettings,
    KafkaSettings,
    AdminKafkaSettings,
    DeadlineSettings,
)


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print the Kafka clients' own log lines.")
    ] = False,
    node_file: Annotated[
        Path | None,
        typer.Option(
            envvar="YIXIAN_NODE_FILE",
            help="Read the node's settings from this file (a node host's <code>.env) instead"
            " of the environment; the cluster admin's (YIXIAN_ADMIN_KAFKA_*) still come from"
            " the environment.",
        ),
    ] = None,
) -> None:
    quiet_libraries(verbose)
    if node_file is not None:
        if not node_file.is_file():
            where = escape(str(node_file))
            err.print(f"[red]configuration:[/red] --node-file: {where} is not a file")
            raise typer.Exit(2)
        use_node_file(node_file)


def _fail(trouble: Trouble) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(str(trouble))}")
    raise typer.Exit(1)


def _load(kind: type[S]) -> S:
    """Settings of ``kind`` from the environment; the first invalid one stops the command."""
    try:
        return kind()
    except ValidationError as exc:
        trouble = settings_trouble(exc, (*_SETTINGS_KINDS, kind))
    err.print(f"[red]configuration:[/red] {escape(str(trouble))}")
    raise typer.Exit(2)


def _settings() -> SyncSettings:
    return _load(SyncSettings)


def _run(work: Coroutine[Any, Any, T], settings: SyncSettings | None = None) -> T:
    """Run ``work``; what goes wrong with a setting ends the command with one sentence."""
    try:
        return asyncio.run(work)
    except Trouble as trouble:
        _fail(trouble)
    except kafka_errors.KafkaError as exc:
        _fail(_kafka_trouble(exc, settings.kafka if settings else KafkaSettings()))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        url = settings.database_url if settings else ""
        _fail(database_trouble(exc, url))


def _kafka_trouble(exc: kafka_errors.KafkaError, kafka: KafkaSettings) -> Trouble:
    """A Kafka refusal after a good login: the principal lacks a grant."""
    who = kafka.username or "the anonymous principal"
    if isinstance(
        exc,
        kafka_errors.TopicAuthorizationFailedError
        | kafka_errors.GroupAuthorizationFailedError
        | kafka_errors.ClusterAuthorizationFailedError,
    ):
        return Trouble(
            kafka.variable("username"),
            f"principal {who} lacks a grant ({type(exc).__name__}): yixian node init and"
            " yixian partner link grant a node's",
        )
    return Trouble(kafka.variable("bootstrap_servers"), f"{type(exc).__name__}: {exc}")


def _admin_step(step: Callable[[], T], admin: KafkaSettings) -> T:
    """A cluster administrator's step (librdkafka); the cluster's refusal as one sentence."""
    try:
        return step()
    except KafkaException as exc:
        _fail(admin_trouble(exc, admin))


def _warn_anonymous(kafka: KafkaSettings) -> None:
    if kafka.security_protocol == "PLAINTEXT":
        err.print(
            f"warning: {kafka.variable('security_protocol')} is PLAINTEXT: the node reaches"
            f" Kafka at {kafka.bootstrap_servers} without logging in as its principal (the"
            " local stack's PLAINTEXT listener makes it a super user)"
        )


def _policy(partitions: int, replication: int) -> TopicPolicy:
    return TopicPolicy(partitions=partitions, replication_factor=replication)


Partitions = Annotated[int, typer.Option(min=1, help="Partitions of each new topic.")]
Replication = Annotated[
    int, typer.Option(help="Replication factor of new topics (-1: the cluster's default).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Actor = Annotated[
    str, typer.Option(help="Who does it, for the audit log (default: cli:<login name>).")
]


def _actor(actor: str) -> str:
    return actor or f"cli:{getpass.getuser()}"


# -- node ---------------------------------------------------------------------------------


@node_app.command("init")
def node_init(
    password: Annotated[
        str | None,
        typer.Option(
            envvar="YIXIAN_NODE_KAFKA_PASSWORD",
            help="The node principal's password (default: YIXIAN_KAFKA_PASSWORD when the node"
            " logs in with SASL, else a new random one, printed once).",
        ),
    ] = None,
    root_name: Annotated[
        str | None,
        typer.Option(help="Create the root organization with this name and a first operator key."),
    ] = None,
    kafka: Annotated[bool, typer.Option(help="Also set up topics, principal and ACLs.")] = True,
    create_database: Annotated[
        bool,
        typer.Option(help="Create the database YIXIAN_DATABASE_URL names if the server lacks it."),
    ] = True,
    partitions: Partitions = 3,
    replication_factor: Replication = -1,
    as_json: AsJson = False,
) -> None:
    """Create the node's database if missing and migrate it; create the root organization
    and a first operator key; create the node's topics, its Kafka principal and its ACLs.
    Every step is idempotent: run it again after a fix."""
    from yixian.notify import bootstrap as notify
    from yixian.registry import bootstrap as registry
    from yixian.registry.entrypoints import console
    from yixian.sync import bootstrap as sync

    settings = _settings()
    if "YIXIAN_DATABASE_URL" not in os.environ and node_file_in_use() is None:
        err.print(
            "warning: YIXIAN_DATABASE_URL is not set: the default is the local stack's shared"
            f" database ({DatabaseUrl(settings.database_url).name}); give each node its own"
        )
    report: dict[str, Any] = {"node": settings.node}
    say: Callable[[str], None] = (lambda _line: None) if as_json else out.print
    admin = _load(AdminKafkaSettings) if kafka else None
    who = principal(settings.node, settings.kafka.topics)
    node_kafka = settings.kafka
    if kafka and node_kafka.username is not None and node_kafka.username != who:
        namespace = node_kafka.topic_namespace
        _fail(
            Trouble(
                node_kafka.variable("username"),
                f"is {node_kafka.username}, but node {settings.node}"
                + (f" in topic namespace {namespace}" if namespace else "")
                + f" is principal {who}",
            )
        )

    async def database() -> list[str]:
        created = await ensure_database(settings.database_url) if create_database else False
        where = DatabaseUrl(settings.database_url)
        report["database"] = {"name": where.name, "server": where.server, "created": created}
        say(f"database {where.name} on {where.server}: {'created' if created else 'there'}")
        applied = []
        for service in (registry, sync, notify):
            applied += await schema.migrate(
                settings.database_url, service.SERVICE, service.MIGRATIONS
            )
        return applied

    applied = _run(database(), settings)
    report["migrations_applied"] = applied
    say(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
    if root_name is not None:

        async def root() -> tuple[UUID, str, str | None]:
            conn = await connect(settings.database_url)
            try:
                org_id, key = await registry.init_node(conn, settings.node, root_name=root_name)
                return org_id, root_name, key
            except registry.NodeAlreadyInitialised:
                found = await console.root(conn)
                assert found is not None
                return found.org_id, found.name, None
            finally:
                await conn.close()

        org_id, name, key = _run(root(), settings)
        report["root_organization"] = {"org_id": str(org_id), "name": name, "created": bool(key)}
        report["operator_api_key"] = key
        say(f"root organization {name}: {org_id}")
        if key:
            say(f"operator API key (shown once): {key}")
        else:
            say("  (it was there already: yixian key issue makes another operator key)")
    if kafka and admin is not None:
        report["kafka"] = _init_kafka(
            settings, admin, password, _policy(partitions, replication_factor), say
        )
    if as_json:
        out.print_json(data=report)


def _init_kafka(
    settings: SyncSettings,
    admin: KafkaSettings,
    password: str | None,
    policy: TopicPolicy,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The node's topics, principal and grants; then the node's own login, if it has one."""
    node_kafka = settings.kafka
    given = password or (
        node_kafka.password.get_secret_value()
        if node_kafka.password is not None and node_kafka.security_protocol != "PLAINTEXT"
        else None
    )
    secret = given or secrets.token_urlsafe(24)
    _run(kafka_login(admin))
    cluster = ClusterAdmin(admin, node_kafka)
    created = _admin_step(lambda: cluster.init_node(settings.node, secret, policy), admin)
    who = principal(settings.node, node_kafka.topics)
    say(f"topics created: {', '.join(created) or 'none (all there)'}")
    say(f"Kafka principal: User:{who}")
    report: dict[str, Any] = {"principal": who, "topics_created": created, "password": None}
    if given is None:
        report["password"] = secret
        say(f"its password (shown once; set YIXIAN_KAFKA_PASSWORD to it): {secret}")
    if node_kafka.security_protocol == "PLAINTEXT":
        _warn_anonymous(node_kafka)
    elif node_kafka.password is not None and node_kafka.password.get_secret_value() == secret:
        _run(_logs_in(node_kafka))
        say(f"it logs in at {node_kafka.bootstrap_servers}")
    return report


async def _logs_in(kafka: KafkaSettings, within: float = 10.0) -> None:
    """Wait until the node's principal can log in (a new SCRAM credential reaches the
    broker's listeners a moment after the controller takes it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await kafka_login(kafka)
            return
        except Trouble:
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.2)


@node_app.command("show")
def node_show(as_json: AsJson = False) -> None:
    """Who the node is and where it keeps its things: database, root organization, API keys,
    Kafka principal and topics. Reads the database only."""
    from yixian.registry.entrypoints.console import active_keys, root

    settings = _settings()
    kafka = settings.kafka
    topics = kafka.topics
    where = DatabaseUrl(settings.database_url)

    async def gather() -> dict[str, Any]:
        conn = await connect(settings.database_url)
        try:
            found = await root(conn)
            keys = await active_keys(conn)
        finally:
            await conn.close()
        expected = principal(settings.node, topics)
        return {
            "node": settings.node,
            "partners": sorted(settings.partner_codes),
            "database": {"name": where.name, "server": where.server, "user": where.user},
            "root_organization": (
                {"org_id": str(found.org_id), "name": found.name} if found else None
            ),
            "active_api_keys": keys,
            "kafka": {
                "bootstrap_servers": kafka.bootstrap_servers,
                "security_protocol": kafka.security_protocol,
                "topic_namespace": kafka.topic_namespace,
                "principal": expected,
                "username": kafka.username,
                "local_topic": topics.local(settings.node),
                "pair_topics": {
                    partner: {
                        "out": topics.pair(settings.node, partner),
                        "in": topics.pair(partner, settings.node),
                    }
                    for partner in sorted(settings.partner_codes)
                },
            },
        }

    shown = _run(gather(), settings)
    if as_json:
        out.print_json(data=shown)
        return
    root_org = shown["root_organization"]
    k = shown["kafka"]
    lines = [
        f"node          {settings.node}",
        f"partners      {', '.join(shown['partners']) or 'none (YIXIAN_PARTNERS)'}",
        f"database      {where.name} on {where.server} as {where.user}",
        "root org      "
        + (f"{root_org['org_id']} {root_org['name']}" if root_org else "none yet"
           " (yixian node init --root-name ...)"),
        f"API keys      {shown['active_api_keys']} active (yixian key list)",
        f"Kafka         {k['bootstrap_servers']} {k['security_protocol']}"
        f", topic namespace {k['topic_namespace'] or '(none)'}",
        f"principal     User:{k['principal']}"
        + ("" if k["username"] in (None, k["principal"]) else
           f" (but YIXIAN_KAFKA_USERNAME is {k['username']})"),
        f"local topic   {k['local_topic']}",
    ]  # fmt: skip
    for partner, pair in k["pair_topics"].items():
        lines.append(f"link {partner}   out {pair['out']}, in {pair['in']}")
    for line in lines:
        out.print(line, highlight=False, markup=False)


@node_app.command("root")
def node_root(as_json: AsJson = False) -> None:
    """The root organization's id (alone, for scripts; --json: with its name)."""
    from yixian.registry.entrypoints.console import root

    settings = _settings()

    async def find() -> Any:
        conn = await connect(settings.database_url)
        try:
            return await root(conn)
        finally:
            await conn.close()

    found = _run(find(), settings)
    if found is None:
        _fail(
            Trouble(
                "YIXIAN_DATABASE_URL",
                f"the node's database {DatabaseUrl(settings.database_url).name} has no root"
                " organization yet: yixian node init --root-name <name> creates it",
            )
        )
    if as_json:
        out.print_json(
            data={
                "org_id": str(found.org_id),
                "name": found.name,
                "jurisdiction": found.jurisdiction,
            }
        )
    else:
        out.print(str(found.org_id), highlight=False)


@node_app.command("status")
def node_status_command(as_json: AsJson = False) -> None:
    """Outbox backlog, consumer lag and link health per partner, dead letters. Fails (after
    printing what the database says) when Kafka cannot be asked."""
    settings = _settings()
    _warn_anonymous(settings.kafka)

    async def gather() -> node_status.NodeStatus:
        connections = await pool(settings.database_url)
        try:
            return await node_status.gather(connections, settings)
        finally:
            await connections.close()

    report = _run(gather(), settings)
    if as_json:
        out.print_json(data=report.as_json())
    else:
        _print_status(settings, report)
    if report.kafka_error is not None:
        err.print(f"[red]error:[/red] {escape(report.kafka_error)}")
        raise typer.Exit(1)


def _print_status(settings: SyncSettings, report: node_status.NodeStatus) -> None:
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
    if report.kafka_error is None:
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


# -- API keys -----------------------------------------------------------------------------


async def _with_console(actor: str, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from yixian.registry.bootstrap import node_config
    from yixian.registry.config import RegistrySettings
    from yixian.registry.domain import DomainError
    from yixian.registry.entrypoints.console import Console, NoRoot
    from yixian.registry.service_layer.unit_of_work import TransactionRunner

    settings = _load(RegistrySettings)
    connections = await pool(settings.database_url)
    try:
        console = Console(
            TransactionRunner(connections, node_config(settings)),
            _actor(actor),
            lambda: datetime.now(UTC),
        )
        return await work(console)
    except NoRoot:
        raise Trouble(
            "YIXIAN_DATABASE_URL",
            f"the node's database {DatabaseUrl(settings.database_url).name} has no root"
            " organization yet: yixian node init --root-name <name> creates it",
        ) from None
    except DomainError as refusal:  # audited by the runner
        raise Trouble(_KEY_INPUTS.get(refusal.field or "", "key"), refusal.message) from None
    finally:
        await connections.close()


_KEY_INPUTS = {"name": "--name", "org_id": "--org", "key_id": "KEY_ID", "role": "--role"}
"""The command-line input each field of the registry's refusals stands for."""
Role = Literal["operator", "secretary", "auditor"]


@key_app.command("issue")
def key_issue(
    name: Annotated[str, typer.Option(help="The key's name, unique on this node.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")] = "operator",
    org: Annotated[
        UUID | None,
        typer.Option("--org", help="The organization it is bound to (default: the root)."),
    ] = None,
    actor: Actor = "",
    as_json: AsJson = False,
) -> None:
    """Issue an API key (shown once), as the registry's POST /v1/api-keys does; audited.
    For a lost key: issue another, then revoke the lost one."""
    from yixian.runtime.apikeys import Role as KeyRole

    async def issue(console: Any) -> Any:
        return await console.issue_key(name=name, role=KeyRole(role), org_id=org)

    result = _run(_with_console(actor, issue))
    body = result.body
    if as_json:
        out.print_json(data={k: v for k, v in body.items() if k != "target_id"})
        return
    out.print(f"API key {body['name']} ({body['role']}, organization {body['org_id']})")
    out.print(f"key id {body['key_id']}; the key, shown once:")
    out.print(body["api_key"], highlight=False)


@key_app.command("list")
def key_list(as_json: AsJson = False) -> None:
    """Every API key of the node, revoked ones too (never a secret)."""

    async def keys(console: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await console.keys()
        return rows

    rows = _run(_with_console("", keys))
    if as_json:
        out.print_json(data=[{k: _plain(v) for k, v in r.items()} for r in rows])
        return
    table = Table("key id", "name", "role", "organization", "created", "revoked")
    for r in rows:
        table.add_row(
            str(r["key_id"]),
            r["name"],
            r["role"],
            str(r["org_id"]),
            f"{r['created_at']:%F %T}",
            f"{r['revoked_at']:%F %T}" if r["revoked_at"] else "",
        )
    out.print(table)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[UUID, typer.Argument(help="The key's id (yixian key list).")],
    actor: Actor = "",
) -> None:
    """Revoke an API key: it fails at once; audited. The root's last operator key stays."""

    async def revoke(console: Any) -> Any:
        return await console.revoke_key(key_id)

    result = _run(_with_console(actor, revoke))
    out.print(f"revoked: {result.body['key_id']} {result.body['name']}")


# -- partners -----------------------------------------------------------------------------


@partner_app.command("link")
def partner_link(
    a: Annotated[str, typer.Argument(help="Division code of one node.")],
    partners: Annotated[
        list[str],
        typer.Argument(help="Division code of its partner; several: a link with each of them."),
    ],
    partitions: Partitions = 3,
    replication_factor: Replication = -1,
) -> None:
    """Create the two pair topics between A and each partner (kept for ever) and their
    ACLs: ``link 411525 110105`` is one link, ``link 411525 110105 110108`` two."""
    kafka = _load(KafkaSettings)
    partners = list(dict.fromkeys(partners))
    try:
        topics = kafka.topics
        names = {b: [topics.pair(a, b), topics.pair(b, a)] for b in partners}
    except ValueError as exc:
        _fail(Trouble("A PARTNER", str(exc)))
    if a in partners:
        _fail(Trouble("A PARTNER", f"{a} cannot be its own partner"))
    admin = _load(AdminKafkaSettings)
    _run(kafka_login(admin))
    cluster = ClusterAdmin(admin, kafka)
    created = _admin_step(
        lambda: cluster.link_all(a, partners, _policy(partitions, replication_factor)), admin
    )
    for b in partners:
        out.print(f"linked {a} ⇄ {b}: {', '.join(names[b])}")
    out.print(f"topics created: {', '.join(created) or 'none (all there)'}")
    if node_file_in_use() is None and not (
        os.environ.get("YIXIAN_NODE") in (a, *partners) and os.environ.get("YIXIAN_DATABASE_URL")
    ):
        return
    settings = _settings()
    if settings.node not in (a, *partners):
        return
    # run with a node's own settings (its environment or its --node-file): its sync reads
    # the new partners' topics from its next look at its links
    # (YIXIAN_METADATA_REFRESH_SECONDS), with no restart
    from yixian.sync.adapters.store import SyncStore

    node = settings.node
    linked = partners if node == a else [a]

    async def keep() -> list[bool]:
        conn = await connect(settings.database_url)
        try:
            store = SyncStore(conn, settings.node, settings.kafka.topics)
            return [await store.add_link(partner) for partner in linked]
        finally:
            await conn.close()

    for partner, made in zip(linked, _run(keep(), settings), strict=True):
        out.print(f"{node} keeps a link with {partner}{'' if made else ' (it had one)'}")


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
        conn = await connect(settings.database_url)
        try:
            async with conn.transaction():
                store = SyncStore(conn, settings.node, settings.kafka.topics)
                await send_digest(store, partner, settings.policy, utc_now())
        finally:
            await conn.close()

    _run(send(), settings)
    out.print(f"digest sent to {partner}: differing movements are repaired by their owners")


# -- dead letters -------------------------------------------------------------------------


@dlq_app.command("list")
def dlq_list(
    every: Annotated[
        bool, typer.Option("--all", help="Include those retried or discarded.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The records sync could not accept, with the reason."""
    from yixian.sync.adapters.store import OPEN_DEAD_LETTERS

    settings = _settings()

    async def fetch() -> list[dict[str, Any]]:
        conn = await connect(settings.database_url)
        try:
            rows = await conn.fetch(
                'SELECT id, topic, partition, "offset", reason, errors, received_at, retried_at,'  # noqa: S608 (a constant)
                " retry_outcome, discarded_at, discard_reason FROM dead_letters"
                f" WHERE $1 OR ({OPEN_DEAD_LETTERS}) ORDER BY id",
                every,
            )
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    rows = _run(fetch(), settings)
    if as_json:
        out.print_json(data=[{k: _plain(v) for k, v in r.items()} for r in rows])
        return
    table = Table("id", "received", "where", "reason", "retried", "discarded")
    for r in rows:
        retried = f"{r['retried_at']:%F %T} {r['retry_outcome']}" if r["retried_at"] else ""
        discarded = f"{r['discarded_at']:%F %T} {r['discard_reason']}" if r["discarded_at"] else ""
        table.add_row(  # what a partner sent is text, never markup
            str(r["id"]),
            f"{r['received_at']:%F %T}",
            escape(f"{r['topic']}[{r['partition']}]@{r['offset']}"),
            escape(r["reason"]),
            retried,
            escape(discarded),
        )
    out.print(table)


@dlq_app.command("retry")
def dlq_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letters to retry.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Retry every open dead letter.")] = False,
    actor: Actor = "",
) -> None:
    """Apply dead letters again (after a fix on either side); each says how it went; audited."""
    from . import dead_letters

    if not ids and not every:
        err.print("name the dead letters to retry, or pass --all")
        raise typer.Exit(2)
    settings = _settings()

    async def retry() -> list[tuple[int, str]]:
        connections = await pool(settings.database_url)
        try:
            wanted = await dead_letters.open_ids(connections, None if every else ids)
            with Progress(
                *Progress.get_default_columns(), console=err, disable=not err.is_terminal
            ) as bar:
                task = bar.add_task("retrying", total=len(wanted))
                results = []
                for dead_id in wanted:
                    results += await dead_letters.retry(
                        connections, settings, [dead_id], actor=_actor(actor)
                    )
                    bar.advance(task)
            return results
        finally:
            await connections.close()

    results = _run(retry(), settings)
    for dead_id, outcome in results:
        out.print(f"{dead_id}: {outcome}")
    if not results:
        out.print("no open dead letter to retry")


@dlq_app.command("discard")
def dlq_discard(
    ids: Annotated[list[int], typer.Argument(help="Dead letters to give up on.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")],
    actor: Actor = "",
) -> None:
    """Never apply these dead letters (kept, marked); audited. If one carried a group its
    partner owns, the partner's next version or a digest (partner anti-entropy) repairs it."""
    from . import dead_letters

    settings = _settings()
    if not reason.strip():
        _fail(Trouble("--reason", "say why, for the audit log"))

    async def discard() -> list[int]:
        conn = await connect(settings.database_url)
        try:
            return await dead_letters.discard(conn, settings, ids, actor=_actor(actor), note=reason)
        finally:
            await conn.close()

    done = _run(discard(), settings)
    out.print(
        f"discarded: {', '.join(map(str, done)) or 'none (no open dead letter by those ids)'}"
    )
    if len(done) < len(set(ids)):
        raise typer.Exit(1)


# -- parked outbox rows -------------------------------------------------------------------


@outbox_app.command("parked")
def outbox_parked(as_json: AsJson = False) -> None:
    """The rows the relay parked (it cannot publish them as they are), with the reason."""
    from yixian.record.parked import PARK_REASONS, parked_rows

    settings = _settings()

    async def fetch() -> list[dict[str, Any]]:
        conn = await connect(settings.database_url)
        try:
            return [dict(r) for r in await parked_rows(conn)]
        finally:
            await conn.close()

    rows = _run(fetch(), settings)
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
        conn = await connect(settings.database_url)
        try:
            return await retry_parked(conn, None if every else ids, actor=_actor(actor))
        finally:
            await conn.close()

    done = _run(retry(), settings)
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
        conn = await connect(settings.database_url)
        try:
            return await discard_parked(conn, ids, actor=_actor(actor), note=reason)
        finally:
            await conn.close()

    done = _run(discard(), settings)
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
        conn = await connect(settings.database_url)
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

    request_id = _run(ask(), settings)
    out.print(f"replay of {partner}'s events {first}..{last or 'latest'} asked ({request_id})")


# -- import -------------------------------------------------------------------------------

REGISTRY_URL = "YIXIAN_REGISTRY_URL"


@import_app.command("members")
def import_members(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON lines.")],
    registry_url: Annotated[
        str, typer.Option(envvar=REGISTRY_URL, help="The node's registry (its HTTP API).")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[str, typer.Option(envvar="YIXIAN_API_KEY", help="An operator key.")] = "",
    fmt: Annotated[Literal["csv", "jsonl"] | None, typer.Option("--format")] = None,
) -> None:
    """Stream members into the registry (CSV with a header line, or JSON lines)."""
    if not api_key:
        _fail(Trouble("YIXIAN_API_KEY", "is not set (or --api-key): an operator key is needed"))
    kind = fmt or ("jsonl" if file.suffix in {".jsonl", ".ndjson"} else "csv")
    media = "text/csv" if kind == "csv" else "application/x-ndjson"
    size = file.stat().st_size

    async def send() -> httpx.Response:
        with Progress(
            *Progress.get_default_columns()[:-1], DownloadColumn(), TimeRemainingColumn(),
            console=err, disable=not err.is_terminal,
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
    except httpx.InvalidURL as exc:
        _fail(Trouble(REGISTRY_URL, f"is not a URL ({exc})"))
    except httpx.HTTPError as exc:
        _fail(Trouble(REGISTRY_URL, f"no registry answers at {registry_url} ({exc})"))
    if response.status_code == 401:
        _fail(Trouble("YIXIAN_API_KEY", f"the registry refused it: {_error_text(response)}"))
    if response.status_code >= 400:
        _fail(Trouble(f"registry {response.status_code}", _error_text(response)))
    report = response.json()
    out.print(
        f"accepted {report['accepted']}, duplicates {report['duplicates']},"
        f" rejected {report['rejected']}"
    )
    for problem in report["errors"]:
        out.print(f"  line {problem['line']}: {problem['field']}: {problem['reason']}")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)[:300]


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
    if topics:
        _warn_anonymous(settings.kafka)

    async def collect() -> tuple[list[Any], int]:
        conn = await connect(settings.database_url)
        try:
            movements, _event = await resolve(conn, identifier)
            hops = await database_hops(conn, settings.node, movements)
            missing = 0
            if topics:
                await kafka_login(settings.kafka)
                found = await read_topic_hops(settings.kafka, settings.node, movements, conn)
                hops += found.hops
                missing = found.missing
        finally:
            await conn.close()
        return timeline(hops), missing

    try:
        hops, missing = _run(collect(), settings)
    except NotFound as exc:
        _fail(Trouble("identifier", str(exc)))
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


# -- capacity -----------------------------------------------------------------------------

app.command("capacity")(capacity.command)


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


# -- host ---------------------------------------------------------------------------------

HostDir = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar="YIXIAN_HOST_DIR",
        help="The host's directory of node settings files (the hosts' YIXIAN_HOST_DIR).",
    ),
]


def _host_dir(directory: Path) -> Path:
    if not directory.is_dir():
        err.print(f"[red]configuration:[/red] --dir: {escape(str(directory))} is not a directory")
        raise typer.Exit(2)
    return directory


def _node_file_settings(path: Path) -> SyncSettings:
    """``path`` read as each hosted service reads it: the first invalid setting stops."""
    from yixian.notify.config import NotifySettings
    from yixian.registry.config import RegistrySettings

    admin = sorted(
        name
        for name in node_file_values(path)
        if name.upper().startswith(AdminKafkaSettings.variable(""))
    )
    if admin:
        err.print(
            f"[red]configuration:[/red] {admin[0].upper()}: the cluster admin's login stays"
            " with the operator (in the environment of yixian), never in a node's file"
        )
        raise typer.Exit(2)
    use_node_file(path)
    for kind in (RegistrySettings, NotifySettings):
        _load(kind)
    return _settings()


def _hosted_beside(settings: SyncSettings, directory: Path) -> None:
    """Stop unless the node may run beside the others of ``directory`` (the host's rule,
    ``shared_with``); files the hosts refuse are not counted."""
    from yixian.runtime.host import node_files, node_settings, shared_with

    others: dict[str, SyncSettings] = {}
    for code, path in node_files(directory).items():
        try:
            others[code] = node_settings(SyncSettings, path)
        except (ValidationError, ValueError, OSError):
            continue
    clash = shared_with(settings, others)
    if clash is not None:
        err.print(f"[red]configuration:[/red] {escape(clash)}")
        raise typer.Exit(2)


@host_app.command("add")
def host_add(
    settings_file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="The node's settings (YIXIAN_* lines, as .env)."
        ),
    ],
    directory: HostDir,
    root_name: Annotated[
        str | None,
        typer.Option(help="Create the root organization with this name and a first operator key."),
    ] = None,
    kafka: Annotated[bool, typer.Option(help="Also set up topics, principal and ACLs.")] = True,
    partitions: Partitions = 3,
    replication_factor: Replication = -1,
    as_json: AsJson = False,
) -> None:
    """Set a node up as ``node init`` does (database, migrations, root organization, Kafka
    principal, topics and ACLs), then put its settings in the host's directory: the running
    hosts start it within their scan interval. Run it again to change a node's settings, or
    to set its principal's password at the cluster back to its file's."""
    _host_dir(directory)
    settings = _node_file_settings(settings_file)
    _hosted_beside(settings, directory)
    node_init(
        password=None,
        root_name=root_name,
        kafka=kafka,
        create_database=True,
        partitions=partitions,
        replication_factor=replication_factor,
        as_json=as_json,
    )
    target = directory / f"{settings.node}.env"
    staged = directory / f".{settings.node}.env.new"
    staged.write_bytes(settings_file.read_bytes())
    staged.chmod(0o600)
    staged.replace(target)  # atomic: a scan sees the old file or the new one, never half
    if not as_json:
        out.print(f"node {settings.node} is on the host: {target}")


@host_app.command("remove")
def host_remove(
    code: Annotated[str, typer.Argument(help="The node's division code.")],
    directory: HostDir,
) -> None:
    """Take a node off the host: its settings file moves to the directory's ``.removed``
    folder and the hosts stop the node within their scan interval. Its database, topics
    and principal stay (``host add`` with the same file brings it back)."""
    from yixian.runtime.host import NODE_CODE

    if not re.fullmatch(NODE_CODE, code):
        err.print(f"[red]error:[/red] CODE: {escape(repr(code))} is not a node's code")
        raise typer.Exit(2)
    source = _host_dir(directory) / f"{code}.env"
    if not source.is_file():
        err.print(f"[red]error:[/red] no node {escape(code)} in {escape(str(directory))}")
        raise typer.Exit(1)
    kept = directory / ".removed"
    kept.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    source.replace(kept / f"{code}.env.{stamp}")
    out.print(f"node {code} is off the host (its settings: {kept / f'{code}.env.{stamp}'})")


@host_app.command("list")
def host_list(directory: HostDir, as_json: AsJson = False) -> None:
    """The host's nodes: each file's node, database and Kafka principal, or why the hosts
    refuse it."""
    from yixian.runtime.host import node_files, node_settings

    rows: list[dict[str, Any]] = []
    for code, path in node_files(_host_dir(directory)).items():
        try:
            node = node_settings(SyncSettings, path)
        except (ValidationError, ValueError, OSError) as exc:
            problem = (
                settings_trouble(exc, (SyncSettings, *_SETTINGS_KINDS))
                if isinstance(exc, ValidationError)
                else exc
            )
            rows.append({"node": code, "file": str(path), "refused": str(problem)})
            continue
        rows.append(
            {
                "node": code,
                "file": str(path),
                "database": DatabaseUrl(node.database_url).name,
                "principal": node.kafka.username,
                "partners": sorted(node.partner_codes),
            }
        )
    if as_json:
        out.print_json(data=rows)
        return
    table = Table("node", "database", "Kafka principal", "partners", "refused")
    for row in rows:
        table.add_row(
            row["node"],
            row.get("database", ""),
            row.get("principal") or "",
            ",".join(row.get("partners", [])),
            row.get("refused", ""),
        )
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
