"""The schema: queries and mutations, the Decimal scalar, caches and limits."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.extensions.max_aliases import create_validator as max_aliases
from strawberry.extensions.query_depth_limiter import create_validator as max_depth
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql_schema.fast_output import FastOutputExecutionContext
from graphql_schema.mutations import Mutation
from graphql_schema.queries import Query
from graphql_schema.scalars import SCALAR_MAP

# Built once: rules made per request would defeat the validation cache (STACK-NOTES).
_LIMITS = [max_depth(12, None, None), max_aliases(30)]


class TallySchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logged once, in the view, where every error is coded (graphql_schema.asgi)."""


schema = TallySchema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
    extensions=[
        lambda: AddValidationRules(_LIMITS),
        ParserCache,
        ValidationCache,
    ],
    execution_context_class=FastOutputExecutionContext,
)
