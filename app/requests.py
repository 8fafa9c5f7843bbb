"""What the domain knows of the request it runs for: its id and who makes it.

Set by the adapters (the HTTP middleware, the GraphQL context, the CLI) in context variables,
read by the audit log (R39) and the logs; code run by the scheduler has neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an API key (its id and name), or the operator."""

    name: str  # the key's name, or "operator"
    api_key_id: uuid.UUID | None = None


OPERATOR = Actor("operator")

_request_id: ContextVar[str | None] = ContextVar("tally_request_id", default=None)
_actor: ContextVar[Actor | None] = ContextVar("tally_actor", default=None)


def request_id() -> str | None:
    return _request_id.get()


def current_actor() -> Actor | None:
    return _actor.get()


@contextmanager
def in_request(request: str) -> Iterator[None]:
    token = _request_id.set(request)
    try:
        yield
    finally:
        _request_id.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def set_actor(actor: Actor) -> None:
    """For the rest of the current task (a request's: its context ends with it)."""
    _actor.set(actor)
