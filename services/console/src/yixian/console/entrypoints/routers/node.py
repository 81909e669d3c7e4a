"""The operator's screens (keys of the whole node with the operator role): the node's
services, outbox, consumer lag and links as ``yixian node status`` gathers them; dead
letters with their reason and record, retried or discarded; parked outbox rows; a replay
asked of a partner. Each action and each refusal is written to the audit log in the
operator's name, in the same transaction as the action's effect where that effect is a
change of the node's database (a dead letter discarded, parked rows, a replay asked)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from yixian.console.adapters.services import ServiceDown, ServiceRefusal, link_action, links
from yixian.console.adapters.services import readiness as services_readiness
from yixian.console.domain import labels
from yixian.console.entrypoints.dependencies import (
    MAX_ID,
    Form,
    Operator,
    Parts,
    Signed,
    refuse,
    render,
    request_trace_id,
    see_other,
)
from yixian.contracts import decode

router = APIRouter(prefix="/node")
PAGE = 25
NUMBER = re.compile(r"[0-9]{1,18}")
"""An id or a sequence number typed into a form: ASCII digits, at most ``MAX_ID``."""
MAX_IDS = 1000
DeadLetterId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def _audit(
    request: Request, parts: Any, who: Signed, action: str, target: str, outcome: str = "ok",
    **detail: Any,
) -> None:  # fmt: skip
    await parts.operations.audit(
        actor=who.principal.actor,
        role=who.principal.role.value,
        action=action,
        target=target,
        outcome=outcome,
        detail=detail,
        trace_id=request_trace_id(request),
    )


def _count(request: Request) -> int | None:
    text = request.query_params.get("count", "")
    return int(text) if re.fullmatch(r"[0-9]{1,6}", text) else None


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
            "message": labels.done(request.query_params.get("done"), count=_count(request)),
        },
    )


# -- dead letters -------------------------------------------------------------------------


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(
    request: Request,
    _: Operator,
    parts: Parts,
    every: Annotated[bool, Query(alias="all")] = False,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
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


async def _dead_letter_row(
    request: Request, parts: Any, who: Signed, dead_letter_id: int
) -> dict[str, Any]:
    row: dict[str, Any] | None = await parts.operations.dead_letter(dead_letter_id)
    if row is None:
        raise await refuse(request, who, 404, f"没有编号为 {dead_letter_id} 的死信")
    return row


@router.get("/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
async def dead_letter(
    request: Request, dead_letter_id: DeadLetterId, who: Operator, parts: Parts
) -> Response:
    row = await _dead_letter_row(request, parts, who, dead_letter_id)
    record, event = _record_text(row.get("value"))
    code = request.query_params.get("done")
    return render(
        request,
        "dead_letter.html",
        {"row": row, "record": record, "event": event,
         "message": labels.done(code, outcome=row.get("retry_outcome"))},
    )  # fmt: skip


@router.post("/dead-letters/{dead_letter_id}/retry")
async def retry_dead_letter(
    request: Request, dead_letter_id: DeadLetterId, _: Form, who: Operator, parts: Parts
) -> Response:
    """Apply an open dead letter again through sync's applier (as ``yixian dlq retry``)."""
    outcome = await parts.operations.retry_dead_letter(
        dead_letter_id, actor=who.principal.actor, trace_id=request_trace_id(request)
    )
    if outcome is None:
        await _dead_letter_row(request, parts, who, dead_letter_id)
        raise await refuse(request, who, 409, f"死信 {dead_letter_id} 已处理（已应用或已放弃）")
    return see_other(request, f"/node/dead-letters/{dead_letter_id}?done=retried")


@router.post("/dead-letters/{dead_letter_id}/discard")
async def discard_dead_letter(
    request: Request, dead_letter_id: DeadLetterId, values: Form, who: Operator, parts: Parts
) -> Response:
    """Give up on an open dead letter, with why (as ``yixian dlq discard``)."""
    reason = values.get("reason", "").strip()
    if not reason:
        row = await _dead_letter_row(request, parts, who, dead_letter_id)
        await _audit(request, parts, who, "dead_letter.discard", f"dead_letter:{dead_letter_id}",
                     "refused", status=422, reason="no reason given")  # fmt: skip
        record, event = _record_text(row.get("value"))
        return render(
            request,
            "dead_letter.html",
            {"row": row, "record": record, "event": event, "message": "",
             "discard_error": "请说明放弃的理由（写入审计日志）"},
            status=422,
        )  # fmt: skip
    closed = await parts.operations.discard_dead_letter(
        dead_letter_id, reason[:2000], actor=who.principal.actor,
        trace_id=request_trace_id(request),
    )  # fmt: skip
    if not closed:
        await _dead_letter_row(request, parts, who, dead_letter_id)
        raise await refuse(request, who, 409, f"死信 {dead_letter_id} 已处理，未作更改")
    return see_other(request, f"/node/dead-letters/{dead_letter_id}?done=discarded")


