"""Start, stop and inspect the local Kafka broker and PostgreSQL server.

Everything the stack writes lives in one state folder (``YIXIAN_STACK_DIR``, default
``<repo>/.stack``); the Kafka jars are cached in ``YIXIAN_CACHE_DIR`` (default
``~/.cache/yixian``) so that only the first ``up`` on a machine downloads them.
``down`` stops only the processes whose pid files ``up`` wrote in the state folder.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

PACKAGE_DIR = Path(__file__).resolve().parent
LOCAL_DIR = PACKAGE_DIR.parents[2]  # deploy/local
REPO_ROOT = LOCAL_DIR.parents[1]
POM = LOCAL_DIR / "kafka" / "pom.xml"


ADMIN_USER = "admin"
ADMIN_PASSWORD = "yixian-local-admin"  # noqa: S105  (the throwaway local stack's admin)


MAX_CONNECTIONS = 600
"""PostgreSQL's limit, given at every start (so it holds for a data folder made before it
rose): fifty nodes on node hosts hold up to nine connections each (three services, a pool of
three), and the parallel tests their own."""

MANY_PARTITIONS = 1000
"""From this many partitions in the state folder, ``up`` says what they cost."""


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says why and what to do."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def kafka_version(pom: Path = POM) -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if match is None:
        raise StackError(f"{pom} does not pin <kafka.version>")
    return match.group(1)


def new_cluster_id(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A KRaft cluster id: 16 random bytes in unpadded base64url, as Kafka's own
    ``Uuid.randomUuid`` makes them. Like Kafka, draw again when the id would start with
    ``-`` (one draw in 64), which a command line would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and listens. Every field can be set from the environment."""

    state_dir: Path
    cache_dir: Path
    kafka_port: int = 19092
    controller_port: int = 19093
    sasl_port: int = 19094
    postgres_port: int = 15432
    postgres_user: str = "yixian"
    postgres_database: str = "yixian"
    kafka_heap: str = "768m"

    @classmethod
    def from_env(cls) -> StackConfig:
        state = os.environ.get("YIXIAN_STACK_DIR") or str(REPO_ROOT / ".stack")
        cache = os.environ.get("YIXIAN_CACHE_DIR") or str(Path.home() / ".cache" / "yixian")
        return cls(
            state_dir=Path(state).resolve(),
            cache_dir=Path(cache).resolve(),
            kafka_port=_env_int("YIXIAN_STACK_KAFKA_PORT", 19092),
            controller_port=_env_int("YIXIAN_STACK_CONTROLLER_PORT", 19093),
            sasl_port=_env_int("YIXIAN_STACK_SASL_PORT", 19094),
            postgres_port=_env_int("YIXIAN_STACK_POSTGRES_PORT", 15432),
        )

    @property
    def kafka_bootstrap(self) -> str:
        """The loopback PLAINTEXT listener: its principal ``ANONYMOUS`` is a super user."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL/SCRAM listener, where every principal gets only what its ACLs grant."""
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def postgres_dsn(self) -> str:
        return self.database_dsn(self.postgres_database)

    def database_dsn(self, database: str) -> str:
        return f"postgresql://{self.postgres_user}@127.0.0.1:{self.postgres_port}/{database}"


