"""Signing in with an API key, and out. The key is checked as every service checks it
(the registry's view of active keys); a session then stands for it, in this process only.
Every sign-in, failed sign-in and sign-out is in the audit log."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yixian.console.adapters.sessions import SessionsFull
from yixian.console.domain import labels
from yixian.console.entrypoints.dependencies import (
    COOKIE,
    SIGN_IN_COOKIE,
    Form,
    Parts,
    Who,
    client_address,
    read_form,
    refuse,
    render,
    request_trace_id,
)
from yixian.runtime.apikeys import parse_api_key

router = APIRouter()
_SAFE_NEXT = re.compile(r"^/(?!/)[\x21-\x7e]{0,500}$")


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this console only (never another site)."""
    return target if target and _SAFE_NEXT.match(target) and "\\" not in target else "/"


def _sign_in_page(
    request: Request,
    *,
    next_path: str,
    error: str = "",
    notice: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {"sign_in_token": token, "next": next_path, "error": error, "notice": notice},
        status=status,
        headers=headers,
    )
    secure = request.app.state.console.secure_cookie
    response.set_cookie(
        SIGN_IN_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/sign-in"
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None, reason: str = "") -> Response:
    """The sign-in page; ``reason`` is a code (``labels.SIGN_IN_REASONS``), never words."""
    return _sign_in_page(
        request, next_path=_next(next), notice=labels.SIGN_IN_REASONS.get(reason, "")
    )


async def _audit_sign_in(
    request: Request, parts: Any, outcome: str, actor: str = "anonymous",
    role: str | None = None, **detail: Any,
) -> None:  # fmt: skip
    await parts.operations.audit(
        actor=actor, role=role, action="console.sign_in", outcome=outcome, detail=detail,
        trace_id=request_trace_id(request),
    )  # fmt: skip


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, parts: Parts) -> Response:
    """Sign in with an API key. Tries are limited per client address and per presented key
    id (a refusal of too many is a 429, its first one audited); a key keeps a few sessions
    (its oldest gives way); when every place is taken by a live session the answer is a
    503, never someone else's session ended. Signing in again ends the browser's session."""
    address = client_address(request)
    by_address = parts.limits.by_address.take(address)
    values = await read_form(request)
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    sent = values.get("sign_in_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise await refuse(request, None, 403, "登录表单校验失败（CSRF）：请重新打开登录页")
    key = values.get("api_key", "").strip()
    next_path = _next(values.get("next"))
    parsed = parse_api_key(key)
    presented = {"presented_key_id": str(parsed[0])} if parsed else {}
    throttled = by_address
    if by_address.allowed:
        throttled = parts.limits.by_key.take(str(parsed[0])) if parsed else by_address
    if not throttled.allowed:
        if throttled.first_refusal:
            await _audit_sign_in(
                request, parts, "refused", reason="too many sign-in attempts",
                limited_by="address" if throttled is by_address else "key", address=address,
                **presented,
            )  # fmt: skip
        return _sign_in_page(
            request, next_path=next_path, status=429,
            error=f"登录尝试过于频繁，请 {throttled.retry_after} 秒后再试",
            headers={"Retry-After": str(throttled.retry_after)},
        )  # fmt: skip
    principal = await parts.operations.principal(key) if key else None
    if principal is None:
        await _audit_sign_in(
            request, parts, "denied",
            reason="unknown or revoked API key" if key else "no API key", **presented,
        )  # fmt: skip
        message = "密钥无效或已被吊销" if key else "请输入 API 密钥"
        return _sign_in_page(request, next_path=next_path, error=message, status=401)
    ended = parts.sessions.end(request.cookies.get(COOKIE))
    try:
        token, _ = parts.sessions.start(key, principal.key_id)
    except SessionsFull:
        await _audit_sign_in(
            request, parts, "refused", principal.actor, principal.role.value,
            reason="every session place is taken",
        )  # fmt: skip
        return _sign_in_page(
            request, next_path=next_path, status=503, headers={"Retry-After": "60"},
            error="登录人数已满，请稍后再试",
        )  # fmt: skip
    await _audit_sign_in(
        request, parts, "ok", principal.actor, principal.role.value,
        key_name=principal.name, **({"ended_session": True} if ended else {}),
    )  # fmt: skip
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=parts.secure_cookie, path="/"
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, _: Form, who: Who, parts: Parts) -> Response:
    parts.sessions.end(who.token)
    await parts.operations.audit(
        actor=who.principal.actor,
        role=who.principal.role.value,
        action="console.sign_out",
        outcome="ok",
        trace_id=request_trace_id(request),
    )
    response = RedirectResponse("/sign-in?reason=signed_out", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
