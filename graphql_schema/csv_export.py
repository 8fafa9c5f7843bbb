"""`GET /usage.csv`: usage history as a CSV file (R24), free like every export (R3).

Authenticated like the API (`Authorization: Bearer <api key>`, a workspace key of any role).
The rows come from the same `usage_history` as the GraphQL query; this only parses the query
string and renders them. Errors are short text: 401, 403, 400 with the message, 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app.config import Settings
from app.db import is_unavailable
from app.errors import DomainError, ErrorCode, InvalidInput
from app.history.rules import UsageDimension, dimensions, to_csv, utc
from app.history.service import usage_history
from app.validation import parse_instant
from graphql_schema.context import Context
from graphql_schema.errors import UNAVAILABLE_MESSAGE
from graphql_schema.http_errors import RETRY_AFTER_SECONDS

_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_INPUT: 400,
}


def usage_csv_endpoint(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    async def usage_csv(request: Request) -> Response:
        try:
            workspace_id = await Context(request=request, settings=settings).workspace_id()
            params = request.query_params
            start, end = _instant(params, "from"), _instant(params, "to")
            dims = _dimensions(params.get("groupBy", ""))
            rows = await usage_history(
                workspace_id,
                start,
                end,
                dims,
                params.get("workbookId"),
                params.get("tableId"),
                own_keys=True,
            )
        except DomainError as error:
            status = _STATUS.get(error.code, 400)
            return PlainTextResponse(error.message + "\n", status_code=status)
        except Exception as error:
            if not is_unavailable(error):
                raise
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return PlainTextResponse(UNAVAILABLE_MESSAGE + "\n", 503, headers=headers)
        name = f"tally-usage-{utc(start).date()}-{utc(end).date()}.csv"
        return Response(
            to_csv(rows, dims),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return usage_csv


def _instant(params: QueryParams, name: str) -> datetime:
    value = params.get(name)
    if not value:
        raise InvalidInput(f"{name} is required: an ISO 8601 instant such as 2025-01-01T00:00Z")
    return parse_instant(value, name)


def _dimensions(value: str) -> tuple[UsageDimension, ...]:
    """Comma-separated names of the GraphQL enum; empty for one total row."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    known = [d.value for d in UsageDimension]
    for n in names:
        if n not in known:
            raise InvalidInput(f"groupBy: unknown dimension {n!r}; one of {', '.join(known)}")
    return dimensions([UsageDimension(n) for n in names])
