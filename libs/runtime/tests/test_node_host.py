"""The node host alone (ADR 30), with a fake start in place of a service's: each node's
settings come from its file only, a path of one node never reaches another's, and each
node is started, restarted and stopped on its own."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from yixian.runtime.host import (
    HostSettings,
    NodeHost,
    NodeRuntime,
    node_settings,
    refusal,
    shared_with,
)
from yixian.runtime.http_limits import RequestLimits
from yixian.runtime.settings import NodeSettings

GUSHI, PUTIAN, CHAOYANG, CHANGPING = "411525", "350300", "110105", "110114"


def write(directory: Path, code: str, *lines: str) -> Path:
    path = directory / f"{code}.env"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def node_file(directory: Path, code: str, *extra: str) -> Path:
    return write(
        directory,
        code,
        f"YIXIAN_NODE={code}",
        f"YIXIAN_DATABASE_URL=postgresql://yixian@127.0.0.1:15432/node_{code}",
        *extra,
    )


# -- a node's settings: its file alone ------------------------------------------------------


def test_a_node_reads_its_file_and_nothing_of_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "YIXIAN_NODE": CHAOYANG,
        "YIXIAN_PARTNERS": PUTIAN,
        "YIXIAN_DATABASE_URL": "postgresql://host@10.0.0.1/the_hosts_own",
        "YIXIAN_KAFKA_USERNAME": "the-hosts-principal",
        "YIXIAN_KAFKA_PASSWORD": "the-hosts-secret",
        "YIXIAN_KAFKA_TOPIC_NAMESPACE": "elsewhere",
        "YIXIAN_DEADLINES__CHECK_IN_DAYS": "99",
        "YIXIAN_DEADLINES__DUES_DUE_DAY": "27",
    }.items():
        monkeypatch.setenv(name, value)
    path = node_file(
        tmp_path,
        GUSHI,
        f"YIXIAN_PARTNERS={CHAOYANG}",
        "YIXIAN_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        "YIXIAN_KAFKA_USERNAME=node-411525",
        "YIXIAN_KAFKA_PASSWORD=gushis-own-secret",
        "YIXIAN_DEADLINES__CHECK_IN_DAYS=12",
    )
    settings = node_settings(NodeSettings, path)
    assert settings.node == GUSHI
    assert settings.partner_codes == {CHAOYANG}
    assert settings.database_url.endswith(f"/node_{GUSHI}")
    assert settings.kafka.username == "node-411525"
    assert settings.kafka.password is not None
    assert settings.kafka.password.get_secret_value() == "gushis-own-secret"
    assert settings.kafka.security_protocol == "SASL_PLAINTEXT"
    assert settings.kafka.topic_namespace == ""  # the default, not the environment's
    assert settings.deadlines.check_in_days == 12
    assert settings.deadlines.dues_due_day == 10  # the default, not the environment's

    bare = node_file(tmp_path, PUTIAN)  # no login, no deadlines, no partners of its own
    other = node_settings(NodeSettings, bare)
    assert (other.kafka.username, other.kafka.password) == (None, None)
    assert other.partner_codes == frozenset()
    assert other.deadlines.check_in_days == 30


def test_a_value_naming_a_variable_is_taken_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIXIAN_KAFKA_PASSWORD", "the-hosts-secret")
    monkeypatch.setenv("HOST_ONLY", "of-the-host")
    path = node_file(
        tmp_path,
        GUSHI,
        "YIXIAN_KAFKA_PASSWORD=${YIXIAN_KAFKA_PASSWORD}",
        "YIXIAN_KAFKA_USERNAME=a${HOST_ONLY}b",
    )
    settings = node_settings(NodeSettings, path)
    assert settings.kafka.password is not None
    assert settings.kafka.password.get_secret_value() == "${YIXIAN_KAFKA_PASSWORD}"
    assert settings.kafka.username == "a${HOST_ONLY}b"


def test_a_file_named_for_another_node_is_refused_naming_both(tmp_path: Path) -> None:
    path = write(tmp_path, PUTIAN, f"YIXIAN_NODE={GUSHI}")
    with pytest.raises(ValueError, match=f"{PUTIAN}.env sets YIXIAN_NODE={GUSHI}") as refused:
        node_settings(NodeSettings, path)
    assert f"{GUSHI}.env" in str(refused.value)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("YIXIAN_DEADLINES__CHECK_IN_DAYS=0", "YIXIAN_DEADLINES__CHECK_IN_DAYS"),
        ("YIXIAN_KAFKA_SECURITY_PROTOCOL=SSL_PLEASE", "YIXIAN_KAFKA_SECURITY_PROTOCOL"),
        ("YIXIAN_KAFKA_TOPIC_NAMESPACE=Not Ours", "YIXIAN_KAFKA_TOPIC_NAMESPACE"),
        ("YIXIAN_SHUTDOWN_TIMEOUT=-1", "YIXIAN_SHUTDOWN_TIMEOUT"),
        (f"YIXIAN_PARTNERS={GUSHI}", "YIXIAN_PARTNERS names the node itself"),
    ],
)
def test_a_refused_setting_is_named_by_its_variable(tmp_path: Path, line: str, named: str) -> None:
    path = node_file(tmp_path, GUSHI, line)
    with pytest.raises(ValidationError) as refused:
        node_settings(NodeSettings, path)
    assert refusal(refused.value, NodeSettings).startswith(named)


def test_a_file_that_cannot_be_read_is_named_without_its_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as unreadable:
        (tmp_path / f"{GUSHI}.env").read_bytes()
    assert refusal(unreadable.value, NodeSettings) == (
        f"{GUSHI}.env cannot be read: No such file or directory"
    )
    undecodable = write(tmp_path, PUTIAN, "YIXIAN_NODE=350300")
    undecodable.write_bytes(b"YIXIAN_NODE=\xff\xfe\n")
    with pytest.raises(ValueError, match="codec") as refused:
        node_settings(NodeSettings, undecodable)
    assert str(tmp_path) not in refusal(refused.value, NodeSettings)


def test_a_missing_node_code_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GUSHI, "YIXIAN_PARTNERS=110105")
    with pytest.raises(ValidationError) as refused:
        node_settings(NodeSettings, path)
    assert refusal(refused.value, NodeSettings) == "YIXIAN_NODE: Field required"


# -- the host's ASGI app ------------------------------------------------------------------


Called = list[tuple[str, dict[str, Any]]]
ODD_PARTS = [
    "nodes", GUSHI, PUTIAN, "..", ".", "", "%2F", "%2e%2e", "\x00", "\n", "v1", "who",
    "readyz", "healthz", "\\", " ", "é", "?", "#", ";", "nodes/350300",
]  # fmt: skip


def node_app(code: str, called: Called) -> Callable[..., Awaitable[None]]:
    """A node's app: it notes each request's scope and answers its code and route."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        called.append((code, scope))
        route = scope["path"].removeprefix(scope["root_path"])
        status = 200 if route == "/v1/who" else 404
        body = json.dumps({"node": code, "route": route}).encode()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def ask(
    app: Callable[..., Awaitable[None]], path: str, kind: str = "http"
) -> tuple[int | None, Any, list[dict[str, Any]]]:
    """``path`` asked of ``app`` as uvicorn would hand it over (decoded): status, body, and
    every message sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": kind,
        "method": "GET",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    await app(scope, receive, send)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start or {}).get("status"), json.loads(body) if body else None, sent


def serving(tmp_path: Path, called: Called) -> NodeHost[NodeSettings]:
    host = NodeHost(
        "test", NodeSettings, _no_migrations, _never_started, HostSettings(dir=tmp_path)
    )
    host.apps = {GUSHI: node_app(GUSHI, called), PUTIAN: node_app(PUTIAN, called)}
    return host


async def _no_migrations(settings: NodeSettings) -> list[str]:
    return []


async def _never_started(settings: NodeSettings) -> NodeRuntime:
    raise AssertionError("not in this test")


async def test_a_node_path_reaches_that_node_alone_with_its_prefix_as_root_path(
    tmp_path: Path,
) -> None:
    called: Called = []
    host = serving(tmp_path, called)
    status, body, _ = await ask(host.app, f"/nodes/{GUSHI}/v1/who")
    assert (status, body) == (200, {"node": GUSHI, "route": "/v1/who"})
    status, body, _ = await ask(host.app, f"/nodes/{PUTIAN}/v1/who")
    assert (status, body) == (200, {"node": PUTIAN, "route": "/v1/who"})
    assert [(code, scope["root_path"]) for code, scope in called] == [
        (GUSHI, f"/nodes/{GUSHI}"),
        (PUTIAN, f"/nodes/{PUTIAN}"),
    ]
    status, body, _ = await ask(host.app, f"/nodes/{CHAOYANG}/v1/who")
    assert (status, body) == (404, {"detail": "no such node on this host"})
    assert len(called) == 2


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nodes",
        "/nodes/",
        "//nodes/411525/v1/who",
        "/nodes//v1/who",
        f"/nodes/{GUSHI}/../{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}/./../../nodes/{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}%2F..%2F{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}/%2e%2e/{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}/nodes/{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}\x00/v1/who",
        f"/nodes/{GUSHI}/v1/who\x00",
        f"/nodes/{GUSHI}\x00{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}/v1/who\n/nodes/{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}\\..\\{PUTIAN}/v1/who",
        f"/nodes/{GUSHI}{PUTIAN}/v1/who",
        f"/nodes/{GUSHI[:3]}/v1/who",
        "/nodes/" + "1" * 40 + "/v1/who",
        "/nodes/ＧＵＳＨＩ/v1/who",
        "/nodes/readyz",
        "/healthz/../nodes/350300/v1/who",
    ],
)
async def test_an_odd_path_never_fails_and_never_crosses_nodes(tmp_path: Path, path: str) -> None:
    called: Called = []
    host = serving(tmp_path, called)
    status, _, _ = await ask(host.app, path)
    assert status is not None
    assert status < 500
    for code, scope in called:
        assert path.startswith(f"/nodes/{code}/"), f"{path} reached {code}"
        assert scope["root_path"] == f"/nodes/{code}"
    assert PUTIAN not in {code for code, _ in called}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(ODD_PARTS),
        max_size=8,
    )
)
def test_no_path_made_of_odd_parts_fails_or_reaches_a_node_it_does_not_name(
    parts: list[str],
) -> None:
    path = "/" + "/".join(parts)
    called: Called = []
    host = serving(Path("/nonexistent"), called)
    host.ready = True  # as once it has read its directory
    status, _, _ = asyncio.run(ask(host.app, path))
    assert status is not None
    assert status < 500
    for code, scope in called:
        assert path == f"/nodes/{code}" or path.startswith(f"/nodes/{code}/")
        assert scope["root_path"] == f"/nodes/{code}"


async def test_the_hosts_own_readiness_lists_the_nodes_states_and_nothing_else(
    tmp_path: Path,
) -> None:
    called: Called = []
    host = serving(tmp_path, called)
    await host.scan()  # an empty directory, read
    status, body, _ = await ask(host.app, "/readyz")
    assert (status, body) == (200, {"ready": True, "nodes": {}, "degraded": []})
    status, body, _ = await ask(host.app, "/healthz")
    assert (status, body) == (200, {"status": "ok", "nodes": 2})
    assert called == []


async def test_a_websocket_to_no_node_is_closed_and_other_scopes_are_ignored(
    tmp_path: Path,
) -> None:
    called: Called = []
    host = serving(tmp_path, called)
    _, _, sent = await ask(host.app, f"/nodes/{CHAOYANG}/v1/who", kind="websocket")
    assert sent == [{"type": "websocket.close", "code": 1008}]
    _, _, sent = await ask(host.app, "/readyz", kind="lifespan")
    assert sent == []
    assert called == []


async def test_a_streamed_path_is_known_under_the_prefix_a_node_is_served_at() -> None:
    """The body limits of a node's app know its import path whether the node is served
    alone or under a host's ``/nodes/<code>``."""
    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limits = RequestLimits(app, streamed={"/v1/members/import": frozenset({"text/csv"})})
    for root in ("", f"/nodes/{GUSHI}"):
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)  # noqa: B023  (read before the next round)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": f"{root}/v1/members/import",
            "root_path": root,
            "headers": [(b"content-type", b"text/csv"), (b"content-length", b"10000000")],
        }
        await limits(scope, receive, send)
        assert sent[0]["status"] == 202, (root, sent)
    assert reached == ["/v1/members/import", f"/nodes/{GUSHI}/v1/members/import"]


