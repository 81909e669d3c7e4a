"""The whole node's trail, for its operators and auditors: a trace (what ``yixian trace``
prints) drawn as a timeline, the events on the node's topics, and the audit log (the
registry's, read with the signed-in key)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from yixian.console.adapters.node import NotFound
from yixian.console.adapters.services import ServiceRefusal
from yixian.console.domain.events import cursor, parse_cursor
from yixian.console.domain.timeline import lay_out
from yixian.console.entrypoints.dependencies import MAX_ID, Parts, Trail, render
from yixian.runtime import get_logger

router = APIRouter()
log = get_logger(__name__)
PAGE = 50
BEIJING = timedelta(hours=8)
Text = Annotated[str | None, Query(max_length=100)]
LocalTime = Annotated[str | None, Query(max_length=25)]
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""No record of a node (nor a Kafka timestamp) is older."""


def _beijing(value: str | None, field: str, errors: dict[str, str]) -> datetime | None:
    """A ``datetime-local`` input (Beijing time) as a UTC time; a wrong one is noted."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors[field] = "时间格式应为 YYYY-MM-DDTHH:MM"
        return None
    try:
        moment = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC) - BEIJING).astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or moment < EARLIEST:
        errors[field] = "时间须在 1970-01-01 至 9999-12-31 之间"
        return None
    return moment


@router.get("/trace", response_class=HTMLResponse)
async def trace(
    request: Request,
    _: Trail,
    parts: Parts,
    id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The timeline of a movement, a member's movements or an event, on this node and on
    the pair topics it reads, with each hop's latency."""
    context: dict[str, Any] = {"id": id or "", "timeline": None, "error": "", "warning": ""}
    if id:
        try:
            identifier = UUID(id.strip())
        except ValueError:
            context["error"] = "请输入流动、党员或事件的编号（UUID）"
            return render(request, "trace.html", context, status=422)
        limit = parts.operations.trace_timeout
        try:
            async with asyncio.timeout(limit):
                try:
                    hops = await parts.operations.trace(identifier)
                except NotFound:
                    raise
                except Exception as exc:  # Kafka unreachable: the node's own record still tells
                    log.warning("trace without the topics", error=str(exc))
                    context["warning"] = (
                        f"未能读取伙伴主题（{type(exc).__name__}），仅显示本节点的记录"
                    )
                    hops = await parts.operations.trace(identifier, topics=False)
        except NotFound as exc:
            context["error"] = str(exc)
            return render(request, "trace.html", context, status=404)
        except TimeoutError:
            log.warning("trace timed out", id=str(identifier), seconds=limit)
            context["error"] = (
                f"追踪超时：{limit:g} 秒内未能读完这条记录的全部环节（伙伴主题或数据库过慢）。"
                "请稍后重试，或使用命令 yixian trace。"
            )
            return render(request, "trace.html", context, status=504)
        context["timeline"] = lay_out(hops) if hops else None
    return render(request, "trace.html", context)


@router.get("/events", response_class=HTMLResponse)
async def events(
    request: Request,
    _: Trail,
    parts: Parts,
    topic: Annotated[str | None, Query(max_length=255)] = None,
    key: Text = None,
    type: Text = None,
    since: LocalTime = None,
    after: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """The events on the node's local topic and the pair topics addressed to it, from a
    time on, by key (a movement id) and type, a page at a time (``after``: where the
    previous page ended, ``domain.events``)."""
    errors: dict[str, str] = {}
    start = _beijing(since, "since", errors) or datetime.now(UTC) - timedelta(days=1)
    position = parse_cursor(after) if after else None
    if after and position is None:
        errors["after"] = "翻页位置无效：请从第一页重新查看"
    topics = await parts.operations.topics()
    chosen = [topic] if topic in topics else topics
    if topic and topic not in topics:
        errors["topic"] = "本节点不读取这个主题"
    page = None
    if not errors:
        page = await parts.operations.events(
            chosen, since=start, after=position, key=key or None, kind=type or None, limit=PAGE
        )
    following = None
    if page is not None and page.events and (len(page.events) == PAGE or page.cut_short):
        following = cursor(page.events[-1].position)
    return render(
        request,
        "events.html",
        {"topics": topics, "topic": topic or "", "key": key or "", "type": type or "",
         "since": (start + BEIJING).replace(tzinfo=None).isoformat(timespec="minutes"),
         "page": page, "following": following, "errors": errors},
        status=422 if errors else 200,
    )  # fmt: skip


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    request: Request,
    who: Trail,
    target: Text = None,
    actor: Text = None,
    since: LocalTime = None,
    until: LocalTime = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """The audit log with its filters, newest first, a page at a time (the registry's)."""
    errors: dict[str, str] = {}
    start, end = _beijing(since, "since", errors), _beijing(until, "until", errors)
    rows: list[dict[str, Any]] = []
    general = ""
    if not errors:
        try:
            rows = await who.caller.get(
                "/v1/audit",
                target=target or None,
                actor=actor or None,
                since=start.isoformat() if start else None,
                until=end.isoformat() if end else None,
                before=before,
                limit=PAGE + 1,
            )
        except ServiceRefusal as refusal:
            if refusal.field in ("target", "actor", "since", "until"):
                errors[refusal.field] = refusal.message
            else:
                general = refusal.message
    shown = rows[:PAGE]
    return render(
        request,
        "audit.html",
        {"rows": shown, "before": shown[-1]["id"] if len(rows) > PAGE else None,
         "query": {"target": target or "", "actor": actor or "", "since": since or "",
                   "until": until or ""},
         "errors": errors, "general": general},
        status=422 if errors else 200,
    )  # fmt: skip
