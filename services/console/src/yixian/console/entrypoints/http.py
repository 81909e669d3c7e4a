"""The console's web application: its screens, its static assets (htmx, committed in the
repository), the answer to every refusal and every unexpected error as a page, and the
headers that keep the pages to themselves (no framing, no scripts or styles from
elsewhere, nothing cached) on every answer, error pages included. Each request has a
trace of its own, which its log lines, its audit rows and the services' records share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from yixian.console.adapters.services import ServiceDown, ServiceRefusal
from yixian.console.domain import labels
from yixian.console.domain.display import beijing, flatten
from yixian.console.entrypoints.dependencies import (
    ConsoleParts,
    PageRefused,
    SignInNeeded,
    refuse,
    render,
    see_other,
    sign_in_location,
)
from yixian.contracts import new_traceparent, trace_id
from yixian.runtime import bind_trace, get_logger
from yixian.runtime.divisions import division_name
from yixian.runtime.http_errors import dotted, printable
from yixian.runtime.service import add_health_routes

from .routers import ROUTERS

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
log = get_logger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
    " img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(TEMPLATES))
    found.env.filters["flatten"] = flatten
    found.env.filters["beijing"] = beijing
    found.env.filters["division"] = lambda code: division_name(str(code)) or ""
    found.env.globals["labels"] = labels
    return found


async def _each_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """A trace for the request; an unexpected error as a page (its details in the log
    only); the security headers on every answer."""
    request.state.traceparent = parent = new_traceparent()
    with bind_trace(trace_id(parent)):
        try:
            response = await call_next(request)
        except Exception:
            log.exception("the console failed", method=request.method, path=request.url.path[:200])
            response = _error_page(
                request, 500, "内部错误",
                f"控制台处理请求时出错，已记入日志（追踪编号 {trace_id(parent)}）。",
            )  # fmt: skip
    for name, value in SECURITY_HEADERS.items():
        if name == "Cache-Control" and request.url.path.startswith("/static/"):
            continue
        response.headers.setdefault(name, value)
    return response


async def _sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
    """To the sign-in page; a form sent without a live session (another site's, or after
    sign-out) is also a refusal in the audit log."""
    if request.method != "GET":
        await refuse(request, None, 401, f"no session ({exc.reason})")
    return see_other(request, sign_in_location(request, exc.reason))


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


async def _refused(request: Request, exc: PageRefused) -> Response:
    titles = {403: "无权访问", 404: "未找到", 413: "内容过长", 415: "格式不支持"}
    return _error_page(request, exc.status, titles.get(exc.status, "请求无效"), exc.message)


async def _service_refused(request: Request, exc: ServiceRefusal) -> Response:
    """A service's refusal of what a page asked (it wrote its own audit row)."""
    titles = {401: "未登录", 403: "无权访问", 404: "未找到", 409: "状态不符", 422: "请求无效"}
    where = f"（{exc.field}）" if exc.field else ""
    return _error_page(
        request, exc.status, titles.get(exc.status, "请求被拒绝"), exc.message + where
    )


async def _service_down(request: Request, exc: ServiceDown) -> Response:
    log.warning("a service did not answer", service=exc.service, reason=exc.reason)
    return _error_page(request, 503, "服务暂不可用", f"{exc.service} {exc.reason}")


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {"loc": ("query",), "msg": "invalid"}
    field = dotted(first["loc"])
    message = f"{field}: {printable(first['msg'])}"
    refusal = await refuse(request, getattr(request.state, "signed", None), 422, message)
    return _error_page(request, 422, "请求无效", refusal.message)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return _error_page(request, 404, "未找到", "没有这个页面")  # (no words from the URL)
    return _error_page(request, exc.status_code, "请求无效", printable(exc.detail))


def create_app(
    parts: ConsoleParts, readiness: Callable[[], Awaitable[dict[str, str]]] | None = None
) -> FastAPI:
    """One node's console; ``/healthz`` and ``/readyz`` (``readiness``'s checks) as every
    service has them."""
    app = FastAPI(
        title=f"Yixian console — node {parts.node}",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.console = parts
    app.middleware("http")(_each_request)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SignInNeeded, _sign_in_needed)  # type: ignore[arg-type]
    app.add_exception_handler(PageRefused, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceRefusal, _service_refused)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceDown, _service_down)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]

    if readiness is not None:
        add_health_routes(app, parts.node, readiness)
    for router in ROUTERS:
        app.include_router(router)
    return app