def _pid_alive(pid: int) -> bool:
    # Reap it if it is our own child (the pytest fixture starts Kafka itself).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False  # a zombie has exited
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(what: str, check: Callable[[], bool], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise StackError(
        f"{what} did not answer within {timeout:.0f}s; last lines of {log}:\n{_tail(log)}"
    )


@dataclass
class KafkaServer:
    """One combined broker+controller in KRaft mode on loopback."""

    config: StackConfig
    version: str = field(default_factory=kafka_version)

    @property
    def home(self) -> Path:
        return self.config.state_dir / "kafka"

    @property
    def libs(self) -> Path:
        return self.config.cache_dir / f"kafka-{self.version}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    # -- jars ----------------------------------------------------------------------------

    def fetch(self) -> bool:
        """Copy the broker's jars from Maven Central into the cache; False if already there."""
        marker = self.libs / ".complete"
        if marker.exists():
            return False
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("mvn is not on PATH: install Maven (Debian package 'maven')")
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
            f"-Dkafka.version={self.version}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"fetching Kafka {self.version} jars failed:\n{result.stdout}{result.stderr}"
            )
        (staging / ".complete").write_text(self.version + "\n")
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)
        return True

    def _java(self, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise StackError("java is not on PATH: Kafka 4 needs Java 17 or newer")
        return [
            java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", f"{self.libs}/*", main_class, *args,
        ]  # fmt: skip

    # -- configuration -------------------------------------------------------------------

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        c = self.config
        self.properties.write_text(
            "\n".join(
                [
                    "# Written by yixian.localstack: a single KRaft node on loopback.",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{c.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{c.kafka_port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{c.sasl_port},"
                    f"CONTROLLER://127.0.0.1:{c.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{c.kafka_port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{c.sasl_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,"
                    "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "# Nodes connect on the SASL listener as their own principal; the",
                    "# authorizer grants nothing an ACL does not name. The loopback PLAINTEXT",
                    "# and CONTROLLER listeners authenticate as ANONYMOUS: the stack's admin door.",
                    "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
                    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    "allow.everyone.if.no.acl.found=false",
                    f"super.users=User:ANONYMOUS;User:{ADMIN_USER}",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=3",
                    "default.replication.factor=1",
                    "min.insync.replicas=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "delete.topic.enable=true",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.out.type = Console",
                    "appender.out.name = STDOUT",
                    "appender.out.layout.type = PatternLayout",
                    "appender.out.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.out.ref = STDOUT",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = INFO",
                    "logger.state.name = state.change.logger",
                    "logger.state.level = WARN",
                    "logger.request.name = kafka.request.logger",
                    "logger.request.level = WARN",
                    "",
                ]
            )
        )

    def format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        command = self._java(
            "kafka.tools.StorageTool",
            "format", "--standalone", f"--cluster-id={new_cluster_id()}",
            f"--config={self.properties}",
        )  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    # -- process -------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The pid of the broker this stack started, if it is still running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _pid_alive(pid) and str(self.properties) in _cmdline(pid):
            return pid
        return None

    def answers(self) -> bool:
        return asyncio.run(_kafka_answers(self.config.kafka_bootstrap))

    def start(self, timeout: float = 120.0) -> bool:
        """Start the broker unless it is running; wait until it answers. True if started."""
        if self.pid() is not None:
            _wait("Kafka", self.answers, timeout, self.log_file)
            self.ensure_admin()
            return False
        self.fetch()
        self.write_config()
        self.format_storage()
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties), heap=self.config.kafka_heap),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self.pid_file.write_text(f"{process.pid}\n")

        def ready() -> bool:
            if process.poll() is not None:
                raise StackError(f"Kafka exited with {process.returncode}:\n{_tail(self.log_file)}")
            return self.answers()

        _wait("Kafka", ready, timeout, self.log_file)
        self.ensure_admin()
        return True

    def ensure_admin(self) -> None:
        """Give the SASL admin principal its SCRAM password (an upsert: safe to repeat)."""
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        admin = AdminClient(self._admin_config())
        # one mechanism per request: the broker refuses two changes to a user at once
        for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
            upsert = UserScramCredentialUpsertion(
                ADMIN_USER, ScramCredentialInfo(mechanism, 8192), ADMIN_PASSWORD.encode()
            )
            for future in admin.alter_user_scram_credentials([upsert]).values():
                future.result(timeout=30)

    def _admin_config(self) -> dict[str, Any]:
        """The super user's admin client on the PLAINTEXT listener; librdkafka's own log
        lines go through Python's logging, not to the terminal."""
        return {
            "bootstrap.servers": self.config.kafka_bootstrap,
            "logger": logging.getLogger("yixian.localstack.librdkafka"),
        }

    def partitions_kept(self) -> int:
        """How many partitions the broker keeps in the state folder: it loads each one at
        start and closes each one at stop, one after another."""
        try:
            entries = list(os.scandir(self.data_dir))
        except OSError:
            return 0
        return sum(
            1
            for entry in entries
            if entry.is_dir() and "-" in entry.name and not entry.name.startswith("__")
        )

    def delete_topics(self, prefixes: Iterable[str], timeout: float = 30.0) -> list[str]:
        """Delete every topic whose name starts with one of ``prefixes`` (the namespaces
        tests used); the topics deleted."""
        from confluent_kafka.admin import AdminClient

        wanted = tuple(prefixes)
        if not wanted:
            return []
        admin = AdminClient(self._admin_config())
        names = [n for n in admin.list_topics(timeout=timeout).topics if n.startswith(wanted)]
        if names:
            for future in admin.delete_topics(names, request_timeout=timeout).values():
                with contextlib.suppress(Exception):  # already gone
                    future.result(timeout=timeout)
        return names

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the broker this stack started (SIGTERM, then SIGKILL). True if one ran."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """kill -9 the broker (for recovery tests)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)

    def reported_version(self) -> str | None:
        """The version the running broker printed at start-up."""
        if not self.log_file.exists():
            return None
        found = re.findall(r"Kafka version: (\S+)", self.log_file.read_text(errors="replace"))
        return found[-1] if found else None


async def _kafka_answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
    except (TimeoutError, OSError):
        return False
    writer.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
    except Exception:
        return False
    finally:
        await admin.close()
    return True


@dataclass
class PostgresServer:
    """A PostgreSQL server from the machine's binaries (Debian's ``postgresql`` package)."""

    config: StackConfig

    @property
    def home(self) -> Path:
        home = self.config.state_dir / "postgres"
        if os.geteuid() == 0 and not self._reachable_by_postgres(self.config.state_dir):
            # PostgreSQL refuses to run as root; its own user must be able to reach the
            # folder, which a state folder under a private home may not allow.
            digest = hashlib.sha256(str(self.config.state_dir).encode()).hexdigest()[:12]
            home = Path("/var/tmp") / f"yixian-postgres-{digest}"  # noqa: S108  (root-only fallback)
        return home

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @staticmethod
    def _reachable_by_postgres(path: Path) -> bool:
        probe = path if path.exists() else path.parent
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(probe)],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    @staticmethod
    def bin_dir() -> Path:
        found = shutil.which("pg_ctl")
        if found:
            return Path(found).resolve().parent
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if not candidates:
            raise StackError(
                "PostgreSQL server binaries not found: install Debian's 'postgresql' package"
            )
        return candidates[-1].parent

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise StackError(
                f"{args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def initialise(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", self.config.postgres_user,
            "--auth=trust", "--encoding=UTF8", "--no-locale",
        )  # fmt: skip
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# yixian.localstack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.config.postgres_port}\n"
                f"unix_socket_directories = '{self.home}'\n"
                f"max_connections = {MAX_CONNECTIONS}\n"
                "shared_buffers = 256MB\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "log_min_messages = warning\n"
            )

    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def answers(self) -> bool:
        return asyncio.run(_postgres_answers(self.config.database_dsn("postgres")))

    def start(self, timeout: float = 60.0) -> bool:
        """Start the server unless it is running; create the default database. True if started."""
        started = False
        if not self.running():
            self.initialise()
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-w", "-t", str(int(timeout)), "-o", f"-c max_connections={MAX_CONNECTIONS}",
            )  # fmt: skip
            started = True
        _wait("PostgreSQL", self.answers, timeout, self.log_file)
        asyncio.run(_ensure_database(self.config, self.config.postgres_database))
        return started

    def stop(self) -> bool:
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        return True

    def kill(self) -> None:
        """kill -9 the server and every backend, as a crash of its machine would (for
        recovery tests); the next start runs crash recovery."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().splitlines()[0])
        if not _pid_alive(pid):
            return
        family = [pid, *_children(pid)]
        for member in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
        while any(_pid_alive(member) for member in family):
            time.sleep(0.05)

    def server_version(self) -> str:
        async def query() -> str:
            conn = await asyncpg.connect(self.config.database_dsn("postgres"))
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        return asyncio.run(query())


async def _postgres_answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return True


async def _ensure_database(config: StackConfig, name: str) -> None:
    conn = await asyncpg.connect(config.database_dsn("postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@dataclass
class LocalStack:
    """Kafka and PostgreSQL together, as ``make up`` / ``make down`` drive them."""

    config: StackConfig
    kafka: KafkaServer = field(init=False)
    postgres: PostgresServer = field(init=False)

    def __post_init__(self) -> None:
        self.kafka = KafkaServer(self.config)
        self.postgres = PostgresServer(self.config)

    @classmethod
    def from_env(cls) -> LocalStack:
        return cls(StackConfig.from_env())

    def up(self, report: Callable[[str], None] = print) -> list[str]:
        """Bring both servers up (each only if it is not running); name those it started."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with _timed(report, f"Kafka {self.kafka.version} jars"):
            fetched = self.kafka.fetch()
        where = "fetched from Maven Central" if fetched else "already cached"
        report(f"  {where} in {self.kafka.libs}")
        with _timed(report, "PostgreSQL"):
            pg_started = self.postgres.start()
        kept = self.kafka.partitions_kept()
        with _timed(report, "Kafka"):
            kafka_started = self.kafka.start()
        if kafka_started and kept >= MANY_PARTITIONS:
            report(
                f"  the broker loaded {kept:,} partitions kept in {self.kafka.data_dir} (about"
                " 1 s per 1,000 at start, more at stop); `make clean-stack` starts afresh"
            )
        return [name for name, s in (("postgres", pg_started), ("kafka", kafka_started)) if s]

    def down(self, report: Callable[[str], None] = print) -> None:
        kafka = self.kafka.stop()
        report(f"Kafka: {'stopped' if kafka else 'was not running (from this stack)'}")
        postgres = self.postgres.stop()
        report(f"PostgreSQL: {'stopped' if postgres else 'was not running (from this stack)'}")

    def clean(self, report: Callable[[str], None] = print) -> None:
        """Stop and delete every file the stack wrote (the jar cache stays)."""
        self.down(report)
        for folder in (self.config.state_dir, self.postgres.home):
            shutil.rmtree(folder, ignore_errors=True)
            report(f"removed {folder}")

    def status(self) -> dict[str, dict[str, str]]:
        kafka_pid = self.kafka.pid()
        kafka: dict[str, str] = {"state": "stopped"}
        if kafka_pid is not None:
            answering = self.kafka.answers()
            kafka = {
                "state": "running" if answering else "starting or unhealthy",
                "pid": str(kafka_pid),
                "version": self.kafka.reported_version() or self.kafka.version,
                "nodes": f"{self.config.sasl_bootstrap} SASL_PLAINTEXT (SCRAM; admin user"
                f" {ADMIN_USER})",
                "super user": f"{self.config.kafka_bootstrap} PLAINTEXT (tests and the admin"
                " bootstrap only)",
                "partitions": str(self.kafka.partitions_kept()),
                "log": str(self.kafka.log_file),
            }
        postgres: dict[str, str] = {"state": "stopped"}
        if self.postgres.running():
            answering = self.postgres.answers()
            postgres = {
                "state": "running" if answering else "starting or unhealthy",
                "version": self.postgres.server_version() if answering else "?",
                "dsn": self.config.postgres_dsn,
                "data": str(self.postgres.data_dir),
                "log": str(self.postgres.log_file),
            }
        return {"kafka": kafka, "postgres": postgres}

    async def fresh_database(self, name: str) -> str:
        """Drop ``name`` if it exists and create it empty; its DSN (demo and bench)."""
        conn = await asyncpg.connect(self.config.database_dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.config.database_dsn(name)

    def connection_help(self) -> str:
        """What ``make up`` prints: how a node connects (its own principal on the SASL
        listener, its own database), the admin steps, and what is not for nodes."""
        c = self.config
        server = c.database_dsn("")[: -len("/")]
        return "\n".join(
            [
                "A node connects to Kafka on the SASL listener as its own principal:",
                f"  YIXIAN_KAFKA_BOOTSTRAP_SERVERS={c.sasl_bootstrap}",
                "  YIXIAN_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
                "  YIXIAN_KAFKA_USERNAME=<namespace>.node-<code>"
                "   (node-<code> when YIXIAN_KAFKA_TOPIC_NAMESPACE is empty)",
                "  YIXIAN_KAFKA_PASSWORD=<the node's own secret>",
                "and to PostgreSQL with a database of its own (yixian node init creates it):",
                f"  YIXIAN_DATABASE_URL={server}/<the node's database>",
                "`yixian node init` makes the principal, its topics and its ACLs as the cluster"
                " administrator:",
                f"  YIXIAN_ADMIN_KAFKA_BOOTSTRAP_SERVERS={c.sasl_bootstrap}",
                "  YIXIAN_ADMIN_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
                f"  YIXIAN_ADMIN_KAFKA_USERNAME={ADMIN_USER}",
                f"  YIXIAN_ADMIN_KAFKA_PASSWORD={ADMIN_PASSWORD}",
                f"Not for nodes: {c.kafka_bootstrap} is the PLAINTEXT listener whose anonymous"
                " principal is a super user (tests and the admin bootstrap only).",
                f"psql {c.postgres_dsn}",
                "Ports (set before `make up` to move the stack):"
                f" YIXIAN_STACK_SASL_PORT={c.sasl_port} YIXIAN_STACK_KAFKA_PORT={c.kafka_port}"
                f" YIXIAN_STACK_CONTROLLER_PORT={c.controller_port}"
                f" YIXIAN_STACK_POSTGRES_PORT={c.postgres_port}",
                "Two linked nodes step by step: docs/operating.md",
            ]
        )


@contextmanager
def _timed(report: Callable[[str], None], what: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    report(f"{what}: ready ({time.monotonic() - start:.1f}s)")
