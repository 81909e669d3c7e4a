"""A secretary's screens: the work queues, a movement with both groups and the step forms,
members away, visiting and present, the member search and an outflow registration. Every
read and every step is the registry's API called with the signed-in key, so the registry
authorizes, audits and answers as for any caller; a refusal is shown beside the input it
names."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yixian.console.adapters.services import ServiceDown, ServiceRefusal
from yixian.console.domain.access import Area, may_enter
from yixian.console.domain.forms import FORMS, REGISTRATION, Placed, StepForm, body_of, place_errors
from yixian.console.entrypoints.dependencies import (
    Form,
    Parts,
    Signed,
    Who,
    refuse,
    render,
    see_other,
    wants_fragment,
)
from yixian.registry.entrypoints.routers.movements import STEPS
from yixian.runtime.divisions import division_name

router = APIRouter()
PAGE = 25
"""Rows per page of every list."""
SIDE_OF = {step.path: step.side for step in STEPS}
"""Whose group each step changes: the registry's table of steps."""
_DONE = {"register": REGISTRATION.title, **{path: form.title for path, form in FORMS.items()}}
Text = Annotated[str | None, Query(max_length=100)]
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
"""What the services take as an ``Idempotency-Key`` (visible ASCII: it travels as a header)."""
BAD_IDEMPOTENCY_KEY = "idempotency_key：须为 1 至 200 个可见 ASCII 字符，请刷新页面后重新提交"


def _idempotency_key(values: dict[str, str]) -> str | None:
    """The form's idempotency key; ValueError if it is not one a header can carry."""
    key = values.get("idempotency_key") or None
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError(BAD_IDEMPOTENCY_KEY)
    return key


@router.get("/")
async def home(_: Who) -> Response:
    return RedirectResponse("/queues", status_code=303)


# -- queues -------------------------------------------------------------------------------


@router.get("/queues", response_class=HTMLResponse)
async def queues(
    request: Request,
    who: Who,
    parts: Parts,
    queue: Annotated[str, Query(pattern=r"^(to_do|waiting|overdue|upcoming)$")] = "to_do",
    partner: Annotated[str | None, Query(pattern=r"^([0-9]{6})?$")] = None,
    after: UUID | None = None,
) -> Response:
    """The four queues with their counts; one of them a page at a time (the registry
    counts and pages them)."""
    partner = partner or None
    counts = await who.caller.get("/v1/queues/counts", partner=partner)
    found = await who.caller.get(
        "/v1/queues", queue=queue, partner=partner, limit=PAGE + 1, after=after and str(after)
    )
    shown, following = _movement_page(found.get(queue, []))
    return render(
        request,
        "queues.html",
        {
            "counts": counts,
            "queue": queue,
            "partner": partner or "",
            "partners": parts.partners,
            "items": shown,
            "after": following,
            "first_page": after is None,
        },
    )


# -- movements ----------------------------------------------------------------------------


def _steps_for(side: str) -> list[StepForm]:
    return [FORMS[s.path] for s in STEPS if s.side.value == side and s.path in FORMS]


async def _org_choices(who: Signed) -> list[tuple[str, str]]:
    try:
        organizations = await who.caller.get("/v1/organizations")
    except (ServiceRefusal, ServiceDown):
        return []
    return [(o["org_id"], o["name"]) for o in organizations]


def _partner_choices(parts: Any) -> list[tuple[str, str]]:
    return [(code, f"{code} {division_name(code) or ''}".strip()) for code in parts.partners]


@router.get("/movements/{movement_id}", response_class=HTMLResponse)
async def movement(request: Request, movement_id: UUID, who: Who, done: Text = None) -> Response:
    """A movement: both groups, its history, participations, the notices sent about it and
    (for those who may trace) its trace; and the steps this node may take."""
    view = await who.caller.get(f"/v1/movements/{movement_id}")
    notices: list[dict[str, Any]] = []
    notices_refused = ""
    try:
        notices = await who.caller.notices(movement_id=str(movement_id), limit=100)
    except ServiceRefusal as refusal:
        notices_refused = refusal.message
    except ServiceDown as down:
        notices_refused = str(down)
    return render(
        request,
        "movement.html",
        {
            "m": view,
            "steps": _steps_for(view["side"]) if who.viewer.acts else [],
            "notices": notices,
            "notices_refused": notices_refused,
            "may_trace": may_enter(who.viewer, Area.TRAIL),
            "done": _DONE.get(done or "", ""),
        },
    )


