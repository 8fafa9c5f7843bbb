"""Errors as the client sees them (API.md "Error codes").

Rule outcomes come back as a `Refusal` member of the mutation's union. Request errors come back
as GraphQL errors with `extensions.code`: the domain's code, INVALID_INPUT for a document or
variables GraphQL itself rejects, and INTERNAL_SERVER_ERROR, with no detail, for anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from graphql import GraphQLError

from app.db import is_unavailable
from app.errors import DomainError, ErrorCode, Refused
from graphql_schema.enums import ErrorCode as ErrorCodeEnum

log = logging.getLogger("tally.graphql")
INTERNAL = "INTERNAL_SERVER_ERROR"
UNAVAILABLE_MESSAGE = "The database is unavailable; retry in a few seconds."
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


def _is_input(error: GraphQLError) -> bool:
    """Parsing, validation and variable coercion fail before any resolver runs: no path, and
    no Python exception behind them. A path-less error with one (an extension failing) is not
    the client's fault."""
    return error.path is None and (
        error.original_error is None or isinstance(error.original_error, GraphQLError)
    )


def is_unexpected(error: GraphQLError) -> bool:
    """Not a domain error, not bad input, not a lost database: a bug, never shown to the
    client."""
    return _domain_error(error) is None and not _is_input(error) and not _unavailable(error)


def _unavailable(error: GraphQLError) -> bool:
    return error.original_error is not None and is_unavailable(error.original_error)


def client_error(error: GraphQLError) -> GraphQLError:
    domain = _domain_error(error)
    if domain is not None:
        code, message = domain.code.value, domain.message
    elif _unavailable(error):
        code, message = ErrorCode.SERVICE_UNAVAILABLE.value, UNAVAILABLE_MESSAGE
    elif _is_input(error):
        # A document over a limit was coded BAD_REQUEST where it was refused; any other
        # document or variables GraphQL rejects is the client's input.
        code = (error.extensions or {}).get("code", ErrorCode.INVALID_INPUT.value)
        message = error.message
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


def log_errors(errors: list[GraphQLError]) -> None:
    """Log only what is unexpected, with its traceback; expected errors are not noise. A lost
    database is one line, not a traceback per request."""
    for error in errors:
        if is_unexpected(error):
            log.error("unexpected error at %s", error.path, exc_info=error.original_error)
        elif _unavailable(error):
            log.warning("database unavailable at %s: %r", error.path, error.original_error)


def forget_tracebacks(errors: list[GraphQLError]) -> None:
    """Once logged, an error's traceback is only a reference cycle: its frames hold the
    execution context that holds the error, and with it the request's document and variables.
    The collector, tuned to run rarely (gc_tuning), would keep megabytes a request alive."""
    for error in errors:
        _forget(error)
        if error.original_error is not None:
            _forget(error.original_error)


def _forget(error: BaseException | None) -> None:
    seen = 0
    while error is not None and seen < 20:  # the chain of causes, bounded against a loop
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
        seen += 1
