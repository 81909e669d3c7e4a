"""The operator's screens (keys of the whole node with the operator role): the node's
services, outbox, consumer lag and links as ``yixian node status`` gathers them; dead
letters with their reason and record, retried or discarded; parked outbox rows; a replay
asked of a partner. Each action is written to the audit log in the operator's name."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from yixian.console.adapters.services import ServiceDown, ServiceRefusal, link_action, links
from yixian.console.adapters.services import readiness as services_readiness
from yixian.console.entrypoints.dependencies import (
    Form,
    Operator,
    Parts,
    Signed,
    render,
    wants_fragment,
)
from yixian.contracts import decode

router = APIRouter(prefix="/node")
PAGE = 25


async def _audit(parts: Any, who: Signed, action: str, target: str, **detail: Any) -> None:
    await parts.operations.audit(
        actor=who.principal.actor,
        role=who.principal.role.value,
        action=action,
        target=target,
        outcome="ok",
        detail=detail,
    )


def _back(request: Request, location: str) -> Response:
    if wants_fragment(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, _: Operator, parts: Parts) -> Response:
    """Services up and ready, outbox backlog and parked rows, consumer lag per partition,
    each link's state: what ``yixian node status`` gathers."""
    status = await parts.operations.status()
    parked, parked_total = await parts.operations.parked(PAGE)
    return render(
        request,
        "node.html",
        {
            "status": status,
            "services": await services_readiness(parts.endpoints),
            "parked": parked,
            "parked_total": parked_total,
            "message": request.query_params.get("message", "")[:200],
        },
    )