def _form_context(
    form: StepForm,
    action: str,
    values: dict[str, str],
    placed: Placed | None,
    orgs: list[tuple[str, str]],
    partners: list[tuple[str, str]],
) -> dict[str, Any]:
    return {
        "form": form,
        "action": action,
        "values": values,
        "errors": placed.by_input if placed else {},
        "general": placed.general if placed else [],
        "orgs": orgs,
        "partner_choices": partners,
        "generated": str(uuid4()),
        "idempotency_key": _kept_key(values) or f"console-{uuid4()}",
    }


def _kept_key(values: dict[str, str]) -> str | None:
    try:
        return _idempotency_key(values)
    except ValueError:
        return None


async def _step_form(
    request: Request,
    who: Signed,
    parts: Any,
    movement_id: UUID,
    form: StepForm,
    values: dict[str, str] | None = None,
    placed: Placed | None = None,
    status: int = 200,
) -> Response:
    needs_orgs = any(i.kind == "org" for i in form.inputs)
    context = _form_context(
        form,
        f"/movements/{movement_id}/steps/{form.path}",
        values or {},
        placed,
        await _org_choices(who) if needs_orgs else [],
        _partner_choices(parts),
    )
    if wants_fragment(request):
        return render(request, "step_form.html", context, status=status)
    view = await who.caller.get(f"/v1/movements/{movement_id}")
    context |= {"m": view, "steps": _steps_for(view["side"]), "open_form": True,
                "notices": [], "notices_refused": "", "may_trace": False, "done": ""}  # fmt: skip
    return render(request, "movement.html", context, status=status)


def _form_of(path: str) -> StepForm:
    form = FORMS.get(path)
    if form is None or path not in SIDE_OF:
        raise ServiceRefusal(404, "not_found", f"没有这一步骤：{path}")
    return form


@router.get("/movements/{movement_id}/steps/{path:path}", response_class=HTMLResponse)
async def step_form(
    request: Request, movement_id: UUID, path: str, who: Who, parts: Parts
) -> Response:
    return await _step_form(request, who, parts, movement_id, _form_of(path))


@router.post("/movements/{movement_id}/steps/{path:path}", response_class=HTMLResponse)
async def take_step(
    request: Request, movement_id: UUID, path: str, values: Form, who: Who, parts: Parts
) -> Response:
    """Send the step to the registry; on a refusal draw the form again, each message beside
    the input it names, with the registry's status."""
    form = _form_of(path)
    try:
        key = _idempotency_key(values)
    except ValueError as bad:
        placed = Placed(general=[(await refuse(request, who, 422, str(bad))).message])
        return await _step_form(request, who, parts, movement_id, form, values, placed, 422)
    try:
        await who.caller.post(
            f"/v1/movements/{movement_id}/{path}", body_of(form, values), idempotency_key=key
        )
    except ServiceRefusal as refusal:
        placed = place_errors(form.names, refusal.field, refusal.message, refusal.errors)
        return await _step_form(
            request, who, parts, movement_id, form, values, placed, refusal.status
        )
    return _done(request, f"/movements/{movement_id}?done={quote(path)}")


def _done(request: Request, location: str) -> Response:
    """After a step: the page it changed (htmx follows ``HX-Redirect``)."""
    return see_other(request, location)


# -- members ------------------------------------------------------------------------------


