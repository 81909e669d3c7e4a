"""What went wrong, in one sentence that names the setting to fix.

Every ``yixian`` command reaches its stores through here: a setting that does not
validate, a database that is missing or refuses the user, a broker that is unreachable or
refuses the principal's login become a :class:`Trouble` (``YIXIAN_DATABASE_URL: database
yixian_x does not exist on 127.0.0.1:15432``), which the command prints on stderr before it
exits non-zero. The clients' own log lines (aiokafka, librdkafka, asyncio) are kept off the
terminal: they would repeat the failure in another form, many times.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from yixian.runtime import create_pool
from yixian.runtime.kafka import KafkaUnreachable, check_login
from yixian.runtime.logging import configure_logging
from yixian.runtime.settings import KafkaSettings, invalid_setting

DATABASE_URL = "YIXIAN_DATABASE_URL"
LIBRARY_LOGGERS = ("aiokafka", "asyncio", "faststream", "yixian.ops.librdkafka")
"""Loggers whose lines are the clients' own view of a failure this module explains."""


class Trouble(Exception):
    """A setting (or an option) that does not work, and why."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


def quiet_libraries(verbose: bool) -> None:
    """The command's own log lines (JSON, as the services') on stderr from WARNING (INFO
    when ``verbose``); the clients' lines only when ``verbose``."""
    configure_logging(
        service="yixian",
        node=os.environ.get("YIXIAN_NODE", ""),
        level="INFO" if verbose else "WARNING",
    )
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.CRITICAL + 1)


# -- settings -------------------------------------------------------------------------------


def settings_trouble(exc: ValidationError, kinds: Iterable[type[BaseSettings]]) -> Trouble:
    """The first invalid setting of ``exc``, named by its environment variable
    (:func:`yixian.runtime.settings.invalid_setting`)."""
    return Trouble(*invalid_setting(exc, kinds))


# -- the database -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """The parts of ``YIXIAN_DATABASE_URL`` a message names (never its password)."""

    url: str

    @property
    def _parts(self) -> SplitResult:
        return urlsplit(self.url)

    @property
    def name(self) -> str:
        return self._parts.path.lstrip("/") or self.user

    @property
    def user(self) -> str:
        return self._parts.username or "postgres"

    @property
    def server(self) -> str:
        try:
            port = str(self._parts.port or 5432)
        except ValueError:
            port = self._parts.netloc.rpartition(":")[2]
        return f"{self._parts.hostname or 'localhost'}:{port}"

    def of(self, database: str) -> str:
        """The same server and user, another database (``postgres``: to create one)."""
        return urlunsplit(self._parts._replace(path=f"/{database}"))


def database_trouble(exc: BaseException, url: str) -> Trouble:
    """Why the database at ``url`` could not be used, as a sentence naming the setting."""
    where = DatabaseUrl(url)
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return Trouble(
            DATABASE_URL,
            f"database {where.name} does not exist on {where.server} (yixian node init creates it)",
        )
    if isinstance(
        exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError
    ):
        return Trouble(
            DATABASE_URL,
            f"the server at {where.server} refused user {where.user} ({exc})",
        )
    if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
        return Trouble(
            DATABASE_URL,
            f"database {where.name} has no Yixian schema, or an old one ({exc}):"
            " run yixian node init",
        )
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return Trouble(DATABASE_URL, f"user {where.user} may not do this: {exc}")
    if isinstance(exc, asyncpg.ClientConfigurationError | ValueError):
        return Trouble(DATABASE_URL, f"is not a PostgreSQL URL ({exc})")
    if isinstance(exc, ConnectionRefusedError):
        return Trouble(DATABASE_URL, f"no PostgreSQL server answers at {where.server}")
    if isinstance(exc, socket.gaierror):
        return Trouble(DATABASE_URL, f"unknown host in {where.server} ({exc.strerror})")
    if isinstance(exc, TimeoutError):
        return Trouble(DATABASE_URL, f"{where.server} did not answer as a PostgreSQL server")
    return Trouble(DATABASE_URL, f"{where.name} on {where.server}: {exc}")


DATABASE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError)
"""What connecting to or reading a database can raise."""


async def connect(url: str, within: float = 10) -> asyncpg.Connection:
    """A connection to the node's database, with JSON decoded; Trouble if there is none."""
    try:
        conn = await asyncpg.connect(url, timeout=within)
    except DATABASE_ERRORS as exc:
        raise database_trouble(exc, url) from None
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(
            codec, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    return conn


async def pool(url: str, size: int = 2) -> asyncpg.Pool:
    try:
        return await create_pool(url, size=size)
    except DATABASE_ERRORS as exc:
        raise database_trouble(exc, url) from None


async def ensure_database(url: str) -> bool:
    """Create the database ``url`` names if the server lacks it; True if it was created.
    Connects to the same server's ``postgres`` database as the same user."""
    where = DatabaseUrl(url)
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        pass
    except DATABASE_ERRORS as exc:
        raise database_trouble(exc, url) from None
    else:
        await conn.close()
        return False
    admin = await connect(where.of("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {_identifier(where.name)}")
    except asyncpg.DuplicateDatabaseError:
        return False  # made at the same moment by another init
    except asyncpg.InsufficientPrivilegeError:
        raise Trouble(
            DATABASE_URL,
            f"database {where.name} does not exist on {where.server} and user {where.user}"
            f" may not create it: have the server's administrator run"
            f" createdb -O {where.user} {where.name}",
        ) from None
    finally:
        await admin.close()
    return True


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- Kafka ------------------------------------------------------------------------------------


async def kafka_login(settings: KafkaSettings) -> None:
    """Trouble unless the principal of ``settings`` can reach the cluster and log in."""
    try:
        await check_login(settings)
    except KafkaUnreachable as exc:
        raise Trouble(settings.variable(exc.field), exc.message) from None
