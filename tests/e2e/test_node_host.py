"""Nodes on node hosts (ADR 30): Gushi and Putian served by one host, Chaoyang by another,
each node its own SASL principal, database and API keys, added to the running hosts with
``yixian host add``.
"""

from __future__ import annotations

import pytest

from yixian.localstack.demo import _scenarios
from yixian.localstack.hosts import HostedNode, LocalHost

from .conftest import HostedNetworkFactory
from .test_sync_scenarios import CHAOYANG, GUSHI, PUTIAN

pytestmark = pytest.mark.e2e

Hosted = tuple[dict[str, LocalHost], dict[str, HostedNode]]


@pytest.fixture(scope="module")
async def hosted(module_hosted_network: HostedNetworkFactory) -> Hosted:
    return await module_hosted_network({"counties": [GUSHI, PUTIAN], "capital": [CHAOYANG]})


async def test_the_brief_scenarios_walk_across_node_hosts(hosted: Hosted) -> None:
    _, nodes = hosted
    said: list[str] = []
    await _scenarios(nodes, said.append)  # type: ignore[arg-type]
    assert any("transfer accepted and completed" in line for line in said)
    assert any("a concern was raised and answered" in line for line in said)
    assert any("membership stays with Gushi" in line for line in said)