# -- dead letters -------------------------------------------------------------------------


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(
    request: Request,
    _: Operator,
    parts: Parts,
    every: Annotated[bool, Query(alias="all")] = False,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    rows = await parts.operations.dead_letters(open_only=not every, before=before, limit=PAGE + 1)
    shown = rows[:PAGE]
    return render(
        request,
        "dead_letters.html",
        {"rows": shown, "every": every, "before": shown[-1]["id"] if len(rows) > PAGE else None},
    )


def _record_text(value: bytes | None) -> tuple[str, Any]:
    """The dead letter's record as text, and as an event when it still decodes as one."""
    raw = (value or b"").decode(errors="replace")
    try:
        pretty = json.dumps(json.loads(raw), ensure_ascii=False, indent=2)
    except ValueError:
        pretty = raw
    try:
        event = decode(value or b"")
    except ValueError:
        return pretty, None
    return pretty, event


@router.get("/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
async def dead_letter(request: Request, dead_letter_id: int, _: Operator, parts: Parts) -> Response:
    row = await parts.operations.dead_letter(dead_letter_id)
    if row is None:
        raise ServiceRefusal(404, "not_found", f"没有编号为 {dead_letter_id} 的死信")
    record, event = _record_text(row.get("value"))
    return render(
        request,
        "dead_letter.html",
        {"row": row, "record": record, "event": event,
         "message": request.query_params.get("message", "")[:200]},
    )  # fmt: skip


@router.post("/dead-letters/{dead_letter_id}/retry")
async def retry_dead_letter(
    request: Request, dead_letter_id: int, _: Form, who: Operator, parts: Parts
) -> Response:
    """Apply it again through sync's applier (as ``yixian dlq retry``)."""
    outcome = await parts.operations.retry_dead_letter(dead_letter_id)
    await _audit(parts, who, "dead_letter.retry", f"dead_letter:{dead_letter_id}",
                 result=outcome)  # fmt: skip
    return _back(request, f"/node/dead-letters/{dead_letter_id}?message=重试结果：{outcome}")


@router.post("/dead-letters/{dead_letter_id}/discard")
async def discard_dead_letter(
    request: Request, dead_letter_id: int, values: Form, who: Operator, parts: Parts
) -> Response:
    reason = values.get("reason", "").strip()
    if not reason:
        row = await parts.operations.dead_letter(dead_letter_id)
        if row is None:
            raise ServiceRefusal(404, "not_found", f"没有编号为 {dead_letter_id} 的死信")
        record, event = _record_text(row.get("value"))
        return render(
            request,
            "dead_letter.html",
            {"row": row, "record": record, "event": event, "message": "",
             "discard_error": "请说明放弃的理由（写入审计日志）"},
            status=422,
        )  # fmt: skip
    closed = await parts.operations.discard_dead_letter(dead_letter_id, reason[:2000])
    if closed:
        await _audit(parts, who, "dead_letter.discard", f"dead_letter:{dead_letter_id}",
                     reason=reason[:2000])  # fmt: skip
    message = "已放弃" if closed else "该死信已处理，未作更改"
    return _back(request, f"/node/dead-letters/{dead_letter_id}?message={message}")


# -- parked outbox rows -------------------------------------------------------------------


def _ids(values: dict[str, str]) -> list[int]:
    raw = values.get("ids", "").replace("，", ",")
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


@router.post("/outbox/retry")
async def retry_parked(request: Request, values: Form, who: Operator, parts: Parts) -> Response:
    done = await parts.operations.retry_parked(_ids(values), who.principal.actor)
    return _back(request, f"/node?message=已重新排队：{', '.join(map(str, done)) or '无'}")


@router.post("/outbox/discard")
async def discard_parked(request: Request, values: Form, who: Operator, parts: Parts) -> Response:
    reason = values.get("reason", "").strip()
    if not reason:
        return _back(request, "/node?message=放弃暂存事件须说明理由")
    done = await parts.operations.discard_parked(_ids(values), who.principal.actor, reason)
    return _back(request, f"/node?message=已放弃：{', '.join(map(str, done)) or '无'}")


# -- links --------------------------------------------------------------------------------


async def _links_page(
    request: Request,
    parts: Any,
    *,
    message: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    found: list[dict[str, Any]] = []
    down = ""
    try:
        found = await links(parts.endpoints)
    except (ServiceDown, ServiceRefusal) as exc:
        down = str(exc)
    return render(
        request,
        "links.html",
        {"links": found, "down": down, "partners": parts.partners, "errors": errors or {},
         "values": values or {}, "message": message or request.query_params.get("message", "")},
        status=status,
    )  # fmt: skip


@router.get("/links", response_class=HTMLResponse)
async def partner_links(request: Request, _: Operator, parts: Parts) -> Response:
    return await _links_page(request, parts)


@router.post("/links/{partner}/{action}")
async def on_link(
    request: Request, partner: str, action: str, values: Form, who: Operator, parts: Parts
) -> Response:
    """``anti-entropy`` or ``status-request`` (sync's), or ``replay`` of a range."""
    if partner not in parts.partners:
        raise ServiceRefusal(404, "not_found", f"{partner} 不是本节点的伙伴节点")
    if action in ("anti-entropy", "status-request"):
        await link_action(parts.endpoints, partner, action)
        await _audit(parts, who, f"link.{action.replace('-', '_')}", f"link:{partner}")
        return _back(request, f"/node/links?message={partner}：已发送")
    if action != "replay":
        raise ServiceRefusal(404, "not_found", f"没有这一操作：{action}")
    first, last = values.get("from", "").strip(), values.get("to", "").strip()
    errors = {}
    if not first.isdigit():
        errors["from"] = "请填写起始序号（正整数）"
    if last and not last.isdigit():
        errors["to"] = "截止序号须为正整数，或留空表示最新"
    if not errors:
        try:
            request_id = await parts.operations.request_replay(
                partner, int(first), int(last) if last else None
            )
        except ValidationError as exc:
            names = {"from_sequence": "from", "to_sequence": "to"}
            for error in exc.errors():
                where = names.get(str(error["loc"][0]) if error["loc"] else "", "from")
                errors[where] = str(error["msg"]).removeprefix("Value error, ")
        else:
            await _audit(parts, who, "link.replay_request", f"link:{partner}",
                         first=int(first), last=int(last) if last else None,
                         request_id=str(request_id))  # fmt: skip
            return _back(
                request, f"/node/links?message={partner}：已请求重发 {first}..{last or '最新'}"
            )
    return await _links_page(
        request, parts, errors={f"{partner}.{k}": v for k, v in errors.items()},
        values={f"{partner}.from": first, f"{partner}.to": last}, status=422,
    )  # fmt: skip
