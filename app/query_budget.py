"""A bound on the database statements one request may run.

Every statement Tally's database clients send counts against the budget of the request it
runs for (a context variable: the tasks a request starts share it). Past the limit the
statement is not sent and the request fails with BAD_REQUEST: 30 aliases over 3,000
workbooks once ran 90,000 queries for 23 s. Jobs and the CLI run without a budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Context, ContextVar, copy_context

from app.errors import BadRequest


class QueryBudget:
    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self) -> None:
        self.used += 1
        if self.used > self.limit:
            raise BadRequest(
                f"the request needs more than {self.limit:,} database queries; ask for less"
                " at once (fewer aliases, smaller pages)"
            )


_budget: ContextVar[QueryBudget | None] = ContextVar("tally_query_budget", default=None)


def count_query() -> None:
    """Called by the database clients before each statement."""
    budget = _budget.get()
    if budget is not None:
        budget.spend()


@contextmanager
def query_budget(limit: int) -> Iterator[QueryBudget]:
    budget = QueryBudget(limit)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def renew_budget(limit: int) -> QueryBudget:
    """A new budget for the rest of the current task: a subscription's next update, whose task
    outlives any one update (its task ends with the operation, and the budget with it)."""
    budget = QueryBudget(limit)
    _budget.set(budget)
    return budget


def unbudgeted_context() -> Context:
    """A copy of the current context without a request's budget: for a task started by one
    request that goes on to work for others (app.usage.group_commit's drainer), whose
    statements must not count against the request that happened to start it."""
    context = copy_context()
    context.run(_budget.set, None)
    return context
