"""Errors as the client sees them (API.md "Error codes").

Rule outcomes come back as a `Refusal` member of the mutation's union. Request errors come back
as GraphQL errors with `extensions.code`: the domain's code, INVALID_INPUT for a document or
variables GraphQL itself rejects, and INTERNAL_SERVER_ERROR, with no detail, for anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse

from app.errors import DomainError, ErrorCode, Refused
from graphql_schema.enums import ErrorCode as ErrorCodeEnum

log = logging.getLogger("tally.graphql")
INTERNAL = "INTERNAL_SERVER_ERROR"
T = TypeVar("T")


@strawberry.type(description="A rule refused the request; nothing changed.")
class Refusal:
    code: ErrorCodeEnum
    message: str


async def refusal_or(call: Callable[[], Awaitable[T]]) -> T | Refusal:
    """Run a service call, turning a rule's refusal into the union's `Refusal`."""
    try:
        return await call()
    except Refused as refused:
        return Refusal(code=refused.code, message=refused.message)


def _domain_error(error: GraphQLError) -> DomainError | None:
    original = error.original_error
    return original if isinstance(original, DomainError) else None


def is_unexpected(error: GraphQLError) -> bool:
    """A resolver failure that is not a domain error: a bug, never shown to the client."""
    return (
        error.original_error is not None and _domain_error(error) is None and not _is_input(error)
    )


def _is_input(error: GraphQLError) -> bool:
    # Parsing, validation and variable coercion fail before any resolver runs: no path.
    return error.path is None


def _client_error(error: GraphQLError) -> GraphQLError:
    domain = _domain_error(error)
    if domain is not None:
        code, message = domain.code.value, domain.message
    elif _is_input(error):
        code, message = ErrorCode.INVALID_INPUT.value, error.message
    else:
        code, message = INTERNAL, "Internal server error."
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": code},
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_client_error(e) for e in result.errors]


def log_errors(errors: list[GraphQLError]) -> None:
    """Log only what is unexpected, with its traceback; expected errors are not noise."""
    for error in errors:
        if is_unexpected(error):
            log.error("unexpected error in %s", error.path, exc_info=error.original_error)


def with_input_codes(response: GraphQLHTTPResponse) -> GraphQLHTTPResponse:
    """Syntax errors are raised by the HTTP view before any extension runs: code them here."""
    for error in response.get("errors") or []:
        extensions = error.setdefault("extensions", {})
        extensions.setdefault("code", ErrorCode.INVALID_INPUT.value)
    return response
