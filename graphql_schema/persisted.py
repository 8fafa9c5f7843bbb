"""Automatic persisted queries, Apollo's convention (APQ): a client may send a document's hash.

A request whose `extensions.persistedQuery` is `{"version": 1, "sha256Hash": H}`:
- without `query`: the document this process was sent before under H is executed; unknown, the
  answer is HTTP 200 with the error `PersistedQueryNotFound` (code PERSISTED_QUERY_NOT_FOUND)
  and `Cache-Control: private, no-cache, must-revalidate`, and the client sends it again with
  its `query`, as Apollo's clients do;
- with `query`: H must be the SHA-256 of the query's UTF-8 text in lowercase hex (else 400
  BAD_REQUEST, nothing kept); the query is executed and kept under H.

Each server process keeps its own documents (a client may be told "not found" once by each), in
an LRU bounded by count and by total text, and only documents the document cache would keep
(graphql_schema.documents.CACHED_CHARS): an anonymous client can only push others' documents
out, and they are sent again. Parsing and validation stay cached by text (documents.py), so a
hash saves the client's bytes and the server's reading of them, not a parse.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from strawberry.http import GraphQLRequestData

from graphql_schema.documents import CACHED_CHARS

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
NO_CACHE = {"Cache-Control": "private, no-cache, must-revalidate"}
ENTRIES = 1024
CHARS = 2 * 1024 * 1024


class PersistedQueryNotFound(Exception):
    """The hash names no document this process keeps: the client sends the query with it."""


class PersistedQueryInvalid(ValueError):
    """The request's persistedQuery is malformed or does not match its query (HTTP 400)."""


class PersistedQueries:
    """Documents by their SHA-256, least recently used first out."""

    def __init__(self, entries: int = ENTRIES, chars: int = CHARS) -> None:
        self.entries, self.chars = entries, chars
        self._items: OrderedDict[str, str] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_chars(self) -> int:
        return self._chars

    def get(self, digest: str) -> str | None:
        query = self._items.get(digest)
        if query is not None:
            self._items.move_to_end(digest)
        return query

    def put(self, digest: str, query: str) -> None:
        if len(query) > CACHED_CHARS or digest in self._items:
            return
        self._items[digest] = query
        self._chars += len(query)
        while len(self._items) > self.entries or self._chars > self.chars:
            _, old = self._items.popitem(last=False)
            self._chars -= len(old)


_store = PersistedQueries()


def _hash_of(extensions: dict[str, Any]) -> str | None:
    """The requested hash, None without `persistedQuery`; PersistedQueryInvalid if malformed."""
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise PersistedQueryInvalid("extensions.persistedQuery must be an object")
    if persisted.get("version") != 1:
        raise PersistedQueryInvalid("Unsupported persisted query version")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or len(digest) != 64:
        raise PersistedQueryInvalid("persistedQuery.sha256Hash must be 64 hexadecimal digits")
    return digest.lower()


def resolve(data: GraphQLRequestData, store: PersistedQueries = _store) -> GraphQLRequestData:
    """The request with its query, found by hash or checked against it and kept."""
    if not data.extensions:
        return data
    digest = _hash_of(data.extensions)
    if digest is None:
        return data
    if data.query is None:
        query = store.get(digest)
        if query is None:
            raise PersistedQueryNotFound
        data.query = query
        return data
    if hashlib.sha256(data.query.encode("utf-8", "surrogatepass")).hexdigest() != digest:
        raise PersistedQueryInvalid("provided sha does not match query")
    store.put(digest, data.query)
    return data