# -- keeping the nodes ----------------------------------------------------------------------


class FakeNodes:
    """A service's start for the host: each node's part has one loop (``work``) that the
    test can make fail, and an app answering the node's code and its file's partners."""

    def __init__(self) -> None:
        self.started: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.failing: dict[str, asyncio.Future[None]] = {}
        self.hang: set[str] = set()
        self.close_fails: set[str] = set()

    async def migrate(self, settings: NodeSettings) -> list[str]:
        return []

    async def start(self, settings: NodeSettings) -> NodeRuntime:
        code = settings.node
        if code in self.hang:
            await asyncio.Event().wait()  # a database that never answers
        self.started[code] += 1
        stop = asyncio.Event()
        failing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.failing[code] = failing

        async def work() -> None:
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if failing.done():
                failing.result()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            body = json.dumps({"node": code, "partners": settings.partners}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        async def closing() -> None:
            self.closed[code] += 1
            if code in self.close_fails:
                raise RuntimeError("the pool would not close")

        return NodeRuntime(
            node=code,
            app=app,
            tasks=[asyncio.create_task(work(), name="work")],
            stop=stop,
            closing=closing,
        )


async def until(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def keeping(tmp_path: Path) -> Any:
    fake = FakeNodes()
    host = NodeHost(
        "test",
        NodeSettings,
        fake.migrate,
        fake.start,
        HostSettings(dir=tmp_path, restart_seconds=0.2, restart_most_seconds=0.4),
    )
    yield host, fake
    await asyncio.wait_for(host.leave_all("the test ends"), 10)


async def served(host: NodeHost[NodeSettings], code: str) -> Any:
    status, body, _ = await ask(host.app, f"/nodes/{code}/v1/who")
    return body if status == 200 else status


async def test_a_new_file_starts_a_node_a_changed_one_restarts_it_a_removed_one_stops_it(
    tmp_path: Path, keeping: Any
) -> None:
    host, fake = keeping
    node_file(tmp_path, GUSHI, f"YIXIAN_PARTNERS={CHAOYANG}")
    await host.scan()
    await until(lambda: host.states() == {GUSHI: "running"}, "Gushi runs")
    assert await served(host, GUSHI) == {"node": GUSHI, "partners": CHAOYANG}
    assert await served(host, PUTIAN) == 404

    node_file(tmp_path, PUTIAN)
    await host.scan()
    await until(lambda: host.states().get(PUTIAN) == "running", "Putian runs")
    await host.scan()  # nothing changed: nothing restarts
    assert fake.started == {GUSHI: 1, PUTIAN: 1}

    node_file(tmp_path, GUSHI, f"YIXIAN_PARTNERS={CHAOYANG},{PUTIAN}")
    await host.scan()
    await until(lambda: fake.started[GUSHI] == 2, "Gushi restarted")
    await until(lambda: host.states()[GUSHI] == "running", "Gushi runs again")
    assert fake.closed == {GUSHI: 1}
    assert await served(host, GUSHI) == {"node": GUSHI, "partners": f"{CHAOYANG},{PUTIAN}"}
    assert fake.started[PUTIAN] == 1

    (tmp_path / f"{GUSHI}.env").unlink()
    await host.scan()
    assert await served(host, GUSHI) == 404  # at once, while it closes
    assert host.states() == {PUTIAN: "running"}
    await until(lambda: fake.closed[GUSHI] == 2, "Gushi closed")
    assert await served(host, PUTIAN) == {"node": PUTIAN, "partners": ""}


async def test_a_node_whose_loop_fails_restarts_after_the_wait_and_the_other_serves_on(
    tmp_path: Path, keeping: Any
) -> None:
    host, fake = keeping
    node_file(tmp_path, GUSHI)
    node_file(tmp_path, PUTIAN)
    await host.scan()
    await until(lambda: set(host.states().values()) == {"running"}, "both run")

    fake.failing[GUSHI].set_exception(RuntimeError("the link broke"))
    await until(lambda: host.states()[GUSHI].startswith("failed"), "Gushi failed")
    assert await served(host, GUSHI) == 404
    assert await served(host, PUTIAN) == {"node": PUTIAN, "partners": ""}
    assert fake.closed == {GUSHI: 1}
    assert fake.started[GUSHI] == 1  # not before the wait
    await until(lambda: host.states()[GUSHI] == "running", "Gushi restarted", within=2)
    assert fake.started == {GUSHI: 2, PUTIAN: 1}
    assert await served(host, GUSHI) == {"node": GUSHI, "partners": ""}

    fake.failing[GUSHI].set_exception(RuntimeError("again"))
    fake.close_fails.add(GUSHI)  # and its close fails too: the keeper goes on
    await until(lambda: fake.started[GUSHI] == 3, "Gushi restarted again", within=2)
    await until(lambda: host.states()[GUSHI] == "running", "Gushi runs")
    assert host.states()[PUTIAN] == "running"


async def test_a_refused_file_or_a_start_that_hangs_holds_up_no_other_node(
    tmp_path: Path, keeping: Any
) -> None:
    host, fake = keeping
    write(tmp_path, CHANGPING, f"YIXIAN_NODE={CHANGPING}", "YIXIAN_DEADLINES__CHECK_IN_DAYS=0")
    write(tmp_path, CHAOYANG, f"YIXIAN_NODE={GUSHI}")
    fake.hang.add(PUTIAN)
    node_file(tmp_path, PUTIAN)
    node_file(tmp_path, GUSHI)
    await host.scan()
    await until(lambda: host.states()[GUSHI] == "running", "Gushi runs")
    states = host.states()
    assert states[CHANGPING].startswith("refused: YIXIAN_DEADLINES__CHECK_IN_DAYS:")
    assert states[CHAOYANG].startswith(f"refused: {CHAOYANG}.env sets YIXIAN_NODE={GUSHI}")
    assert states[PUTIAN] == "starting"
    status, body, _ = await ask(host.app, "/readyz")
    assert status == 200
    assert body["nodes"] == host.states()
    assert body["degraded"] == [CHAOYANG, CHANGPING, PUTIAN]

    (tmp_path / f"{PUTIAN}.env").unlink()  # the hanging start is given up, at once
    node_file(tmp_path, "110000")
    await asyncio.wait_for(host.scan(), 1)
    await until(lambda: host.states().get("110000") == "running", "Beijing runs")
    assert PUTIAN not in host.states()
    await until(lambda: not host.leaving, "Putian's keeper ended", within=1)
    assert fake.started[PUTIAN] == 0

    node_file(tmp_path, CHANGPING)  # fixed: started
    await host.scan()
    await until(lambda: host.states()[CHANGPING] == "running", "Changping runs")


async def test_two_nodes_never_share_a_database_or_a_principal(
    tmp_path: Path, keeping: Any
) -> None:
    host, fake = keeping
    gushi_db = f"postgresql://yixian@127.0.0.1:15432/node_{GUSHI}"
    node_file(tmp_path, GUSHI, "YIXIAN_KAFKA_USERNAME=node-411525")
    await host.scan()
    await until(lambda: host.states()[GUSHI] == "running", "Gushi runs")
    write(
        tmp_path, PUTIAN, f"YIXIAN_NODE={PUTIAN}",
        f"YIXIAN_DATABASE_URL={gushi_db.replace('yixian@', 'other:pw@')}",
    )  # fmt: skip
    node_file(tmp_path, CHAOYANG, "YIXIAN_KAFKA_USERNAME=node-411525")
    await host.scan()
    await until(lambda: len(host.states()) == 3 and fake.started[PUTIAN] == 0, "read")
    await until(lambda: host.states()[PUTIAN].startswith("refused"), "Putian refused")
    await until(lambda: host.states()[CHAOYANG].startswith("refused"), "Chaoyang refused")
    assert host.states()[PUTIAN] == (
        f"refused: YIXIAN_DATABASE_URL: the database of node {GUSHI}; each node has its own"
    )
    assert host.states()[CHAOYANG] == (
        f"refused: YIXIAN_KAFKA_USERNAME: the principal of node {GUSHI}; each node has its own"
    )
    assert fake.started == {GUSHI: 1}

    assert (
        shared_with(  # a URL whose port is not one is compared, not a failure
            node_settings(NodeSettings, node_file(tmp_path, CHANGPING)).model_copy(
                update={"database_url": "postgresql://x@127.0.0.1:99999/y"}
            ),
            {GUSHI: node_settings(NodeSettings, tmp_path / f"{GUSHI}.env")},
        )
        is None
    )
    (tmp_path / f"{CHANGPING}.env").unlink()

    (tmp_path / f"{GUSHI}.env").unlink()  # the database is free: Putian starts (after a wait)
    await host.scan()
    await until(lambda: host.states()[PUTIAN] == "running", "Putian runs", within=3)
