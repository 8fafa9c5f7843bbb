"""Parsing and validating documents within bounds, and caching only what is small.

strawberry's ParserCache and ValidationCache keep any document, however large: one 2.2 MB
document held about 126 MB, and parsing it stalled the event loop for seconds. Here a
document longer than MAX_CHARS, or of more than `max_tokens` tokens, is refused before it costs
more than a scan (graphql-core stops parsing at the token limit), and only documents of at most
CACHED_CHARS characters are cached, in a cache bounded by its total text as well as its count.
Validation is cached beside the parse, by the same key, so a large document is never kept by
either.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    parse,
)
from graphql.validation import ASTValidationRule, validate
from strawberry.extensions import SchemaExtension

from graphql_schema.request_context import note

BAD_REQUEST = "BAD_REQUEST"
MAX_CHARS = 32 * 1024  # a 32 KiB string literal or comment lexes in about 10 ms
DEFAULT_MAX_TOKENS = 2_000  # the largest document the dashboard or GraphiQL sends has ~200
CACHED_CHARS = 16 * 1024
CACHE_ENTRIES = 256
CACHE_CHARS = 512 * 1024  # all cached documents together; an AST takes ~60 bytes a character


def bad_request(message: str) -> GraphQLError:
    """An error of the request itself, answered with HTTP 400 (graphql_schema.http_errors)."""
    return GraphQLError(message, extensions={"code": BAD_REQUEST})


class _Entry:
    __slots__ = ("document", "errors")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.errors: dict[tuple[Any, ...], list[GraphQLError]] = {}


class DocumentCache:
    """LRU of parsed small documents (and their validation), bounded by count and text."""

    def __init__(self, entries: int = CACHE_ENTRIES, chars: int = CACHE_CHARS) -> None:
        self.entries, self.chars = entries, chars
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_chars(self) -> int:
        return self._chars

    def get(self, query: str) -> _Entry | None:
        entry = self._items.get(query)
        if entry is not None:
            self._items.move_to_end(query)
        return entry

    def put(self, query: str, entry: _Entry) -> None:
        if len(query) > CACHED_CHARS or query in self._items:
            return
        self._items[query] = entry
        self._chars += len(query)
        while len(self._items) > self.entries or self._chars > self.chars:
            old, _ = self._items.popitem(last=False)
            self._chars -= len(old)


_cache = DocumentCache()


def parse_bounded(query: str, max_tokens: int) -> DocumentNode:
    if len(query) > MAX_CHARS:
        raise bad_request(f"the document is {len(query):,} characters long; at most {MAX_CHARS:,}")
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLSyntaxError as error:
        if "more than" in error.message and "tokens" in error.message:
            raise bad_request(f"the document has more than {max_tokens:,} tokens") from None
        raise


def cached_document(query: str, max_tokens: int) -> _Entry:
    entry = _cache.get(query)
    if entry is None:
        entry = _Entry(parse_bounded(query, max_tokens))
        _cache.put(query, entry)
    return entry


def validate_cached(
    schema: GraphQLSchema, entry: _Entry, rules: Sequence[type[ASTValidationRule]]
) -> list[GraphQLError]:
    key = tuple(rules)
    errors = entry.errors.get(key)
    if errors is None:
        errors = entry.errors[key] = validate(schema, entry.document, rules)
    return errors


def _refused(errors: list[GraphQLError]) -> list[GraphQLError]:
    """A document over a limit is the request's fault as a whole: BAD_REQUEST, HTTP 400."""
    return [
        GraphQLError(e.message, e.nodes, extensions={**(e.extensions or {}), "code": BAD_REQUEST})
        for e in errors
    ]


def operation_label(document: DocumentNode, name: str | None) -> str:
    """How a request's log line names its operation: the client's name for it, else its
    type and first field ("mutation recordUsage")."""
    return name[:64] if name else root_label(document)


def root_label(document: DocumentNode) -> str:
    """The first operation's type and first root field; after validation, a label from a
    bounded set (the schema's root fields), fit for a metric."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            first = definition.selection_set.selections[0]
            field = first.name.value if isinstance(first, FieldNode) else "fragment"
            return f"{definition.operation.value} {field}"
    return "none"


def bounded_documents(
    limits: Sequence[type[ASTValidationRule]], max_tokens: int = DEFAULT_MAX_TOKENS
) -> Callable[[], SchemaExtension]:
    """The schema extension factory: parse within bounds, then check the `limits` (depth,
    aliases, introspection) before GraphQL's own rules; each validated once per document."""
    limit_rules = tuple(limits)

    class BoundedDocuments(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            if context.query:
                self._entry = cached_document(context.query, max_tokens)
                context.graphql_document = self._entry.document
                note(operation=operation_label(self._entry.document, context.operation_name))
            yield

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            entry = getattr(self, "_entry", None)
            if entry is not None and entry.document is context.graphql_document:
                schema = context.schema._schema
                refused = validate_cached(schema, entry, limit_rules)
                if refused:
                    context.pre_execution_errors = _refused(refused)
                else:
                    rules = context.validation_rules
                    context.pre_execution_errors = validate_cached(schema, entry, rules)
                document = context.graphql_document
                if document is not None and not context.pre_execution_errors:
                    # Valid, so its first root field is the schema's: a bounded metric label.
                    note(metric_operation=root_label(document))
            yield

    return BoundedDocuments
