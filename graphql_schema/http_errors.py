"""Answers to requests that never reach execution, in the GraphQL error shape (API.md "HTTP")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

# Codes a response carries in `extensions.code`, and the HTTP status they are answered with
# when the request as a whole failed (no data).
REQUEST_STATUS = {
    "BAD_REQUEST": 400,
    "PAYLOAD_TOO_LARGE": 413,
    "REQUEST_TIMEOUT": 408,
    "SERVICE_UNAVAILABLE": 503,
}
RETRY_AFTER_SECONDS = 5  # what a client waits before retrying while the database is away


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def request_status(body: Mapping[str, Any]) -> int | None:
    """The status for a GraphQL response that failed as a whole with a request-level code."""
    if body.get("data") is not None:
        return None
    codes = {error.get("extensions", {}).get("code") for error in body.get("errors") or ()}
    statuses = [REQUEST_STATUS[c] for c in codes if c in REQUEST_STATUS]
    return max(statuses) if statuses else None
