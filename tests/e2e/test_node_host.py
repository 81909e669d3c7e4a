"""Nodes on node hosts (ADR 30): Gushi and Putian served by one host ("counties"), Chaoyang
by another ("capital"), each node its own SASL principal, database and API keys, added to
the running hosts with ``yixian host add``.

Then, as a hostile outsider would try it: nothing of one node is readable through the
other's API, keys or credentials; a flood of poison on Gushi's link, and a row its relay
can never publish, leave Putian's traffic its latency; an operator takes a node off a
running host and puts it back, and refused settings are named.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
import pytest
from click.testing import Result
from pydantic import SecretStr
from typer.testing import CliRunner

from yixian.contracts import TopicNames, decode
from yixian.contracts.envelope import numbered
from yixian.localstack import LocalStack
from yixian.localstack.demo import _scenarios
from yixian.localstack.hosts import HOSTED_SERVICES, HostedNode, LocalHost, node_file_text
from yixian.localstack.network import commit_and_apply, eventually, national_id_key
from yixian.localstack.stack import ADMIN_PASSWORD, ADMIN_USER
from yixian.ops.cli import app
from yixian.ops.kafka import ClusterAdmin, principal
from yixian.runtime.kafka import make_producer
from yixian.runtime.settings import KafkaSettings

from .conftest import HostedNetworkFactory
from .test_sync_scenarios import CHANGPING, CHAOYANG, GUSHI, PUTIAN, outflow

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


# -- helpers --------------------------------------------------------------------------------


async def people(node: HostedNode, count: int) -> list[UUID]:
    """``count`` new members of a new branch of ``node``."""
    return await node.import_members(await node.org(f"支部{uuid4().hex[:8]}"), count)


async def register(node: HostedNode, member: UUID, host: str) -> UUID:
    return UUID((await node.post("/v1/movements", outflow(member, host), 201))["movement_id"])


def at_host(host: HostedNode, movements: list[UUID]) -> Callable[[], Awaitable[bool]]:
    """Whether ``host`` holds a replica of every movement."""

    async def check() -> bool:
        count = await host.value(
            "SELECT count(*) FROM movements WHERE movement_id = ANY($1::uuid[])", movements
        )
        return int(count) == len(movements)

    return check


async def paced(origin: HostedNode, host: str, members: list[UUID], rate: float) -> list[UUID]:
    """One movement of each member from ``origin`` to ``host``, offered at ``rate`` a second
    whatever the registry's pace (an open loop)."""
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def one(i: int, member: UUID) -> UUID:
        await asyncio.sleep(max(0.0, began + i / rate - loop.time()))
        return await register(origin, member, host)

    return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(members))))


async def latencies(origin: HostedNode, host: HostedNode, movements: list[UUID]) -> list[float]:
    """Each movement's commit → apply latency, ms, once ``host`` applied them all."""
    await eventually(at_host(host, movements), what=f"{host.code} applies them", within=90)
    times = await commit_and_apply(origin, host, movements)
    assert len(times) == len(movements)
    return [(applied - committed).total_seconds() * 1000 for committed, applied in times.values()]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def kafka_of(node: HostedNode) -> KafkaSettings:
    """The node's own login at the cluster, from its settings."""
    env = node.env
    return KafkaSettings(
        bootstrap_servers=env["YIXIAN_KAFKA_BOOTSTRAP_SERVERS"],
        security_protocol=env["YIXIAN_KAFKA_SECURITY_PROTOCOL"],  # type: ignore[arg-type]
        username=env["YIXIAN_KAFKA_USERNAME"],
        password=SecretStr(env["YIXIAN_KAFKA_PASSWORD"]),
        topic_namespace=env["YIXIAN_KAFKA_TOPIC_NAMESPACE"],
    )


