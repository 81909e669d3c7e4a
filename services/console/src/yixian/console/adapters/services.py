"""The node's services over HTTP: the registry and notify with the signed-in person's API
key, so that each authorizes, audits and answers exactly as for any other caller; sync's
link endpoints (which take no key: the console lets only the node's operators reach them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


class ServiceRefusal(Exception):
    """A 4xx of a service: its error body (``error``, ``message``, ``field``, ``errors``)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        field: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.errors = errors or []


class ServiceDown(Exception):
    """A service did not answer, or answered with a 5xx."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the node's services listen, and the clients that reach them."""

    registry: httpx.AsyncClient
    sync: httpx.AsyncClient
    notify: httpx.AsyncClient | None = None
    urls: Mapping[str, str] = field(default_factory=dict)

    async def aclose(self) -> None:
        for client in (self.registry, self.sync, self.notify):
            if client is not None:
                await client.aclose()


async def call(
    client: httpx.AsyncClient,
    service: str,
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """One request; its JSON answer. ServiceRefusal on a 4xx, ServiceDown otherwise."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
    try:
        response = await client.request(
            method, path, json=body if method != "GET" else None, params=query, headers=sent
        )
    except httpx.HTTPError as exc:
        raise ServiceDown(service, f"did not answer ({type(exc).__name__})") from exc
    if response.status_code >= 500:
        raise ServiceDown(service, f"answered {response.status_code}")
    if response.status_code >= 400:
        raise _refusal(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _refusal(response: httpx.Response) -> ServiceRefusal:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ServiceRefusal(response.status_code, "error", response.text[:500] or "refused")
    errors = body.get("errors")
    return ServiceRefusal(
        response.status_code,
        str(body.get("error", "error")),
        str(body.get("message", body.get("detail", "refused"))),
        body.get("field"),
        errors if isinstance(errors, list) else None,
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in person's requests to the registry and notify, with the person's key
    and the console request's ``traceparent`` (the services' records continue its trace)."""

    endpoints: Endpoints
    key: str
    traceparent: str | None = None

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"traceparent": self.traceparent} if self.traceparent else {}
        return headers | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})

    async def get(self, path: str, **params: Any) -> Any:
        return await call(self.endpoints.registry, "registry", "GET", path, key=self.key,
                          params=params, headers=self._headers())  # fmt: skip

    async def post(self, path: str, body: Any, idempotency_key: str | None = None) -> Any:
        return await call(
            self.endpoints.registry, "registry", "POST", path, key=self.key, body=body,
            headers=self._headers(idempotency_key),
        )  # fmt: skip

    async def notices(self, **params: Any) -> Any:
        if self.endpoints.notify is None:
            raise ServiceDown("notify", "no notify service is configured (YIXIAN_NOTIFY_URL)")
        return await call(self.endpoints.notify, "notify", "GET", "/v1/notices", key=self.key,
                          params=params, headers=self._headers())  # fmt: skip


async def links(endpoints: Endpoints) -> list[dict[str, Any]]:
    """Sync's view of each partner link."""
    found: list[dict[str, Any]] = await call(endpoints.sync, "sync", "GET", "/v1/links")
    return found


async def link_action(endpoints: Endpoints, partner: str, action: str) -> Any:
    """``anti-entropy`` or ``status-request`` on the link with ``partner``."""
    return await call(endpoints.sync, "sync", "POST", f"/v1/links/{partner}/{action}")


async def readiness(endpoints: Endpoints) -> dict[str, dict[str, Any]]:
    """Each service's ``/readyz``: whether it answered, is ready, and what it says."""
    found: dict[str, dict[str, Any]] = {}
    for name, client in (
        ("registry", endpoints.registry),
        ("sync", endpoints.sync),
        ("notify", endpoints.notify),
    ):
        if client is None:
            continue
        try:
            response = await client.get("/readyz")
            body = response.json()
            found[name] = {
                "up": True,
                "ready": response.status_code == 200,
                "checks": body.get("checks", {}),
                "degraded": body.get("degraded", []),
            }
        except (httpx.HTTPError, ValueError) as exc:
            found[name] = {"up": False, "ready": False, "checks": {}, "degraded": [],
                           "error": type(exc).__name__}  # fmt: skip
    return found
