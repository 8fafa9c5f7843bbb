"""The schema: queries, mutations and subscriptions, the custom scalars, document bounds and
caches."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import Schema
from strawberry.extensions.max_aliases import create_validator as max_aliases
from strawberry.extensions.query_depth_limiter import create_validator as max_depth
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from graphql_schema import perf
from graphql_schema.catalog import CatalogMutations, CatalogQueries
from graphql_schema.documents import DEFAULT_MAX_TOKENS, bounded_documents
from graphql_schema.events import EventMutations, EventQueries
from graphql_schema.history import HistoryQueries
from graphql_schema.mutations import Mutation as CoreMutation
from graphql_schema.queries import Query as CoreQuery
from graphql_schema.reports import ReportQueries
from graphql_schema.scalars import SCALAR_MAP
from graphql_schema.subscriptions import Subscription
from graphql_schema.topups import TopUpMutations, TopUpQueries
from graphql_schema.webhooks import WebhookMutations, WebhookQueries

MAX_DEPTH = 12
MAX_ALIASES = 30
# Built once: rules made per request would defeat the validation cache (STACK-NOTES).
_LIMITS = [max_depth(MAX_DEPTH, None, None), max_aliases(MAX_ALIASES)]
_NO_INTROSPECTION = [*_LIMITS, NoSchemaIntrospectionCustomRule]
HTTP_OPERATIONS = {OperationType.QUERY, OperationType.MUTATION}


# Query and Mutation are composed of one class per domain.
@strawberry.type
class Query(
    CoreQuery,
    EventQueries,
    TopUpQueries,
    WebhookQueries,
    HistoryQueries,
    ReportQueries,
    CatalogQueries,
):
    pass


@strawberry.type
class Mutation(CoreMutation, EventMutations, TopUpMutations, WebhookMutations, CatalogMutations):
    pass


class TallySchema(Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Over HTTP (the only caller of `execute`), queries and mutations: a subscription is
        refused (400 BAD_REQUEST) and served over the WebSocket (graphql_schema.websocket)."""
        allowed = set(allowed_operation_types or HTTP_OPERATIONS) - {OperationType.SUBSCRIPTION}
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logged once, in the view, where every error is coded (graphql_schema.asgi)."""


def _build(introspection: bool, max_tokens: int, fast_paths: perf.Mode) -> TallySchema:
    rules = _LIMITS if introspection else _NO_INTROSPECTION
    return TallySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[bounded_documents(rules, max_tokens)],
        execution_context_class=perf.install(fast_paths),
    )


schema = _build(introspection=True, max_tokens=DEFAULT_MAX_TOKENS, fast_paths="on")


@functools.cache
def schema_for(introspection: bool, max_tokens: int, fast_paths: perf.Mode) -> TallySchema:
    """The served schema for these settings (TALLY_INTROSPECTION, TALLY_MAX_TOKENS,
    TALLY_FAST_PATHS)."""
    if introspection and max_tokens == DEFAULT_MAX_TOKENS and fast_paths == "on":
        return schema
    return _build(introspection, max_tokens, fast_paths)
