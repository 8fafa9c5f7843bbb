"""The fast paths checked against graphql-core on every answer (TALLY_FAST_PATHS=verify).

Each object or list the fast output path completes is completed by graphql-core's own code as
well, and each list variable the fast path coerces is coerced by graphql-core too; a difference
raises `FastPathMismatch`. The test suite runs in this mode, so every GraphQL answer of the suite
is computed both ways and compared. Completing twice is safe because the fast path only takes
fields whose resolvers are pure reads of their object (graphql_schema.perf.output).
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as GraphQLCore

from graphql_schema.perf.output import FastOutputExecutionContext

MISMATCHES: list[str] = []  # every mismatch seen in this process, for the test suite to read


class FastPathMismatch(AssertionError):
    pass


def _check(what: str, fast: Any, plain: Any) -> None:
    if fast != plain:
        message = f"fast path differs from graphql-core on {what}: {fast!r} != {plain!r}"
        MISMATCHES.append(message)
        raise FastPathMismatch(message)


class VerifiedExecutionContext(FastOutputExecutionContext):
    @classmethod
    def build(cls, schema: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
        built = super().build(schema, document, *args, **kwargs)
        plain = GraphQLCore.build(schema, document, *args, **kwargs)
        if isinstance(built, list) or isinstance(plain, list):  # errors: messages must agree
            _check("variable errors", _messages(built), _messages(plain))
        else:
            _check("variables", built.variable_values.coerced, plain.variable_values.coerced)
        return built

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        fast = None
        if plan is not None:
            try:
                fast = self._complete_plain(plan, source_value)
            except Exception:
                fast = None  # handed back: graphql-core's answer is the only one
        plain = GraphQLCore.execute_fields(
            self, parent_type, source_value, path, grouped_field_set, position_context
        )
        if fast is not None and not self.is_awaitable(plain):
            _check(f"an object of {parent_type.name} at {_at(path)}", fast, plain)
        return plain

    def complete_list_value(
        self,
        return_type: Any,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        fast = None
        if type(result) is list and self._plain_allowed:
            try:
                fast = self._complete_plain_list(
                    return_type.of_type, field_details_list, info, result
                )
            except Exception:
                fast = None
        plain = GraphQLCore.complete_list_value(
            self, return_type, field_details_list, info, path, result, position_context
        )
        if fast is not None and not self.is_awaitable(plain):
            _check(f"a list at {_at(path)}", fast, plain)
        return plain


def _messages(built: Any) -> list[str] | None:
    return [error.message for error in built] if isinstance(built, list) else None


def _at(path: Path | None) -> str:
    return ".".join(str(key) for key in path.as_list()) if path is not None else "the root"
