"""Every ``yixian`` command's help is whole in an 80-column terminal: no option or
variable name cut short with an ellipsis (Rich's tables did that to
``YIXIAN_NODE_KAFKA_PASSWORD``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from yixian.ops.cli import app

ROOT = typer.main.get_command(app)


def commands(group: Any = ROOT, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in getattr(group, "commands", {}).items():  # typer's own click's groups
        yield from commands(command, (*path, name))


@pytest.mark.parametrize("path", list(commands()), ids=" ".join)
def test_help_is_whole_at_80_columns(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    command = ROOT
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        for name in (*param.opts, *getattr(param, "secondary_opts", ())):
            if name.startswith("-"):
                assert name in result.output, f"{name} is not whole in:\n{result.output}"
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            assert envvar in result.output, f"{envvar} is not whole in:\n{result.output}"


def test_node_init_names_its_password_variable_whole() -> None:
    result = CliRunner().invoke(app, ["node", "init", "--help"], terminal_width=80)
    assert "YIXIAN_NODE_KAFKA_PASSWORD" in result.output
    assert "--replication-factor" in result.output
