"""The parse and validation cache is bounded by its text as well as its count."""

import pytest
from graphql import GraphQLError

from graphql_schema.documents import (
    CACHED_CHARS,
    DocumentCache,
    _Entry,
    parse_bounded,
)


def entry(query: str) -> _Entry:
    return _Entry(parse_bounded(query, 10_000))


def doc(n: int, size: int = 0) -> str:
    return f"{{ a{n}: plans {{ code }} }}" + " " * size


def test_the_cache_evicts_the_least_recently_used_past_its_count():
    cache = DocumentCache(entries=3, chars=10_000)
    for n in range(3):
        cache.put(doc(n), entry(doc(n)))
    assert cache.get(doc(0)) is not None  # now the most recent
    cache.put(doc(3), entry(doc(3)))
    assert [cache.get(doc(n)) is not None for n in range(4)] == [True, False, True, True]
    assert len(cache) == 3


def test_the_cache_evicts_past_its_total_text_and_never_keeps_a_large_document():
    cache = DocumentCache(entries=100, chars=3_000)
    for n in range(3):
        cache.put(doc(n, 1_000), entry(doc(n, 1_000)))
    assert len(cache) == 2 and cache.total_chars <= 3_000
    assert cache.get(doc(0, 1_000)) is None
    large = doc(9, CACHED_CHARS)
    cache.put(large, entry(large))
    assert cache.get(large) is None and len(cache) == 2


def test_a_document_over_the_token_limit_is_refused_as_a_bad_request():
    with pytest.raises(GraphQLError) as refused:
        parse_bounded("{ " + "a " * 50 + "}", 20)
    assert refused.value.message == "the document has more than 20 tokens"
    assert refused.value.extensions == {"code": "BAD_REQUEST"}
