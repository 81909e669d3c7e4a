"""What every screen depends on: the console's parts, the signed-in person (a session
whose key is authenticated again at every request, so a revoked key is out at once), the
area gate (a refusal is a 403 page and a row of the audit log), the CSRF check of every
form, and rendering a page or, for htmx, the fragment it asked for."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from yixian.console.adapters.node import NodeOperations
from yixian.console.adapters.services import Caller, Endpoints
from yixian.console.adapters.sessions import Session, Sessions
from yixian.console.adapters.throttle import Limits
from yixian.console.domain import labels
from yixian.console.domain.access import ROLE_LABELS, Area, Viewer, may_enter, navigation, why_not
from yixian.contracts import trace_id
from yixian.runtime import get_logger
from yixian.runtime.apikeys import Principal
from yixian.runtime.http_errors import printable

COOKIE = "yixian_console"
"""The session cookie: a random token, HttpOnly, SameSite=Strict."""
SIGN_IN_COOKIE = "yixian_console_sign_in"
"""The sign-in form's CSRF token (double submit: the cookie and the form must agree)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
MAX_ID = 2**63 - 1
"""The largest number a PostgreSQL bigint holds: every id and sequence number the console
passes on is at most this."""
MAX_AUDITED_PATH = 200
"""A refused request's path is kept in the audit row up to this many characters."""
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ConsoleParts:
    """What the screens of one node's console work with (``app.state.console``)."""

    node: str
    node_name: str
    partners: tuple[str, ...]
    endpoints: Endpoints
    operations: NodeOperations
    sessions: Sessions
    templates: Jinja2Templates
    secure_cookie: bool = False
    limits: Limits = field(default_factory=Limits)


def console_parts(request: Request) -> ConsoleParts:
    parts: ConsoleParts = request.app.state.console
    return parts


Parts = Annotated[ConsoleParts, Depends(console_parts)]


class SignInNeeded(Exception):
    """No live session; ``reason`` is a code of ``labels.SIGN_IN_REASONS``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PageRefused(Exception):
    """A page the console itself refuses (its status and what it says)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Signed:
    """The signed-in person of one request."""

    token: str
    session: Session
    principal: Principal
    viewer: Viewer
    caller: Caller


async def signed(request: Request, parts: Parts) -> Signed:
    """The person signed in; SignInNeeded without a live session or when the key has
    been revoked since (the session then ends)."""
    token = request.cookies.get(COOKIE)
    session = parts.sessions.find(token)
    if session is None or token is None:
        raise SignInNeeded("expired" if token else "needed")
    principal = await parts.operations.principal(session.key)
    if principal is None:
        parts.sessions.end(token)
        raise SignInNeeded("revoked")
    viewer = Viewer(principal.name, principal.role, principal.node_wide)
    caller = Caller(parts.endpoints, session.key, traceparent(request))
    request.state.signed = found = Signed(token, session, principal, viewer, caller)
    return found


Who = Annotated[Signed, Depends(signed)]


def traceparent(request: Request) -> str | None:
    """The traceparent of this request (the services' records of it continue its trace)."""
    found: str | None = getattr(request.state, "traceparent", None)
    return found


def request_trace_id(request: Request) -> str | None:
    """The trace id of this request, for the audit rows it writes."""
    found = traceparent(request)
    return trace_id(found) if found else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def route_action(request: Request) -> str:
    """``console <method> <route>``: the route's template (``/node/dead-letters/{id}``),
    not the path a caller chose; a path no route took, cut short."""
    route = getattr(request.scope.get("route"), "path", None)
    return printable(f"console {request.method} {route or request.url.path[:MAX_AUDITED_PATH]}")


