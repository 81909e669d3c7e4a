"""``yixian host`` on a host's directory, where it refuses before it touches a store: a code
that is not one, a file with a bad setting, a node that would share another's database or
principal, a node file holding the cluster admin's login; ``list`` says each file's node
or why the hosts refuse it, never a secret."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from yixian.ops import cli
from yixian.runtime.settings import node_file_in_use

GUSHI, PUTIAN, CHANGPING = "411525", "350300", "110114"
SERVER = "postgresql://yixian:db-secret@127.0.0.1:15432"


@pytest.fixture(autouse=True)
def _untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command configures this process's logging: pytest's stays as it is; and it reads
    nothing of this process's environment that a test did not set."""
    monkeypatch.setattr(cli, "quiet_libraries", lambda verbose: None)
    for name in ("YIXIAN_HOST_DIR", "YIXIAN_NODE_FILE", "YIXIAN_NODE"):
        monkeypatch.delenv(name, raising=False)


def node_file(path: Path, code: str, *extra: str) -> Path:
    lines = [
        f"YIXIAN_NODE={code}",
        f"YIXIAN_DATABASE_URL={SERVER}/node_{code}",
        f"YIXIAN_NATIONAL_ID_KEY=national-id-key-of-{code}-of-at-least-32-characters",
        "YIXIAN_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        f"YIXIAN_KAFKA_USERNAME=node-{code}",
        f"YIXIAN_KAFKA_PASSWORD=kafka-secret-of-{code}",
        *extra,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def yixian(*args: str) -> Result:
    """The command, in a context of its own: the node file it reads stays its own."""
    return contextvars.copy_context().run(CliRunner().invoke, cli.app, list(args))


@pytest.fixture
def host(tmp_path: Path) -> Path:
    directory = tmp_path / "nodes"
    directory.mkdir()
    node_file(directory / f"{PUTIAN}.env", PUTIAN)
    return directory


@pytest.mark.parametrize("code", ["../../etc/passwd", "..", f"{PUTIAN}/x", "", "a b", "x" * 40])
def test_remove_takes_a_nodes_code_only(host: Path, code: str) -> None:
    done = yixian("host", "remove", code, "--dir", str(host))
    assert done.exit_code == 2, done.output
    assert "is not a node's code" in done.stderr
    assert (host / f"{PUTIAN}.env").exists()


def test_remove_moves_the_nodes_file_aside_and_names_an_unknown_one(host: Path) -> None:
    unknown = yixian("host", "remove", GUSHI, "--dir", str(host))
    assert unknown.exit_code == 1
    assert f"no node {GUSHI}" in unknown.stderr
    done = yixian("host", "remove", PUTIAN, "--dir", str(host))
    assert done.exit_code == 0, done.output
    assert not (host / f"{PUTIAN}.env").exists()
    [kept] = (host / ".removed").iterdir()
    assert kept.name.startswith(f"{PUTIAN}.env.")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["YIXIAN_DEADLINES__CHECK_IN_DAYS=0"], "YIXIAN_DEADLINES__CHECK_IN_DAYS"),
        (["YIXIAN_KAFKA_SECURITY_PROTOCOL=TLS"], "YIXIAN_KAFKA_SECURITY_PROTOCOL"),
        (["YIXIAN_ADMIN_KAFKA_PASSWORD=the-admins"], "YIXIAN_ADMIN_KAFKA_PASSWORD"),
        ([f"YIXIAN_DATABASE_URL={SERVER}/node_{PUTIAN}"], f"the database of node {PUTIAN}"),
        ([f"YIXIAN_KAFKA_USERNAME=node-{PUTIAN}"], f"the principal of node {PUTIAN}"),
    ],
)
def test_add_refuses_a_file_naming_what_is_wrong_and_puts_nothing_on_the_host(
    host: Path, tmp_path: Path, extra: list[str], named: str
) -> None:
    path = node_file(tmp_path / "new.env", CHANGPING, *extra)
    done = yixian("host", "add", str(path), "--dir", str(host))
    assert done.exit_code == 2, done.output
    assert named in done.stderr
    assert "the-admins" not in done.output
    assert "Traceback" not in done.output
    assert sorted(p.name for p in host.iterdir()) == [f"{PUTIAN}.env"]


def test_list_says_each_files_node_or_why_it_is_refused_and_no_secret(host: Path) -> None:
    node_file(host / f"{CHANGPING}.env", CHANGPING, "YIXIAN_DEADLINES__CHECK_IN_DAYS=0")
    node_file(host / "110000.env", GUSHI)
    done = yixian("host", "list", "--dir", str(host), "--json")
    assert done.exit_code == 0, done.output
    rows = {row["node"]: row for row in json.loads(done.stdout)}
    assert rows[PUTIAN]["database"] == f"node_{PUTIAN}"
    assert rows[PUTIAN]["principal"] == f"node-{PUTIAN}"
    assert "YIXIAN_DEADLINES__CHECK_IN_DAYS" in rows[CHANGPING]["refused"]
    assert f"110000.env sets YIXIAN_NODE={GUSHI}" in rows["110000"]["refused"]
    for secret in ("db-secret", "kafka-secret", "national-id-key"):
        assert secret not in done.output


def test_no_node_file_stays_in_use_after_a_command(host: Path, tmp_path: Path) -> None:
    path = node_file(tmp_path / "new.env", CHANGPING, "YIXIAN_DEADLINES__CHECK_IN_DAYS=0")
    assert yixian("host", "add", str(path), "--dir", str(host)).exit_code == 2
    assert node_file_in_use() is None
