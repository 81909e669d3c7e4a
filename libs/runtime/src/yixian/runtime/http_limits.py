"""What a request may send, enforced before the API reads a byte of its body.

A JSON body is at most :data:`MAX_JSON_BYTES`: a declared ``Content-Length`` over it is
refused at once, and a body without one (chunked) is counted as it arrives and refused when
the count passes the limit, so no more than the limit is ever read. A body must be JSON.
Streamed paths (the member import) have no size limit and accept their own media types.
Refusals are 413 and 415 in the one error body.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .http import route_path
from .http_errors import error_response

MAX_JSON_BYTES = 64 * 1024
"""The largest JSON body: a whole outflow registration takes under 2 KiB."""

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body that declared no length passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than {limit} bytes")


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class RequestLimits:
    """ASGI middleware: the size and the media type of request bodies."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        streamed: Mapping[str, frozenset[str]],
        max_json_bytes: int = MAX_JSON_BYTES,
    ) -> None:
        self.app = app
        self.streamed = streamed
        """Path → the media types it accepts, streamed without a size limit."""
        self.limit = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if (declared is None or declared.strip() == "0") and not chunked:
            await self.app(scope, receive, send)
            return
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        accepted = self.streamed.get(route_path(scope))
        if accepted is not None:
            if media and media not in accepted:
                await self._refuse(scope, receive, send, 415, f"must be one of {sorted(accepted)}")
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in _WITH_BODY and not _is_json(media):
            await self._refuse(scope, receive, send, 415, "must be application/json")
            return
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await self._refuse(scope, receive, send, 400, "is not a number", "Content-Length")
                return
            if length > self.limit:
                await self._too_large(scope, receive, send)
                return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return counted

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the body is larger than {self.limit} bytes; send less, or stream an import"
        await error_response(413, "body_too_large", message, "body")(scope, receive, send)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        reason: str,
        field: str = "Content-Type",
    ) -> None:
        code = "unsupported_media_type" if status == 415 else "malformed_body"
        response = error_response(status, code, f"{field}: {reason}", field)
        await response(scope, receive, send)
