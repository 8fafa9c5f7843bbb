"""List variables coerced by code compiled once per type, for `recordUsageBatch`'s 1,000 items.

graphql-core coerces a variable value by walking its type afresh for every value, after a
separate walk that checks the nesting depth: for a batch of 1,000 items that is about 14,000
calls and a sixth of the server's work per batch (bench/batch.py). Here each list variable's
type is turned once into nested closures that do the same steps in the same order, each leaf
through the type's own `coerce_input_value`, as graphql-core does.

The fast path only ever answers with a value graphql-core would have produced. On anything it
does not take (a `@oneOf` input, a recursive input type, a variable left to its default, an
iterator) or any invalid value, it steps aside and graphql-core coerces the request as usual,
errors included.
`tests/unit/test_fast_variables.py` compares the two on valid and invalid inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLSchema,
    ListTypeNode,
    NonNullTypeNode,
    Undefined,
    get_operation_ast,
    is_input_object_type,
    is_input_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_required_input_field,
    parse_type,
    print_ast,
    type_from_ast,
)
from graphql.pyutils import is_iterable
from graphql.utilities.coerce_input_value import coerce_default_value
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

Coerce = Callable[[Any], Any]


class _Invalid(Exception):
    """The value is not valid: graphql-core coerces it again to say why."""


class _Unsupported(Exception):
    """A type this module leaves to graphql-core."""


def compile_coercer(type_: GraphQLInputType) -> Coerce | None:
    """A function giving what `coerce_input_value(value, type_)` gives, raising `_Invalid`
    where that returns Undefined; None for a type left to graphql-core."""
    try:
        return _compile(type_, frozenset())
    except _Unsupported:
        return None


def _compile(type_: GraphQLInputType, seen: frozenset[str]) -> Coerce:
    if is_non_null_type(type_):
        return _non_null(_compile(type_.of_type, seen))
    if is_list_type(type_):
        return _list(_compile(type_.of_type, seen))
    if is_input_object_type(type_):
        return _input_object(type_, seen)
    if is_leaf_type(type_):
        return _leaf(type_.coerce_input_value)
    raise _Unsupported


def _non_null(inner: Coerce) -> Coerce:
    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            raise _Invalid
        return inner(value)

    return coerce


def _list(inner: Coerce) -> Coerce:
    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not is_iterable(value):  # a non-list value is a list of one
            return [inner(value)]
        if type(value) not in (list, tuple):
            raise _Invalid  # another iterable (JSON gives none): graphql-core reads it, once
        return [inner(item) for item in value]

    return coerce


def _leaf(parse: Callable[[Any], Any]) -> Coerce:
    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        try:
            result = parse(value)
        except Exception:  # graphql-core takes any error for an invalid value
            raise _Invalid from None
        if result is Undefined:
            raise _Invalid
        return result

    return coerce


def _input_object(type_: GraphQLInputObjectType, seen: frozenset[str]) -> Coerce:
    if type_.is_one_of or type_.name in seen:
        raise _Unsupported
    inner = seen | {type_.name}
    names = frozenset(type_.fields)
    # (input name, output name, coercer, required, default or Undefined)
    fields = []
    for name, field in type_.fields.items():
        required = is_required_input_field(field)
        default = Undefined if required else coerce_default_value(field)
        coerce_field = _compile(field.type, inner)
        fields.append((name, field.out_name or name, coerce_field, required, default))
    out_type = type_.out_type

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not isinstance(value, dict):
            raise _Invalid
        if not names.issuperset(value) and any(
            k not in names and v is not Undefined for k, v in value.items()
        ):
            raise _Invalid  # a field the type does not have
        coerced: dict[str, Any] = {}
        for name, out_name, field_coerce, required, default in fields:
            field_value = value.get(name, Undefined)
            if field_value is Undefined:
                if required:
                    raise _Invalid
                if default is not Undefined:
                    coerced[out_name] = default
            else:
                coerced[out_name] = field_coerce(field_value)
        return out_type(coerced)

    return coerce


@functools.lru_cache(maxsize=256)
def _coercer_for(schema: GraphQLSchema, type_name: str) -> Coerce | None:
    """Per schema and spelled variable type ("[RecordUsageInput!]!"), compiled once."""
    type_ = type_from_ast(schema, parse_type(type_name))
    nullable = type_.of_type if is_non_null_type(type_) else type_
    if not is_list_type(nullable) or not is_input_type(type_):
        return None  # (a list of outputs: `compile_coercer` would give None too)
    return compile_coercer(type_)


def fast_list_variables(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    raw: dict[str, Any] | None,
) -> dict[str, Any]:
    """The list variables of the operation coerced here, by name; empty when none could be."""
    if not raw:
        return {}
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return {}
    taken: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        value = raw.get(name, Undefined)
        if value is Undefined or value is None:
            continue  # defaults and nulls: graphql-core's own cheap path
        spelled = definition.type
        inner = spelled.type if isinstance(spelled, NonNullTypeNode) else spelled
        if not isinstance(inner, ListTypeNode):
            continue  # not a list: graphql-core's own path, without printing the type
        coerce = _coercer_for(schema, print_ast(spelled))
        if coerce is None:
            continue
        try:
            taken[name] = coerce(value)
        except _Invalid:
            return {}  # graphql-core coerces the whole request again, and reports why
    return taken


class FastVariablesExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution context, with list variables coerced by `fast_list_variables`.

    The rest of `build` is graphql-core's own: it sees an empty list in place of each variable
    taken here (valid for any list type, and cheap), and the value coerced here replaces it.
    """

    @classmethod
    def build(
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        taken = fast_list_variables(schema, document, operation_name, raw_variable_values)
        if not taken:
            return super().build(
                schema, document, root_value, context_value, raw_variable_values,
                operation_name, *args, **kwargs,
            )  # fmt: skip
        assert raw_variable_values is not None
        placeholders = {**raw_variable_values, **{name: [] for name in taken}}
        built = super().build(
            schema, document, root_value, context_value, placeholders, operation_name,
            *args, **kwargs,
        )  # fmt: skip
        if isinstance(built, list):  # errors in the other variables or the operation
            return built
        values = built.variable_values
        for name, value in taken.items():
            values.coerced[name] = value
            values.sources[name] = values.sources[name]._replace(value=raw_variable_values[name])
        return built