async def yixian(*args: str, env: dict[str, str] | None = None) -> Result:
    """The operator's command line, in this process (a thread of its own: what it sets for
    itself, e.g. ``--node-file``, stays there)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def raw_status(base: str, path: str, headers: dict[str, str]) -> int:
    """The status of a GET of ``path`` exactly as written (no client tidies it)."""
    where = urlsplit(base)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {where.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


# -- the API --------------------------------------------------------------------------------


async def test_one_nodes_key_and_ids_reach_nothing_of_the_others(hosted: Hosted) -> None:
    hosts, nodes = hosted
    counties = hosts["counties"]
    gushi, putian = nodes[GUSHI], nodes[PUTIAN]
    [member] = await people(putian, 1)
    movement = await register(putian, member, CHAOYANG)
    gushis_key = {"Authorization": f"Bearer {gushi.key}"}
    gushi_ns = gushi.env["YIXIAN_KAFKA_TOPIC_NAMESPACE"]
    putians_key = {"Authorization": f"Bearer {putian.key}"}
    asked = [
        ("registry", "GET", "/v1/members", None),
        ("registry", "GET", f"/v1/members/{member}", None),
        ("registry", "GET", f"/v1/movements/{movement}", None),
        ("registry", "GET", "/v1/organizations", None),
        ("registry", "GET", "/v1/api-keys", None),
        ("registry", "GET", "/v1/audit", None),
        ("registry", "POST", "/v1/api-keys", {"name": "mine", "role": "operator"}),
        ("notify", "GET", "/v1/notices", None),
        ("notify", "GET", "/v1/opt-outs", None),
    ]
    async with httpx.AsyncClient(timeout=30) as client:
        # Gushi's operator key on Putian's paths: refused as any unknown key, nothing said
        for service, method, path, body in asked:
            url = putian.url(service) + path
            refused = await client.request(method, url, headers=gushis_key, json=body)
            assert refused.status_code == 401, (path, refused.text)
            assert str(member) not in refused.text
        owner = await client.get(
            putian.url("registry") + f"/v1/members/{member}", headers=putians_key
        )
        assert owner.status_code == 200  # the refusal was the key's

        # Putian's ids through Gushi's paths, with Gushi's key: as unknown as a made-up id
        for path in (f"/v1/members/{member}", f"/v1/movements/{movement}"):
            mine = await client.get(gushi.url("registry") + path, headers=gushis_key)
            made_up = await client.get(
                gushi.url("registry")
                + path.replace(str(member), str(uuid4())).replace(str(movement), str(uuid4())),
                headers=gushis_key,
            )
            assert mine.status_code == made_up.status_code == 404, mine.text
            assert set(mine.json()) == set(made_up.json())

        # paths a client would tidy, sent as written: none reaches Putian
        registry = counties.url("registry")
        for odd in (
            f"/nodes/{GUSHI}/../{PUTIAN}/v1/members",
            f"/nodes/{GUSHI}/%2e%2e/{PUTIAN}/v1/members",
            f"/nodes/{GUSHI}%2F..%2F{PUTIAN}/v1/members",
            f"/nodes/{GUSHI}/nodes/{PUTIAN}/v1/members",
            f"/nodes/{GUSHI}%00/v1/members",
            f"/nodes/{PUTIAN}%00/v1/members",
        ):
            status = await raw_status(registry, odd, putians_key)
            assert status in (401, 404), (odd, status)

        # each node's operations endpoints speak of it alone
        for service in HOSTED_SERVICES:
            ready = (await client.get(gushi.url(service) + "/readyz")).json()
            assert ready["node"] == GUSHI
            metrics = (await client.get(gushi.url(service) + "/metrics")).text
            if service != "registry":  # its consumer group's lag, Gushi's group alone
                assert f'group="{gushi_ns}.yixian.{GUSHI}.{service}"' in metrics
            assert f"yixian.{PUTIAN}." not in metrics  # no group, no client of Putian's
            assert putian.database_url.rsplit("/", 1)[-1] not in metrics

        # the host's own endpoints: the nodes' states, nothing else
        for service in HOSTED_SERVICES:
            own = await client.get(counties.url(service) + "/readyz")
            assert own.status_code == 200
            body = own.json()
            assert set(body) == {"ready", "nodes", "degraded"}
            assert body["degraded"] == [
                code for code, st in body["nodes"].items() if st != "running"
            ]
            assert body["nodes"][GUSHI] == body["nodes"][PUTIAN] == "running"
            assert all(isinstance(state, str) for state in body["nodes"].values())
            for secret in ("postgresql", "secret", "node-", str(counties.root)):
                assert secret not in own.text
            elsewhere = await client.get(f"{counties.url(service)}/nodes/{CHAOYANG}/readyz")
            assert elsewhere.status_code == 404
            assert elsewhere.json() == {"detail": "no such node on this host"}


async def test_the_hosts_processes_hold_no_nodes_secrets(hosted: Hosted) -> None:
    hosts, nodes = hosted
    secrets = [
        value
        for node in nodes.values()
        for name, value in node.env.items()
        if name in ("YIXIAN_KAFKA_PASSWORD", "YIXIAN_NATIONAL_ID_KEY", "YIXIAN_DATABASE_URL")
    ] + [node.key for node in nodes.values()]
    assert len(secrets) == 4 * len(nodes)
    for host in hosts.values():
        for service, pid in host.pids().items():
            environ = await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)
            names = {line.split(b"=", 1)[0].decode() for line in environ.split(b"\0") if line}
            ours = {name for name in names if name.startswith("YIXIAN_")}
            assert all(name.startswith("YIXIAN_HOST_") for name in ours), (service, ours)
            for secret in secrets:
                assert secret.encode() not in environ, (host.name, service)
        for path in host.directory.glob("*.env"):
            assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


# -- a poison flood and a stuck row on Gushi; Putian's traffic --------------------------------

KINDS = 6
"""The poison comes in turns of six kinds; four are dead letters."""


def poison(template: bytes, turns: int) -> list[tuple[bytes, bytes]]:
    """What a hostile Chaoyang puts on its link to Gushi, ``turns`` of each kind, from a
    real event of that link (``template``): not JSON, an unknown type, a version far ahead,
    a version reused with other content, a claim to write another origin's group, another
    node's source. None can ever be applied."""
    real = json.loads(template)
    group = real["data"]["group"]

    def event(**changes: Any) -> bytes:
        document = {**real, "id": str(uuid4()), **changes}
        return json.dumps(document).encode()

    def with_group(**changes: Any) -> dict[str, Any]:
        return {**real["data"], "group": {**group, **changes}}

    records = []
    for _ in range(turns):
        key = str(uuid4()).encode()
        records += [
            (key, b"\x00\xff{not json at all"),
            (key, event(type="yixian.movement.teleported.v1")),
            (key, event(data=with_group(movement_id=str(uuid4()), version=10**9))),
            (key, event(data=with_group(contact={"phone": "+86 000 0000 0000"}))),
            (key, event(data=with_group(movement_id=str(uuid4()), origin=PUTIAN))),
            (key, event(source=f"urn:yixian:node:{PUTIAN}")),
        ]
    return records