async def refuse(request: Request, who: Signed | None, status: int, reason: str) -> PageRefused:
    """The audit row of a refusal the console makes itself, and the refusal to raise. Of
    people not signed in, a client address's refusals are recorded at a bounded rate (a
    flood of them is one row per few seconds, and a warning in the log)."""
    parts = console_parts(request)
    if who is None and not parts.limits.anonymous.take(client_address(request)).allowed:
        log.warning("anonymous refusal not audited: too many", address=client_address(request),
                    action=route_action(request), status=status)  # fmt: skip
        return PageRefused(status, reason)
    await parts.operations.audit(
        actor=who.principal.actor if who else "anonymous",
        role=who.principal.role.value if who else None,
        action=route_action(request),
        outcome="denied" if status == 403 else "refused",
        detail={"status": status, "reason": printable(reason),
                "path": printable(request.url.path[:MAX_AUDITED_PATH])},
        trace_id=request_trace_id(request),
    )  # fmt: skip
    return PageRefused(status, printable(reason))


def entering(area: Area) -> Callable[..., Awaitable[Signed]]:
    """A dependency: the signed-in person, if the role may enter ``area`` (else a 403 page,
    audited)."""

    async def allowed(request: Request, who: Who) -> Signed:
        if not may_enter(who.viewer, area):
            raise await refuse(request, who, 403, why_not(who.viewer, area))
        return who

    return allowed


Operator = Annotated[Signed, Depends(entering(Area.NODE))]
Trail = Annotated[Signed, Depends(entering(Area.TRAIL))]


async def read_form(request: Request, who: Signed | None = None) -> dict[str, str]:
    """The fields of a form post (``application/x-www-form-urlencoded``), each once."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise await refuse(request, who, 415, "表单须以 application/x-www-form-urlencoded 提交")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise await refuse(request, who, 413, "表单内容过长（上限 64 KiB）")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise await refuse(request, who, 400, "表单内容不是有效的 UTF-8 编码") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise await refuse(
            request, who, 400, f"表单字段过多（上限 {MAX_FORM_FIELDS} 个）"
        ) from None
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


def csrf_ok(expected: str, request: Request, values: Mapping[str, str]) -> bool:
    sent = request.headers.get(CSRF_HEADER) or values.get(CSRF_FIELD) or ""
    return hmac.compare_digest(sent.encode(), expected.encode())


async def posted(request: Request, who: Who) -> dict[str, str]:
    """The fields of a signed-in person's form, once its CSRF token is checked (a form
    from another site, or an old page, is a 403, audited)."""
    values = await read_form(request, who)
    if not csrf_ok(who.session.csrf, request, values):
        raise await refuse(request, who, 403, "表单校验失败（CSRF）：请刷新页面后重新提交")
    return values


Form = Annotated[dict[str, str], Depends(posted)]


def wants_fragment(request: Request) -> bool:
    """An htmx request for a part of a page (not a boosted whole page)."""
    return request.headers.get("HX-Request") == "true"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page (or fragment) with what every template uses: the person, the navigation,
    the CSRF token, the node and the words."""
    parts = console_parts(request)
    who: Signed | None = getattr(request.state, "signed", None)
    common = {
        "node": parts.node,
        "node_name": parts.node_name,
        "who": who,
        "role_label": ROLE_LABELS.get(who.viewer.role, "") if who else "",
        "nav": navigation(who.viewer) if who else [],
        "csrf": who.session.csrf if who else "",
        "path": request.url.path,
        "labels": labels,
        "fragment": wants_fragment(request),
    }
    response = parts.templates.TemplateResponse(
        request, template, {**common, **(context or {})}, status_code=status
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def sign_in_location(request: Request, reason: str) -> str:
    """The sign-in page, coming back here after it; ``reason``: a code of
    ``labels.SIGN_IN_REASONS``."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/sign-in?next={quote(target, safe='')}&reason={quote(reason, safe='')}"


def see_other(request: Request, location: str) -> Response:
    """To ``location`` after a form (htmx follows ``HX-Redirect``). Headers are Latin-1:
    anything else in the location is percent-encoded."""
    safe = quote(location, safe="/?&=%#:;,+@!$'()*~")
    if wants_fragment(request):
        return Response(status_code=204, headers={"HX-Redirect": safe})
    return RedirectResponse(safe, status_code=303)
