"""Composition root of the notify service: the one place its parts are built."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from yixian.record import schema
from yixian.runtime import DbConnection, get_logger, node_pool
from yixian.runtime.apikeys import keys_readable
from yixian.runtime.host import NodeRuntime, serve_node
from yixian.runtime.metrics import ConsumerLag, add_metrics_route
from yixian.runtime.service import readiness_checks

from .adapters import postgres
from .adapters.channels import AppTemplateChannel, Channel, EmailChannel, SmsChannel, WebhookChannel
from .adapters.metrics import NotifyMetrics
from .config import NotifySettings
from .domain.policy import QuietHours
from .domain.rules import Channel as ChannelName
from .domain.templates import Templates
from .entrypoints.consumer import build_consumer
from .entrypoints.http import create_app
from .service_layer.dispatcher import Dispatcher
from .service_layer.planner import Planner
from .service_layer.scheduler import Scheduler
from .service_layer.unit_of_work import Transactions, UnitOfWork

SERVICE = "notify"
PACKAGE = resources.files("yixian.notify")
MIGRATIONS = Path(str(PACKAGE / "migrations"))
TEMPLATES = Path(str(PACKAGE / "templates"))
log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def migrate(settings: NotifySettings) -> list[str]:
    return await schema.migrate(settings.database_url, SERVICE, MIGRATIONS)


def unit_of_work(conn: DbConnection) -> UnitOfWork:
    """The repositories of planning on one connection (in a transaction the caller holds)."""
    return UnitOfWork(
        seen=postgres.SeenGroups(conn),
        notices=postgres.NoticeLog(conn),
        record=postgres.NodeRecord(conn),
    )


def transactions(pool: asyncpg.Pool) -> Transactions:
    """Units of work on the node's database, each in a transaction of its own."""

    @asynccontextmanager
    async def begin() -> AsyncIterator[UnitOfWork]:
        async with pool.acquire() as conn, conn.transaction():
            yield unit_of_work(conn)

    return begin


def build_channels(
    settings: NotifySettings, client: httpx.AsyncClient
) -> dict[ChannelName, Channel]:
    channels: dict[ChannelName, Channel] = {
        ChannelName.APP: AppTemplateChannel(client, settings.app_endpoint, settings.app_template_id)
    }
    if settings.smtp_host:
        channels[ChannelName.EMAIL] = EmailChannel(
            settings.smtp_host, settings.smtp_port, settings.mail_from
        )
    if settings.sms_gateway:
        channels[ChannelName.SMS] = SmsChannel(client, settings.sms_gateway)
    if settings.webhook_secret.get_secret_value():
        channels[ChannelName.WEBHOOK] = WebhookChannel(
            client, settings.webhook_secret.get_secret_value().encode()
        )
    return channels


def build_dispatcher(
    settings: NotifySettings,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    metrics: NotifyMetrics | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Dispatcher:
    return Dispatcher(
        pool,
        build_channels(settings, client),
        rates={
            ChannelName.EMAIL: settings.email_per_second,
            ChannelName.SMS: settings.sms_per_second,
            ChannelName.WEBHOOK: settings.webhook_per_second,
            ChannelName.APP: settings.app_per_second,
        },
        quiet=QuietHours(settings.quiet_start, settings.quiet_end, ZoneInfo(settings.time_zone)),
        clock=clock,
        concurrency=settings.dispatch_concurrency,
        lease=timedelta(seconds=settings.lease_seconds),
        metrics=metrics,
    )


def with_api_keys(
    pool: asyncpg.Pool, checks: Callable[[], Awaitable[dict[str, str]]]
) -> Callable[[], Awaitable[dict[str, str]]]:
    """The readiness checks plus the API keys: the HTTP API authenticates through the view
    the registry's migrations create, which a notify started first does not have yet."""

    async def readiness() -> dict[str, str]:
        result = await checks()
        try:
            async with pool.acquire() as conn:
                readable = await keys_readable(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            result["api_keys"] = f"unavailable: {exc}"
        else:
            result["api_keys"] = "ok" if readable else "pending: the registry's migrations"
        return result

    return readiness


async def start_node(settings: NotifySettings) -> NodeRuntime:
    """The node's notify, started: the planner on its local topic, the dispatcher, the
    scheduler and the status app, on a pool and an HTTP client of its own."""
    templates = Templates(TEMPLATES)  # a template error stops the start, not a message
    pool = await node_pool(settings, 6)
    client = httpx.AsyncClient(timeout=15)
    stop = asyncio.Event()
    metrics = NotifyMetrics()
    zone = ZoneInfo(settings.time_zone)
    planner = Planner(settings.node, templates, settings.language, zone)
    dispatcher = build_dispatcher(settings, pool, client, metrics)
    broker = build_consumer(settings, transactions(pool), planner, dispatcher.wake)

    async def closing() -> None:
        await broker.stop()
        await client.aclose()
        await pool.close()

    try:
        await broker.start()
    except BaseException:
        await closing()
        raise
    sending = asyncio.create_task(dispatcher.run(stop), name="dispatch")
    scheduler = Scheduler(
        transactions(pool),
        planner,
        zone=zone,
        clock=utc_now,
        deadlines=settings.deadlines.to_domain(),
    )
    scheduling = asyncio.create_task(
        scheduler.run(stop, settings.schedule_seconds, dispatcher.wake), name="schedule"
    )
    readiness = with_api_keys(
        pool,
        readiness_checks(pool, settings.kafka, schema.with_node_schema(SERVICE, MIGRATIONS)),
    )
    group = settings.kafka.consumer_group(settings.node, "notify")
    lag = ConsumerLag(metrics.registry, settings.kafka, group)

    async def refresh() -> None:
        await metrics.refresh(pool)
        await lag.refresh([settings.kafka.topics.local(settings.node)])

    app = create_app(node=settings.node, pool=pool, readiness=readiness)
    add_metrics_route(app, metrics.registry, refresh)
    return NodeRuntime(
        node=settings.node,
        app=app,
        tasks=[sending, scheduling],
        stop=stop,
        closing=closing,
    )


async def serve(settings: NotifySettings) -> None:
    """Plan notices from the local topic and send them until SIGTERM or SIGINT."""
    await serve_node(
        settings,
        migrate,
        start_node,
        http_host=settings.http_host,
        http_port=settings.http_port,
    )