# -- parked outbox rows -------------------------------------------------------------------


async def _ids(request: Request, who: Signed, values: dict[str, str]) -> list[int]:
    """The ids typed into a parked rows' form (commas between them); a 422 page naming
    ``ids`` for anything else."""
    typed = [part.strip() for part in values.get("ids", "").replace("，", ",").split(",")]
    typed = [part for part in typed if part]
    if not typed:
        raise await refuse(request, who, 422, "ids：请填写暂存事件的编号，以逗号分隔")
    if len(typed) > MAX_IDS or not all(NUMBER.fullmatch(part) for part in typed):
        raise await refuse(
            request, who, 422,
            f"ids：编号须为至多 18 位的数字（0–9），以逗号分隔，一次至多 {MAX_IDS} 个",
        )  # fmt: skip
    return sorted({int(part) for part in typed})


@router.post("/outbox/retry")
async def retry_parked(request: Request, values: Form, who: Operator, parts: Parts) -> Response:
    ids = await _ids(request, who, values)
    done = await parts.operations.retry_parked(ids, who.principal.actor)
    return see_other(request, f"/node?done=requeued&count={len(done)}")


@router.post("/outbox/discard")
async def discard_parked(request: Request, values: Form, who: Operator, parts: Parts) -> Response:
    ids = await _ids(request, who, values)
    reason = values.get("reason", "").strip()
    if not reason:
        raise await refuse(request, who, 422, "reason：放弃暂存事件须说明理由（写入审计日志）")
    done = await parts.operations.discard_parked(ids, who.principal.actor, reason[:2000])
    return see_other(request, f"/node?done=parked_discarded&count={len(done)}")


# -- links --------------------------------------------------------------------------------


async def _links_page(
    request: Request,
    parts: Any,
    *,
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
    partner = request.query_params.get("partner")
    message = labels.done(
        request.query_params.get("done"), partner=partner if partner in parts.partners else None
    )
    return render(
        request,
        "links.html",
        {"links": found, "down": down, "partners": parts.partners, "errors": errors or {},
         "values": values or {}, "message": message},
        status=status,
    )  # fmt: skip


@router.get("/links", response_class=HTMLResponse)
async def partner_links(request: Request, _: Operator, parts: Parts) -> Response:
    return await _links_page(request, parts)


def _sequence(text: str, field: str, errors: dict[str, str], wanted: str) -> int | None:
    if not text:
        return None
    if not NUMBER.fullmatch(text):
        errors[field] = wanted
        return None
    return int(text)


@router.post("/links/{partner}/{action}")
async def on_link(
    request: Request, partner: str, action: str, values: Form, who: Operator, parts: Parts
) -> Response:
    """``anti-entropy`` or ``status-request`` (sync's), or ``replay`` of a range."""
    if partner not in parts.partners:
        raise await refuse(request, who, 404, f"{partner[:20]} 不是本节点的伙伴节点")
    if action in ("anti-entropy", "status-request"):
        await link_action(parts.endpoints, partner, action)
        await _audit(request, parts, who, f"link.{action.replace('-', '_')}", f"link:{partner}")
        return see_other(request, f"/node/links?done=sent&partner={partner}")
    if action != "replay":
        raise await refuse(request, who, 404, f"没有这一操作：{action[:50]}")
    typed_first, typed_last = values.get("from", "").strip(), values.get("to", "").strip()
    errors: dict[str, str] = {}
    first = _sequence(typed_first, "from", errors, "起始序号须为正整数（至多 18 位数字）")
    last = _sequence(
        typed_last, "to", errors, "截止序号须为正整数（至多 18 位数字），或留空表示最新"
    )
    if first is None and "from" not in errors:
        errors["from"] = "请填写起始序号（正整数）"
    if not errors and first is not None:
        try:
            await parts.operations.request_replay(
                partner, first, last, actor=who.principal.actor, role=who.principal.role.value,
                trace_id=request_trace_id(request),
            )  # fmt: skip
        except ValidationError as exc:
            names = {"from_sequence": "from", "to_sequence": "to"}
            for error in exc.errors():
                where = names.get(str(error["loc"][0]) if error["loc"] else "", "from")
                errors[where] = str(error["msg"]).removeprefix("Value error, ")
        else:
            return see_other(request, f"/node/links?done=replay_requested&partner={partner}")
    await _audit(request, parts, who, "link.replay_request", f"link:{partner}", "refused",
                 status=422, errors=errors)  # fmt: skip
    return await _links_page(
        request, parts, errors={f"{partner}.{k}": v for k, v in errors.items()},
        values={f"{partner}.from": typed_first, f"{partner}.to": typed_last}, status=422,
    )  # fmt: skip
