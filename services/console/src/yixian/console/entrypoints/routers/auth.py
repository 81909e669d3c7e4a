"""Signing in with an API key, and out. The key is checked as every service checks it
(the registry's view of active keys); a session then stands for it, in this process only.
Every sign-in, failed sign-in and sign-out is in the audit log."""

from __future__ import annotations

import hmac
import re
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yixian.console.entrypoints.dependencies import (
    COOKIE,
    SIGN_IN_COOKIE,
    Form,
    Parts,
    Who,
    read_form,
    refuse,
    render,
)
from yixian.runtime.apikeys import parse_api_key

router = APIRouter()
_SAFE_NEXT = re.compile(r"^/(?!/)[\x21-\x7e]{0,500}$")


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this console only (never another site)."""
    return target if target and _SAFE_NEXT.match(target) and "\\" not in target else "/"


def _sign_in_page(
    request: Request, *, next_path: str, error: str = "", notice: str = "", status: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {"sign_in_token": token, "next": next_path, "error": error, "notice": notice},
        status=status,
    )
    secure = request.app.state.console.secure_cookie
    response.set_cookie(
        SIGN_IN_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/sign-in"
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None, reason: str = "") -> Response:
    return _sign_in_page(request, next_path=_next(next), notice=reason[:100])


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, parts: Parts) -> Response:
    values = await read_form(request)
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    sent = values.get("sign_in_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise await refuse(request, None, 403, "登录表单校验失败（CSRF）：请重新打开登录页")
    key = values.get("api_key", "").strip()
    next_path = _next(values.get("next"))
    principal = await parts.operations.principal(key) if key else None
    if principal is None:
        parsed = parse_api_key(key)
        await parts.operations.audit(
            actor="anonymous",
            role=None,
            action="console.sign_in",
            outcome="denied",
            detail={"reason": "unknown or revoked API key" if key else "no API key"}
            | ({"presented_key_id": str(parsed[0])} if parsed else {}),
        )
        message = "密钥无效或已被吊销" if key else "请输入 API 密钥"
        return _sign_in_page(request, next_path=next_path, error=message, status=401)
    token, _ = parts.sessions.start(key, principal.key_id)
    await parts.operations.audit(
        actor=principal.actor,
        role=principal.role.value,
        action="console.sign_in",
        outcome="ok",
        detail={"key_name": principal.name},
    )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=parts.secure_cookie, path="/"
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(_: Form, who: Who, parts: Parts) -> Response:
    parts.sessions.end(who.token)
    await parts.operations.audit(
        actor=who.principal.actor,
        role=who.principal.role.value,
        action="console.sign_out",
        outcome="ok",
    )
    response = RedirectResponse("/sign-in?reason=已退出登录", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
