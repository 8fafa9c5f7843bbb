"""Objects whose selected fields are all plain reads, completed without graphql-core's walk.

For each field of each object, graphql-core builds a path and a resolve-info, calls the
resolver (strawberry builds its own Info around it), then completes the value by walking its
type; for each item of a list it also resolves the item's type and collects its selection.
For the 1,000 results of a `recordUsageBatch` that was about a fifth of the server's
instructions per batch (callgrind, bench/batch.py); for a page of ledger entries or charges it
is most of the request.

Here each selection of an object type is looked at once per request. When every field in it
is a leaf (a scalar or an enum, nullable or not) read by one of strawberry's plain resolvers
(strawberry's own field class, not a subclass):

- a field with no resolver, which strawberry reads with its default resolver, or
- a synchronous method taking only `self`: no arguments, no info, no extensions,

and no schema extension wraps resolvers, the object is completed by calling those readers and
each leaf type's own `coerce_output_value`, as graphql-core does. (Strawberry's exception
handlers never apply to a leaf field: they answer with an object type of a union.) A list of
such objects, or of a strawberry union's objects, is completed in one loop.

The answer is always the one graphql-core would give. On a value it would not pass through
(null in a non-null field, an exception, an awaitable, a leaf that does not coerce, an item of
no type it can tell) the fast path drops what it built and graphql-core completes that object,
or that whole list, again from the start, errors included. So a reader may run twice for one
answer: **a resolver this module takes must be a pure read of its object**, as every
`self`-only resolver in graphql_schema/types is. `tests/unit/test_fast_output.py` compares the two.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLAbstractType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLUnionType,
    Undefined,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path
from strawberry.types.field import StrawberryField

from graphql_schema.perf.variables import FastVariablesExecutionContext

Read = Callable[[Any], Any]
# (response name, reader, coerce_output_value, non-null); a constant in place of `coerce`
# where the reader is None (__typename).
Step = tuple[str, Read | None, Any, bool]
_PLAIN = frozenset({str, int, float, bool})  # values that are never exceptions nor awaitables


def reader_of(field: StrawberryField) -> Read | None:
    """What strawberry's resolver for `field` returns from a source object, as a function of
    the source alone; None when strawberry would do more (arguments, info, extensions)."""
    if field.extensions or field.is_async or field.arguments:
        return None
    resolver = field.base_resolver
    if resolver is None:  # strawberry's basic field: default_resolver(source, python_name)
        if field.default_resolver is getattr:
            return operator.attrgetter(field.python_name)
        default, name = field.default_resolver, field.python_name
        return lambda source: default(source, name)
    if resolver.info_parameter or resolver.root_parameter or resolver.parent_parameter:
        return None
    function = resolver.wrapped_func
    if not callable(function):
        return None
    if resolver.self_parameter:
        return function
    return lambda _source: function()


def _strawberry_union(type_: GraphQLAbstractType) -> bool:
    """A union whose type resolver is strawberry's own, which answers with a type name or
    raises, never with an awaitable, and reads nothing but the object."""
    resolver = type_.resolve_type
    return isinstance(type_, GraphQLUnionType) and getattr(resolver, "__qualname__", "") == (
        "StrawberryUnion.get_type_resolver.<locals>._resolve_union_type"
    )


class _Fallback(Exception):
    """graphql-core completes this object again, and says what is wrong with it."""


class FastOutputExecutionContext(FastVariablesExecutionContext):
    """graphql-core's execution (with fast list variables), objects of plain leaf fields
    completed by `_complete_plain`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(grouped field set) -> (the set, kept alive so the id stays its own, plan or None)
        self._plans: dict[int, tuple[GroupedFieldSet, list[Step] | None]] = {}
        manager = self.middleware_manager  # schema extensions that wrap every resolver
        self._plain_allowed = manager is None or not manager.middlewares

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        if plan is not None:
            try:
                return self._complete_plain(plan, source_value)
            except Exception:
                pass  # graphql-core completes it again, and reports what is wrong
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is list and self._plain_allowed:
            try:
                return self._complete_plain_list(
                    return_type.of_type, field_details_list, info, result
                )
            except Exception:
                pass  # graphql-core completes the whole list again, and reports what is wrong
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _complete_plain_list(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        items: list[Any],
    ) -> list[Any]:
        """A list of objects (or of a union's or an interface's objects) each of which
        `_complete_plain` takes; raises `_Fallback` on anything else."""
        if any(details.node.directives for details in field_details_list):
            raise _Fallback  # @stream among them
        non_null = is_non_null_type(item_type)
        named = get_nullable_type(item_type)
        # Exactly one is set: the union whose items tell their own type, or the items' type.
        abstract: GraphQLAbstractType | None = None
        object_type: GraphQLObjectType | None = None
        if is_abstract_type(named):
            if not _strawberry_union(named):
                raise _Fallback  # an interface's resolver may answer with an awaitable
            abstract = named
        elif is_object_type(named):
            object_type = named
        else:
            raise _Fallback  # leaves and nested lists: graphql-core's own loop
        completed: list[Any] = []
        is_awaitable = self.is_awaitable
        for item in items:
            if item is None or item is Undefined:
                if non_null:
                    raise _Fallback
                completed.append(None)
                continue
            if isinstance(item, Exception) or is_awaitable(item):
                raise _Fallback
            runtime = self._runtime(abstract, item, info) if abstract is not None else object_type
            if runtime is None or runtime.is_type_of is not None:
                raise _Fallback
            grouped, deferred, *_ = self.collect_subfields(runtime, field_details_list)
            plan = None if deferred else self._plan(runtime, grouped)
            if plan is None:
                raise _Fallback
            completed.append(self._complete_plain(plan, item))
        return completed

    def _runtime(
        self, abstract: GraphQLAbstractType, item: Any, info: GraphQLResolveInfo
    ) -> GraphQLObjectType:
        """The object type of `item` if graphql-core would accept it for `abstract`."""
        resolve = abstract.resolve_type
        if resolve is None:  # never for a strawberry union (`_strawberry_union`)
            raise _Fallback
        name = resolve(item, info, abstract)
        if not isinstance(name, str):
            raise _Fallback
        runtime = self.schema.get_type(name)
        if not is_object_type(runtime) or not self.schema.is_sub_type(abstract, runtime):
            raise _Fallback
        return runtime

    def _complete_plain(self, plan: list[Step], source: Any) -> dict[str, Any]:
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        for name, read, coerce, non_null in plan:
            if read is None:
                results[name] = coerce
                continue
            value = read(source)
            if value is None or value is Undefined:
                if non_null:
                    raise _Fallback
                results[name] = None
                continue
            if type(value) not in _PLAIN and (isinstance(value, Exception) or is_awaitable(value)):
                raise _Fallback
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                raise _Fallback
            results[name] = coerced
        return results

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[Step] | None:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        plan = _plan_of(parent_type, grouped_field_set) if self._plain_allowed else None
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan


def _plan_of(
    parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
) -> list[Step] | None:
    steps: list[Step] = []
    for response_name, details in grouped_field_set.items():
        first = details[0]
        node = first.node
        if first.fragment_variable_values is not None or node.arguments or node.directives:
            return None
        name = node.name.value
        if name == "__typename":
            steps.append((response_name, None, parent_type.name, True))
            continue
        field_def = parent_type.fields.get(name)
        if field_def is None or field_def.args:
            return None
        field = field_def.extensions.get("strawberry-definition")
        expected = getattr(field_def.resolve, "_is_default", None)
        # Exactly strawberry's class: a subclass may read differently (its own get_result).
        if type(field) is not StrawberryField or expected is not (field.base_resolver is None):
            return None
        read = reader_of(field)
        type_ = field_def.type
        non_null = is_non_null_type(type_)
        leaf = type_.of_type if non_null else type_
        if read is None or not is_leaf_type(leaf):
            return None
        steps.append((response_name, read, leaf.coerce_output_value, non_null))
    return steps
