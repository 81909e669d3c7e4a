"""The operator's console over a node's real database: ``node init`` makes the database and
says so, ``node root`` finds the root again, ``key`` issues, lists and revokes keys through
the registry's rules with audit rows, ``dlq discard`` gives a dead letter up (audited), and
every command that reads the database names a wrong ``YIXIAN_DATABASE_URL`` in one sentence
and fails. The commands run in this process (Typer's runner): these are database errors,
raised and answered in Python; the Kafka clients' log lines are ``test_trouble.py``'s."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

from yixian.localstack import LocalStack
from yixian.ops import cli
from yixian.runtime.apikeys import Principal, authenticate

pytestmark = pytest.mark.integration
GUSHI = "411525"
NATIONAL_ID_KEY = "a-test-national-id-key-of-at-least-32-characters"


@pytest.fixture(autouse=True)
def _logging_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command configures this process's logging; pytest's stays as it is."""
    monkeypatch.setattr(cli, "quiet_libraries", lambda verbose: None)


@pytest.fixture
async def new_database(local_stack: LocalStack) -> AsyncIterator[str]:
    """The URL of a database the server does not have yet; dropped afterwards."""
    name = f"console_{uuid4().hex[:12]}"
    yield local_stack.config.database_dsn(name)
    conn = await asyncpg.connect(local_stack.config.database_dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def node_env(database_url: str, **extra: str) -> dict[str, str | None]:
    return {
        "YIXIAN_NODE": GUSHI,
        "YIXIAN_PARTNERS": "110105",
        "YIXIAN_DATABASE_URL": database_url,
        "YIXIAN_NATIONAL_ID_KEY": NATIONAL_ID_KEY,
        # a node's login (these tests do not reach Kafka; without one, status would warn)
        "YIXIAN_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "YIXIAN_KAFKA_USERNAME": f"node-{GUSHI}",
        "YIXIAN_KAFKA_PASSWORD": "unused",
        **extra,
    }


def yixian(env: dict[str, str | None], *args: str) -> Result:
    with capture_logs():  # the command's own log lines, which it would send to stderr
        return CliRunner().invoke(cli.app, list(args), env=env)


@pytest.fixture
def initialised(new_database: str) -> tuple[dict[str, str | None], dict[str, Any]]:
    """A node made by ``node init`` (no Kafka): its settings and what init printed."""
    env = node_env(new_database)
    done = yixian(env, "node", "init", "--no-kafka", "--root-name", "固始县委组织部", "--json")
    assert done.exit_code == 0, done.output
    return env, json.loads(done.stdout)


def _query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Rows from the node's database (the tests are synchronous: the command runs its own
    event loop)."""

    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _principal(url: str, key: str) -> Principal | None:
    async def find() -> Principal | None:
        conn = await asyncpg.connect(url)
        try:
            return await authenticate(conn, key)
        finally:
            await conn.close()

    return asyncio.run(find())


def test_node_init_creates_the_database_and_tells_the_root_again(
    initialised: tuple[dict[str, str | None], dict[str, Any]],
) -> None:
    env, first = initialised
    assert first["database"]["created"] is True
    assert first["root_organization"]["created"] is True
    key = first["operator_api_key"]
    url = str(env["YIXIAN_DATABASE_URL"])

    root = yixian(env, "node", "root")
    assert root.exit_code == 0
    assert root.stdout.strip() == first["root_organization"]["org_id"]
    principal = _principal(url, key)
    assert principal is not None
    assert str(principal.org_id) == root.stdout.strip()

    again = yixian(env, "node", "init", "--no-kafka", "--root-name", "another", "--json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["database"]["created"] is False
    assert second["migrations_applied"] == []
    assert second["root_organization"] == {**first["root_organization"], "created": False}
    assert second["operator_api_key"] is None
    shown = yixian(env, "node", "show", "--json")
    assert json.loads(shown.stdout)["root_organization"]["name"] == "固始县委组织部"


def test_keys_are_issued_listed_and_revoked_by_the_registrys_rules(
    initialised: tuple[dict[str, str | None], dict[str, Any]],
) -> None:
    env, first = initialised
    url = str(env["YIXIAN_DATABASE_URL"])
    issued = yixian(env, "key", "issue", "--name", "ops-2", "--actor", "cli:wang", "--json")
    assert issued.exit_code == 0, issued.output
    key = json.loads(issued.stdout)
    assert (key["name"], key["role"]) == ("ops-2", "operator")
    assert key["org_id"] == first["root_organization"]["org_id"]

    twice = yixian(env, "key", "issue", "--name", "ops-2")
    assert twice.exit_code == 1
    assert twice.stderr.strip() == "error: --name: a key named 'ops-2' already exists on this node"
    nowhere = yixian(env, "key", "issue", "--name", "x", "--org", str(uuid4()))
    assert nowhere.exit_code == 1
    assert nowhere.stderr.startswith("error: --org: organization ")

    listed = json.loads(yixian(env, "key", "list", "--json").stdout)
    assert {k["name"] for k in listed} == {"operator", "ops-2"}
    first_id = next(k["key_id"] for k in listed if k["name"] == "operator")
    assert yixian(env, "key", "revoke", first_id).exit_code == 0
    last = yixian(env, "key", "revoke", key["key_id"])
    assert last.exit_code == 1
    assert "the last active operator key of the root organization" in last.stderr

    assert _principal(url, first["operator_api_key"]) is None  # revoked
    assert _principal(url, key["api_key"]) is not None
    audit = [
        (r["actor"], r["action"], r["outcome"])
        for r in _query(url, "SELECT actor, action, outcome FROM audit_log ORDER BY id")
    ]
    assert audit[0] == ("cli:wang", "api_key.issue", "ok")
    assert audit.count(("cli:wang", "api_key.issue", "ok")) == 1
    assert sum(1 for a in audit if a[1:] == ("api_key.issue", "refused")) == 2
    assert sum(1 for a in audit if a[1:] == ("api_key.revoke", "ok")) == 1
    assert sum(1 for a in audit if a[1:] == ("api_key.revoke", "refused")) == 1


def test_a_dead_letter_is_discarded_with_its_reason_and_audited(
    initialised: tuple[dict[str, str | None], dict[str, Any]],
) -> None:
    env, _ = initialised
    url = str(env["YIXIAN_DATABASE_URL"])
    rows = _query(
        url,
        'INSERT INTO dead_letters (topic, partition, "offset", value, reason) VALUES'
        " ('yixian.v1.110105.to.411525', 0, 7, '{not json', 'not JSON: test'),"
        " ('yixian.v1.110105.to.411525', 0, 8, '{not json either', 'not JSON: test')"
        " RETURNING id",
    )
    kept, given_up = (r["id"] for r in rows)

    done = yixian(env, "dlq", "discard", str(given_up), "--reason", "a partner's test record")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f"discarded: {given_up}"
    open_now = json.loads(yixian(env, "dlq", "list", "--json").stdout)
    assert [d["id"] for d in open_now] == [kept]
    every = {d["id"]: d for d in json.loads(yixian(env, "dlq", "list", "--all", "--json").stdout)}
    assert every[given_up]["discard_reason"] == "a partner's test record"

    retried = yixian(env, "dlq", "retry", "--all")  # only the open one: still not JSON
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.strip() == f"{kept}: dead_letter"
    again = yixian(env, "dlq", "discard", str(given_up), "--reason", "twice")
    assert again.exit_code == 1
    assert "none (no open dead letter by those ids)" in again.stdout

    audit = _query(url, "SELECT actor, action, target, detail FROM audit_log ORDER BY id")
    actions = [(r["action"], r["target"]) for r in audit]
    assert ("dead_letter.discard", f"dead_letter:{given_up}") in actions
    assert ("dead_letter.retry", f"dead_letter:{kept}") in actions
    detail = json.loads(next(r["detail"] for r in audit if r["action"] == "dead_letter.discard"))
    assert detail["note"] == "a partner's test record"
    assert detail["offset"] == 8
    assert all(r["actor"].startswith("cli:") for r in audit)


COMMANDS_ON_THE_DATABASE = [
    ("node", "init", "--no-kafka", "--no-create-database"),
    ("node", "status"),
    ("node", "show"),
    ("node", "root"),
    ("key", "list"),
    ("key", "issue", "--name", "x"),
    ("key", "revoke", "d9a49667-f7fd-4a5c-be4f-1358787a0817"),
    ("dlq", "list"),
    ("dlq", "retry", "--all"),
    ("dlq", "discard", "1", "--reason", "x"),
    ("outbox", "parked"),
    ("outbox", "retry", "--all"),
    ("outbox", "discard", "1", "--reason", "x"),
    ("replay", "--partner", "110105", "--from", "1"),
    ("partner", "anti-entropy", "110105"),
    ("trace", "02326e8e-e6fc-4d16-8ae1-3fe852a2b36c", "--no-topics"),
]


@pytest.mark.parametrize("args", COMMANDS_ON_THE_DATABASE, ids=" ".join)
def test_every_command_names_a_database_that_does_not_exist(
    local_stack: LocalStack, args: tuple[str, ...]
) -> None:
    name = f"absent_{uuid4().hex[:8]}"
    done = yixian(node_env(local_stack.config.database_dsn(name)), *args)
    assert done.exit_code == 1, done.output
    assert done.stderr == (
        f"error: YIXIAN_DATABASE_URL: database {name} does not exist on"
        f" 127.0.0.1:{local_stack.config.postgres_port} (yixian node init creates it)\n"
    )


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        (
            "YIXIAN_DATABASE_URL",
            "postgresql://yixian@127.0.0.1:1/x",
            "no PostgreSQL server answers at 127.0.0.1:1",
        ),
        ("YIXIAN_DATABASE_URL", "mysql://yixian@127.0.0.1/x", "is not a PostgreSQL URL"),
        (
            "YIXIAN_DATABASE_URL",
            "postgresql://nobody@127.0.0.1:{port}/yixian",
            "refused user nobody",
        ),
    ],
)
def test_a_database_that_cannot_be_used_is_named(
    local_stack: LocalStack, setting: str, value: str, said: str
) -> None:
    url = value.format(port=local_stack.config.postgres_port)
    done = yixian(node_env(url), "dlq", "list")
    assert done.exit_code == 1
    assert done.stderr.startswith(f"error: {setting}: ")
    assert said in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("YIXIAN_NODE", "999999"),
        ("YIXIAN_PARTNERS", "411525"),
        ("YIXIAN_KAFKA_SECURITY_PROTOCOL", "SASL"),
        ("YIXIAN_DEADLINES__CHECK_IN_DAYS", "0"),
        ("YIXIAN_HEARTBEAT_SECONDS", "soon"),
    ],
)
def test_a_setting_that_does_not_validate_is_named(setting: str, value: str) -> None:
    done = yixian(node_env("postgresql://unused/x", **{setting: value}), "dlq", "list")
    assert done.exit_code == 2
    assert len(done.stderr.splitlines()) == 1
    named = setting if setting != "YIXIAN_PARTNERS" else "configuration"
    assert done.stderr.startswith(f"configuration: {named}: "), done.stderr
    assert "Traceback" not in done.output


def test_the_key_commands_need_the_registrys_settings(local_stack: LocalStack) -> None:
    env = node_env(local_stack.config.postgres_dsn, YIXIAN_NATIONAL_ID_KEY=None)  # type: ignore[arg-type]
    done = yixian(env, "key", "list")
    assert done.exit_code == 2
    assert done.stderr.startswith("configuration: YIXIAN_NATIONAL_ID_KEY: ")


def test_a_database_without_the_schema_is_named(database_url: str) -> None:
    done = yixian(node_env(database_url), "outbox", "parked")
    assert done.exit_code == 1
    assert done.stderr.startswith("error: YIXIAN_DATABASE_URL: database ")
    assert "has no Yixian schema" in done.stderr
    assert done.stderr.endswith("run yixian node init\n")


def test_an_unknown_identifier_is_said_plainly(
    initialised: tuple[dict[str, str | None], dict[str, Any]],
) -> None:
    env, _ = initialised
    missing = uuid4()
    done = yixian(env, "trace", str(missing), "--no-topics")
    assert done.exit_code == 1
    assert done.stderr.startswith("error: identifier: ")
    assert str(missing) in done.stderr


def test_a_principal_that_is_not_the_nodes_is_refused(new_database: str) -> None:
    env = node_env(new_database, YIXIAN_KAFKA_TOPIC_NAMESPACE="prov")  # user node-411525
    done = yixian(env, "node", "init")
    assert done.exit_code == 1
    assert done.stderr == (
        f"error: YIXIAN_KAFKA_USERNAME: is node-{GUSHI}, but node {GUSHI} in topic namespace"
        f" prov is principal prov.node-{GUSHI}\n"
    )


def test_a_registry_that_does_not_answer_is_named(tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_text("org_id,name,joined_on\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()[1]  # closed again: nobody listens there
    url = f"http://127.0.0.1:{nobody}"
    env = node_env("unused") | {"YIXIAN_REGISTRY_URL": url, "YIXIAN_API_KEY": "yx_x"}
    done = yixian(env, "import", "members", str(members))
    assert done.exit_code == 1
    assert done.stderr.startswith(f"error: YIXIAN_REGISTRY_URL: no registry answers at {url}")
    without_key = yixian(
        node_env("unused") | {"YIXIAN_API_KEY": None}, "import", "members", str(members)
    )
    assert without_key.exit_code == 1
    assert without_key.stderr.startswith("error: YIXIAN_API_KEY: is not set")
