"""What every screen depends on: the console's parts, the signed-in person (a session
whose key is authenticated again at every request, so a revoked key is out at once), the
area gate (a refusal is a 403 page and a row of the audit log), the CSRF check of every
form, and rendering a page or, for htmx, the fragment it asked for."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from yixian.console.adapters.node import NodeOperations
from yixian.console.adapters.services import Caller, Endpoints
from yixian.console.adapters.sessions import Session, Sessions
from yixian.console.domain import labels
from yixian.console.domain.access import ROLE_LABELS, Area, Viewer, may_enter, navigation, why_not
from yixian.runtime.apikeys import Principal
from yixian.runtime.http_errors import printable

COOKIE = "yixian_console"
"""The session cookie: a random token, HttpOnly, SameSite=Strict."""
SIGN_IN_COOKIE = "yixian_console_sign_in"
"""The sign-in form's CSRF token (double submit: the cookie and the form must agree)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_BYTES = 64 * 1024


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


def console_parts(request: Request) -> ConsoleParts:
    parts: ConsoleParts = request.app.state.console
    return parts


Parts = Annotated[ConsoleParts, Depends(console_parts)]


class SignInNeeded(Exception):
    def __init__(self, reason: str = "") -> None:
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
        raise SignInNeeded("请先登录" if not token else "登录已过期，请重新登录")
    principal = await parts.operations.principal(session.key)
    if principal is None:
        parts.sessions.end(token)
        raise SignInNeeded("密钥已被吊销，请使用有效的密钥登录")
    viewer = Viewer(principal.name, principal.role, principal.node_wide)
    request.state.signed = found = Signed(
        token, session, principal, viewer, Caller(parts.endpoints, session.key)
    )
    return found


Who = Annotated[Signed, Depends(signed)]


async def refuse(request: Request, who: Signed | None, status: int, reason: str) -> PageRefused:
    """The audit row of a refusal the console makes itself, and the refusal to raise."""
    parts = console_parts(request)
    await parts.operations.audit(
        actor=who.principal.actor if who else "anonymous",
        role=who.principal.role.value if who else None,
        action=printable(f"console {request.method} {request.url.path}"),
        outcome="denied" if status == 403 else "refused",
        detail={"status": status, "reason": reason},
    )
    return PageRefused(status, reason)


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
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise await refuse(request, who, 400, "表单内容不是有效的 UTF-8 编码") from None
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


def sign_in_location(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/sign-in?next=" + quote(target, safe="")
