"""How a node host runs a node: lean database pools unless the node's file sizes them, and
its app's paths the same as when the node is served alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from yixian.runtime import NodeSettings
from yixian.runtime.host import HostSettings, hosted, node_settings
from yixian.runtime.http import route_path


def file_of(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "411525.env"
    path.write_text("\n".join(["YIXIAN_NODE=411525", *lines]) + "\n")
    return path


def test_a_hosted_node_gets_the_hosts_lean_pools(tmp_path: Path) -> None:
    host = HostSettings(dir=tmp_path)
    alone = node_settings(NodeSettings, file_of(tmp_path))
    on_host = hosted(alone, host)
    assert (alone.database_pool_size, alone.database_idle_seconds) == (None, 300.0)
    assert (on_host.database_pool_size, on_host.database_idle_seconds) == (3, 30.0)


def test_a_node_file_that_sizes_its_pools_wins_over_the_host(tmp_path: Path) -> None:
    host = HostSettings(dir=tmp_path, pool_size=5, pool_idle_seconds=45)
    path = file_of(tmp_path, "YIXIAN_DATABASE_POOL_SIZE=8")
    settings = hosted(node_settings(NodeSettings, path), host)
    assert (settings.database_pool_size, settings.database_idle_seconds) == (8, 45.0)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("YIXIAN_DATABASE_POOL_SIZE=1", "database_pool_size"),
        ("YIXIAN_DATABASE_IDLE_SECONDS=0", "database_idle_seconds"),
    ],
)
def test_a_pool_too_small_to_work_is_refused(tmp_path: Path, line: str, named: str) -> None:
    # the registry's relay holds one connection for its life: one alone would starve the API
    with pytest.raises(ValidationError) as refused:
        node_settings(NodeSettings, file_of(tmp_path, line))
    assert refused.value.errors()[0]["loc"] == (named,)


@pytest.mark.parametrize(
    ("path", "root", "route"),
    [
        ("/v1/members/import", "", "/v1/members/import"),
        ("/nodes/411525/v1/members/import", "/nodes/411525", "/v1/members/import"),
        ("/nodes/411525", "/nodes/411525", "/"),
        ("/other/v1/members", "/nodes/411525", "/other/v1/members"),
    ],
)
def test_a_route_path_is_the_path_within_the_nodes_app(path: str, root: str, route: str) -> None:
    assert route_path({"path": path, "root_path": root}) == route