async def flood(
    partner: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]], bursts: int
) -> None:
    """``records`` on ``topic`` as ``partner``, in ``bursts`` spread over a few seconds."""
    producer = make_producer(partner, client_id="hostile-partner", linger_ms=5)
    await producer.start()
    try:
        size = -(-len(records) // bursts)
        for start in range(0, len(records), size):
            sent = [
                await producer.send(topic, value=v, key=k) for k, v in records[start : start + size]
            ]
            await asyncio.gather(*sent)
            await asyncio.sleep(0.15)
    finally:
        await producer.stop()


async def test_a_poison_flood_and_a_stuck_row_on_gushi_leave_putians_latency(
    hosted: Hosted,
) -> None:
    _, nodes = hosted
    gushi, putian, chaoyang = nodes[GUSHI], nodes[PUTIAN], nodes[CHAOYANG]
    topics = TopicNames(gushi.env["YIXIAN_KAFKA_TOPIC_NAMESPACE"])
    link = topics.pair(CHAOYANG, GUSHI)
    each, rate, turns = 24, 8.0, 100
    away, visiting = await people(putian, 2 * each + 1), await people(chaoyang, 2 * each + 4)

    # a real event of Chaoyang's link to Gushi, which the hostile partner copies
    first = await register(chaoyang, visiting.pop(), GUSHI)
    await eventually(at_host(gushi, [first]), what="Gushi applies Chaoyang's movement")
    row = (
        await chaoyang.query(
            "SELECT value, pairseq, pairepoch FROM outbox WHERE movement_id = $1"
            " AND destination = $2",
            first,
            GUSHI,
        )
    )[0]
    template = numbered(bytes(row["value"]), row["pairseq"], row["pairepoch"] or 0)
    assert decode(template).source_node == CHAOYANG

    async def putians_traffic() -> tuple[list[float], float, float]:
        """Putian's movements both ways, side by side: their latencies, and the window."""
        began = await putian.value("SELECT clock_timestamp()")
        out, into = await asyncio.gather(
            paced(putian, CHAOYANG, [away.pop() for _ in range(each)], rate),
            paced(chaoyang, PUTIAN, [visiting.pop() for _ in range(each)], rate),
        )
        measured = await latencies(putian, chaoyang, out) + await latencies(chaoyang, putian, into)
        ended = await putian.value("SELECT clock_timestamp()")
        return measured, began, ended

    baseline, _, _ = await putians_traffic()

    # Gushi's relay gets a row it can never publish (no node links it with Changping)
    parked = await gushi.value(
        "INSERT INTO outbox (event_id, event_type, topic, destination, record_key, value,"
        " trace_id) VALUES (gen_random_uuid(), 'yixian.test', $1, $2, 'k', $3, $4)"
        " RETURNING id",
        topics.pair(GUSHI, CHANGPING), CHANGPING, b'{"to": "changping"}', "0" * 32,
    )  # fmt: skip
    # and the hostile partner floods Gushi's link while Putian's traffic runs again
    records = poison(template, turns)
    flooding = asyncio.create_task(flood(kafka_of(chaoyang), link, records, bursts=20))
    during_flood = asyncio.create_task(putians_traffic())
    good_in = [await register(chaoyang, visiting.pop(), GUSHI) for _ in range(3)]
    [leaving] = await people(gushi, 1)
    good_out = await register(gushi, leaving, CHAOYANG)
    await flooding
    during, began, ended = await during_flood

    # Gushi was handling the poison through most of Putian's traffic, which kept its latency
    handled = await gushi.query(
        "SELECT min(received_at) AS first, max(received_at) AS last FROM dead_letters"
        " WHERE topic = $1",
        link,
    )
    first_dead, last_dead = handled[0]["first"], handled[0]["last"]
    overlap = (min(ended, last_dead) - max(began, first_dead)) / (ended - began)
    before, after = p95(baseline), p95(during)
    print(
        f"Putian's commit → apply p95: {before:.0f} ms before the flood, {after:.0f} ms during"
        f" ({len(records)} poison records on Gushi's link over {overlap:.0%} of the traffic)"
    )
    assert overlap >= 0.5, f"Gushi handled the poison over {overlap:.0%} of Putian's traffic"
    assert after <= 3 * before + 500, f"p95 {after:.0f} ms during the flood, {before:.0f} before"

    # Gushi: the poison in its dead letters, its good events applied both ways
    await eventually(at_host(gushi, good_in), what="Gushi applies Chaoyang's good movements")
    await eventually(at_host(chaoyang, [good_out]), what="Chaoyang applies Gushi's movement")

    async def all_handled() -> bool:
        dead = "SELECT count(*) FROM dead_letters WHERE topic = $1"
        return int(await gushi.value(dead, link)) == 4 * turns

    await eventually(all_handled, what="every poison handled", within=90)
    reasons = Counter(
        next((kind for kind, sign in REASONS.items() if sign in r["reason"]), r["reason"])
        for r in await gushi.query("SELECT reason FROM dead_letters WHERE topic = $1", link)
    )
    assert reasons == {kind: turns for kind in REASONS}, reasons
    outcomes = Counter(
        r["outcome"]
        for r in await gushi.query(
            "SELECT outcome FROM inbox WHERE source = $1 AND outcome <> 'applied'", CHAOYANG
        )
    )
    assert outcomes["skipped_unknown_type"] == turns
    assert outcomes["stale"] >= turns
    assert await gushi.value("SELECT count(*) FROM movements WHERE origin_version > 1000") == 0
    # the stuck row parked for the operator, said by Gushi's readiness alone
    assert await gushi.value("SELECT park_reason FROM outbox WHERE id = $1", parked) == (
        "not_authorized"
    )
    async with httpx.AsyncClient(timeout=30) as client:
        gushis = (await client.get(gushi.url("registry") + "/readyz")).json()
        putians = (await client.get(putian.url("registry") + "/readyz")).json()
        assert CHANGPING in " ".join(gushis["degraded"])
        assert putians["degraded"] == []
        gushis_sync = (await client.get(gushi.url("sync") + "/metrics")).text
        putians_sync = (await client.get(putian.url("sync") + "/metrics")).text
    assert 'outcome="dead_letter"' in gushis_sync
    assert 'outcome="dead_letter"' not in putians_sync
    assert await putian.value("SELECT count(*) FROM dead_letters") == 0
    # the operator gives up on it, through the node's file on its host
    gushi.ops("outbox", "discard", str(parked), "--reason", "no link to Changping")
    async with httpx.AsyncClient(timeout=30) as client:
        gushis = (await client.get(gushi.url("registry") + "/readyz")).json()
    assert gushis["degraded"] == []


REASONS = {
    "not JSON": "not JSON",
    "version far ahead": "more than 1000 beyond",
    "another's group": "only the origin writes the origin group",
    "forged source": "forged source",
}
"""The dead letters' kinds, by a part of their reason."""


# -- operators ------------------------------------------------------------------------------


async def test_a_node_file_with_a_bad_setting_is_refused_and_the_others_run_on(
    hosted: Hosted, tmp_path: Path
) -> None:
    hosts, nodes = hosted
    counties, putian = hosts["counties"], nodes[PUTIAN]
    base = {
        "YIXIAN_NODE": CHANGPING,
        "YIXIAN_DATABASE_URL": putian.database_url.rsplit("/", 1)[0] + "/never_made",
        "YIXIAN_NATIONAL_ID_KEY": national_id_key(CHANGPING),
    }
    bad = {**base, "YIXIAN_DEADLINES__CHECK_IN_DAYS": "0"}
    shared = {**base, "YIXIAN_DATABASE_URL": putian.database_url}
    files = {
        "bad": (node_file_text(bad), "YIXIAN_DEADLINES__CHECK_IN_DAYS"),
        "shared": (node_file_text(shared), f"YIXIAN_DATABASE_URL: the database of node {PUTIAN}"),
        "admin": (
            node_file_text(base) + f"YIXIAN_ADMIN_KAFKA_PASSWORD={ADMIN_PASSWORD}\n",
            "YIXIAN_ADMIN_KAFKA_PASSWORD",
        ),
    }
    for name, (text, named) in files.items():
        path = tmp_path / f"{name}.env"
        path.write_text(text)
        done = await yixian("host", "add", str(path), "--dir", str(counties.directory))
        assert done.exit_code == 2, done.output
        assert named in done.stderr, done.stderr
        assert "Traceback" not in done.output
    assert not (counties.directory / f"{CHANGPING}.env").exists()

    # dropped into the directory by hand: each host says why it refuses it; Putian runs on
    dropped = counties.directory / f"{CHANGPING}.env"
    dropped.write_text(node_file_text(bad))
    misnamed = counties.directory / "110000.env"
    misnamed.write_text(node_file_text({**base, "YIXIAN_NODE": PUTIAN}))
    try:
        said = await asyncio.to_thread(counties.wait_for, CHANGPING, "refused", 30)
        assert all("YIXIAN_DEADLINES__CHECK_IN_DAYS" in state for state in said.values()), said
        said = await asyncio.to_thread(counties.wait_for, "110000", "refused", 30)
        assert all(f"110000.env sets YIXIAN_NODE={PUTIAN}" in s for s in said.values()), said
        async with httpx.AsyncClient(timeout=30) as client:
            for service in HOSTED_SERVICES:
                own = await client.get(counties.url(service) + "/readyz")
                assert own.status_code == 200
                assert own.json()["nodes"][PUTIAN] == "running"
        assert (await putian.request("GET", "/v1/members")).status_code == 200
        listing = await yixian("host", "list", "--dir", str(counties.directory), "--json")
        listed = {row["node"]: row for row in json.loads(listing.stdout)}
        assert "YIXIAN_DEADLINES__CHECK_IN_DAYS" in listed[CHANGPING]["refused"]
        assert listed[PUTIAN]["principal"] == principal(
            PUTIAN, TopicNames(putian.env["YIXIAN_KAFKA_TOPIC_NAMESPACE"])
        )
    finally:
        dropped.unlink()
        misnamed.unlink()
    await asyncio.to_thread(counties.wait_for, CHANGPING, "absent", 30)


async def test_a_node_taken_off_its_host_and_put_back_catches_up(
    hosted: Hosted, local_stack: LocalStack
) -> None:
    hosts, nodes = hosted
    counties = hosts["counties"]
    gushi, putian, chaoyang = nodes[GUSHI], nodes[PUTIAN], nodes[CHAOYANG]
    from_putian, from_chaoyang = await people(putian, 2), await people(chaoyang, 2)
    [from_gushi] = await people(gushi, 1)
    on_the_host = ["--dir", str(counties.directory)]
    admin_env = {k: v for k, v in gushi.env.items() if k.startswith("YIXIAN_ADMIN_KAFKA_")}

    async def listed() -> list[str]:
        done = await yixian("host", "list", *on_the_host, "--json")
        return [row["node"] for row in json.loads(done.stdout)]

    removed = await yixian("host", "remove", GUSHI, *on_the_host)
    assert removed.exit_code == 0, removed.output
    await asyncio.to_thread(counties.wait_for, GUSHI, "absent", 30)
    async with httpx.AsyncClient(timeout=30) as client:
        for service in HOSTED_SERVICES:
            gone = await client.get(gushi.url(service) + "/readyz")
            assert gone.status_code == 404
    assert (await gushi.request("GET", "/v1/members")).status_code == 404
    assert await listed() == [PUTIAN]
    # Putian serves on, and its movements flow
    sent = await register(putian, from_putian.pop(), CHAOYANG)
    await eventually(at_host(chaoyang, [sent]), what="Chaoyang applies Putian's movement")
    # Chaoyang sends Gushi a movement while Gushi is off its host
    meanwhile = await register(chaoyang, from_chaoyang.pop(), GUSHI)

    # the cluster's admin gives Gushi's principal another password; Gushi is put back
    # without touching the cluster: its clients log in as Gushi, and are refused
    topics = TopicNames(gushi.env["YIXIAN_KAFKA_TOPIC_NAMESPACE"])
    admin_login = KafkaSettings(
        bootstrap_servers=local_stack.config.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        username=ADMIN_USER,
        password=SecretStr(ADMIN_PASSWORD),
        topic_namespace=topics.namespace,
    )
    admin = ClusterAdmin(admin_login, kafka_of(gushi))
    await asyncio.to_thread(admin.ensure_user, principal(GUSHI, topics), "not-what-its-file-says")
    put_back = ["host", "add", str(gushi.settings_file), *on_the_host]
    back = await yixian(*put_back, "--no-kafka", env=admin_env)
    assert back.exit_code == 0, back.output
    await asyncio.to_thread(counties.wait_for, GUSHI, "running", 60, ("registry",))
    stuck = await register(gushi, from_gushi, CHAOYANG)
    async with httpx.AsyncClient(timeout=30) as client:
        ready = await client.get(gushi.url("registry") + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["kafka"] == "unavailable"
    said = await asyncio.to_thread(counties.wait_for, GUSHI, "failed", 60, ("sync",))
    assert counties.states("sync")[PUTIAN] == "running", said
    # ... while Putian, its own principal, goes on
    sent = await register(putian, from_putian.pop(), CHAOYANG)
    await eventually(at_host(chaoyang, [sent]), what="Chaoyang applies Putian's movement")
    unsent = await gushi.value(
        "SELECT count(*) FROM outbox WHERE movement_id = $1 AND published_at IS NULL", stuck
    )
    assert unsent > 0, "Gushi published with a password that is not its own"

    # yixian host add with the same file sets the password back: Gushi catches up
    again = await yixian(*put_back, env=admin_env)
    assert again.exit_code == 0, again.output
    await asyncio.to_thread(counties.wait_for, GUSHI, "running", 60)
    await eventually(at_host(chaoyang, [stuck]), what="Chaoyang applies Gushi's movement")
    await eventually(at_host(gushi, [meanwhile]), what="Gushi applies what came meanwhile")
    later = await register(chaoyang, from_chaoyang.pop(), GUSHI)
    await eventually(at_host(gushi, [later]), what="Gushi applies Chaoyang's next movement")
    assert await listed() == [PUTIAN, GUSHI]