def _movement_page(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """A page asked for one more than shown: the page, and where the next one starts."""
    shown = items[:PAGE]
    return shown, shown[-1]["movement_id"] if len(items) > PAGE else None


@router.get("/members/away", response_class=HTMLResponse)
async def away(
    request: Request,
    who: Who,
    name: Text = None,
    after: UUID | None = None,
) -> Response:
    return await _movements_list(request, who, "/members/away", "外出党员", "origin", name, after)


@router.get("/members/visiting", response_class=HTMLResponse)
async def visiting(
    request: Request,
    who: Who,
    name: Text = None,
    after: UUID | None = None,
) -> Response:
    return await _movements_list(request, who, "/members/visiting", "流入党员", "host", name, after)


async def _movements_list(
    request: Request,
    who: Who,
    path: str,
    title: str,
    side: str,
    name: str | None,
    after: UUID | None,
) -> Response:
    """Members away or visiting: the registry's list at ``/v1`` + ``path``, a page at a time."""
    items = await who.caller.get(
        f"/v1{path}", name=name or None, limit=PAGE + 1, after=after and str(after)
    )
    shown, following = _movement_page(items)
    return render(
        request,
        "movements_list.html",
        {"title": title, "path_base": path, "items": shown, "after": following,
         "name": name or "", "side": side},
    )  # fmt: skip


@router.get("/members", response_class=HTMLResponse)
async def members(
    request: Request,
    who: Who,
    name: Text = None,
    phone: Annotated[str | None, Query(max_length=50)] = None,
    status: Annotated[str | None, Query(pattern=r"^(home|away|transferred_out|removed)?$")] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The member search (the registry's, a page at a time), and the organizations of the
    key's subtree with who is present in each."""
    query = {"name": name or None, "phone": phone or None, "status": status or None}
    error = ""
    found: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        found = await who.caller.get("/v1/members", **query, limit=PAGE, cursor=cursor)
    except ServiceRefusal as refusal:  # a search the registry refuses names its field
        error = f"{refusal.field or ''} {refusal.message}".strip()
    organizations = await who.caller.get("/v1/organizations")
    template = "members_rows.html" if wants_fragment(request) else "members.html"
    return render(
        request,
        template,
        {"found": found, "query": {k: v or "" for k, v in query.items()}, "error": error,
         "organizations": organizations},
    )  # fmt: skip


@router.get("/members/{member_id}", response_class=HTMLResponse)
async def member(request: Request, member_id: UUID, who: Who) -> Response:
    view = await who.caller.get(f"/v1/members/{member_id}")
    return render(request, "member.html", {"member": view})


@router.get("/organizations/{org_id}/present", response_class=HTMLResponse)
async def present(request: Request, org_id: UUID, who: Who, after: UUID | None = None) -> Response:
    items = await who.caller.get(
        f"/v1/organizations/{org_id}/present", limit=PAGE + 1, after=after and str(after)
    )
    shown = items[:PAGE]
    organizations = {o["org_id"]: o["name"] for o in await who.caller.get("/v1/organizations")}
    return render(
        request,
        "present.html",
        {"items": shown, "after": shown[-1]["member_id"] if len(items) > PAGE else None,
         "org_id": str(org_id), "org_name": organizations.get(str(org_id), str(org_id))},
    )  # fmt: skip


# -- outflow registration -----------------------------------------------------------------


async def _registration(
    request: Request,
    who: Signed,
    parts: Any,
    member_id: UUID,
    values: dict[str, str] | None = None,
    placed: Placed | None = None,
    status: int = 200,
) -> Response:
    view = await who.caller.get(f"/v1/members/{member_id}")
    defaults = {"period.departed_on": date.today().isoformat(), "reason.kind": "work"}
    context = _form_context(
        REGISTRATION,
        f"/members/{member_id}/register",
        values if values is not None else defaults,
        placed,
        [],
        _partner_choices(parts),
    )
    template = "step_form.html" if wants_fragment(request) else "register.html"
    return render(request, template, {**context, "member": view}, status=status)


@router.get("/members/{member_id}/register", response_class=HTMLResponse)
async def registration_form(request: Request, member_id: UUID, who: Who, parts: Parts) -> Response:
    return await _registration(request, who, parts, member_id)


@router.post("/members/{member_id}/register", response_class=HTMLResponse)
async def register(
    request: Request, member_id: UUID, values: Form, who: Who, parts: Parts
) -> Response:
    """外出登记 through the registry (which issues the certificate)."""
    body = {"member_id": str(member_id), **body_of(REGISTRATION, values)}
    try:
        key = _idempotency_key(values)
    except ValueError as bad:
        placed = Placed(general=[(await refuse(request, who, 422, str(bad))).message])
        return await _registration(request, who, parts, member_id, values, placed, 422)
    try:
        created = await who.caller.post("/v1/movements", body, idempotency_key=key)
    except ServiceRefusal as refusal:
        names = (*REGISTRATION.names, "member_id")
        placed = place_errors(names, refusal.field, refusal.message, refusal.errors)
        if "member_id" in placed.by_input:
            placed.general.append(placed.by_input.pop("member_id"))
        return await _registration(request, who, parts, member_id, values, placed, refusal.status)
    return _done(request, f"/movements/{created['movement_id']}?done=register")
