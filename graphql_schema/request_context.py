"""Each request's id and its one log line (API.md "HTTP": X-Request-Id in and out).

The caller's X-Request-Id is kept when it is a reasonable token (at most 128 characters of
letters, digits and `.-_:`), else a new one is made; the response carries it, every log line of
the request carries it (structlog's context), and so does an audit entry (app.requests). When
the request ends, one line says what it was: method, path, status, duration, and what the
GraphQL view noted (the operation, the workspace, the outcome).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

from app import tracing
from app.logs import get_logger
from app.metrics import HTTP_DURATION, HTTP_REQUESTS
from app.requests import in_request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HEADER = b"x-request-id"
log = get_logger("tally.request")
# What the GraphQL view learns of the request, for its log line (reset per request).
_noted: ContextVar[dict[str, Any] | None] = ContextVar("tally_request_noted", default=None)


def note(**fields: Any) -> None:
    """Add fields to the current request's log line (operation, workspace_id, outcome)."""
    noted = _noted.get()
    if noted is not None:
        noted.update(fields)


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text = value.decode("latin-1")
            if _GOOD_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = request_id_of(scope)
        noted: dict[str, Any] = {}
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                message["headers"] = [*message.get("headers", []), (HEADER, request.encode())]
            await send(message)

        token = _noted.set(noted)
        started = time.perf_counter()
        try:
            with (
                in_request(request),
                structlog.contextvars.bound_contextvars(request_id=request),
                self._traced(scope) as span,
            ):
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    if scope["type"] == "http":
                        self._log(scope, status, started, noted, request, span)
        finally:
            _noted.reset(token)

    @staticmethod
    def _traced(scope: Scope) -> contextlib.AbstractContextManager[Any]:
        """A span for the request when OpenTelemetry traces are on (app.tracing)."""
        if not tracing.enabled():
            return contextlib.nullcontext()
        name = f"{scope.get('method', 'WS')} {route_label(scope.get('path', ''))}"
        return tracing.server_span(name, scope.get("headers", ()))

    @staticmethod
    def _log(
        scope: Scope,
        status: list[int],
        started: float,
        noted: dict[str, Any],
        request: str,
        span: Any,
    ) -> None:
        seconds = time.perf_counter() - started
        operation = noted.pop("metric_operation", None) or route_label(scope.get("path", ""))
        code = status[0] if status else 0
        if span is not None:
            attributes = {f"tally.{k}": v for k, v in noted.items()}
            tracing.set_attributes(span, {
                "http.request.method": scope.get("method"), "url.path": scope.get("path"),
                "http.response.status_code": code, "tally.request_id": request,
                "tally.operation": operation, **attributes,
            })  # fmt: skip
            if code >= 500:
                tracing.mark_failed(span, f"HTTP {code}")
        HTTP_REQUESTS.labels(operation=operation, status=str(code)).inc()
        HTTP_DURATION.labels(operation=operation).observe(seconds)
        log.info(
            "request",
            method=scope.get("method"),
            path=scope.get("path"),
            status=code or None,
            duration_ms=round(seconds * 1000, 2),
            **noted,
        )


_ROUTES = {
    "/healthz": "healthz",
    "/healthz/live": "healthz",
    "/healthz/ready": "healthz",
    "/metrics": "metrics",
    "/usage.csv": "usage.csv",
    "/": "dashboard",
    "/graphql": "graphql",  # GraphiQL, or a document that did not validate
}


def route_label(path: str) -> str:
    """A bounded label for what a request asked for: a client's path is never a label."""
    if path in _ROUTES:
        return _ROUTES[path]
    for prefix in ("/dashboard/", "/graphiql/"):
        if path.startswith(prefix):
            return prefix.strip("/")
    return "other"
