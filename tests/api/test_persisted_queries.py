"""Automatic persisted queries (Apollo's APQ convention) on POST and GET /graphql.

A hash alone is PERSISTED_QUERY_NOT_FOUND (HTTP 200, not cached) until the query has been sent
with it; then the hash alone runs it, with its own variables. A hash that is not the query's,
another version or a malformed persistedQuery is 400 BAD_REQUEST and keeps nothing. The store
is bounded by count and by text.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from graphql_schema.documents import CACHED_CHARS
from graphql_schema.persisted import PersistedQueries
from tests.helpers import Api

RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Charge { results dataCredits } ... on Refusal { code } } }"""


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(digest: str, version: int = 1) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def post(api: Api, body: dict, key: str):
    return await api.client.post("/graphql", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_a_hash_runs_its_query_once_the_query_was_sent_with_it(api: Api) -> None:
    tenant = await api.create_workspace("launch")
    workbook = await api.create_workbook(tenant.admin_key)
    query = RECORD + f" # {uuid.uuid4()}"  # a document no other test has sent
    digest = sha(query)

    def usage(n: int) -> dict:
        return {
            "i": {
                "workbookId": workbook,
                "kind": "ENRICHMENT",
                "provider": "linkedin",
                "dataType": "profile",
                "results": n,
                "idempotencyKey": f"apq-{n}",
            }
        }

    # given: the hash alone, unknown
    unknown = await post(
        api, {"variables": usage(1), "extensions": persisted(digest)}, tenant.admin_key
    )
    assert unknown.status_code == 200
    assert unknown.headers["cache-control"] == "private, no-cache, must-revalidate"
    assert unknown.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    # when: the query is sent with its hash, then the hash alone with other variables
    first = await post(
        api,
        {"query": query, "variables": usage(2), "extensions": persisted(digest)},
        tenant.admin_key,
    )
    second = await post(
        api, {"variables": usage(4), "extensions": persisted(digest)}, tenant.admin_key
    )
    # then: both ran, and the not-found request changed nothing
    assert first.json() == {
        "data": {"recordUsage": {"__typename": "Charge", "results": 2, "dataCredits": "1"}}
    }
    assert second.json() == {
        "data": {"recordUsage": {"__typename": "Charge", "results": 4, "dataCredits": "2"}}
    }
    workspace = await api.workspace(tenant.admin_key)
    assert workspace["actions"]["used"] == 6


async def test_a_hash_works_over_get_too(api: Api) -> None:
    query = "query Plans { plans { code } } # apq over GET"
    params = {"query": query, "extensions": json.dumps(persisted(sha(query)))}
    headers = {"Authorization": f"Bearer {api.operator_key}"}
    sent = await api.client.get("/graphql", params=params, headers=headers)
    assert sent.status_code == 200
    alone = await api.client.get(
        "/graphql", params={"extensions": json.dumps(persisted(sha(query)))}, headers=headers
    )
    assert alone.json() == sent.json()
    assert "launch" in {plan["code"] for plan in alone.json()["data"]["plans"]}


async def test_a_wrong_hash_version_or_shape_is_400_and_keeps_nothing(api: Api) -> None:
    query = "{ plans { code } } # apq mismatch"
    wrong = sha("something else")
    cases = [
        ({"query": query, "extensions": persisted(wrong)}, "provided sha does not match query"),
        (
            {"query": query, "extensions": persisted(sha(query), 2)},
            "Unsupported persisted query version",
        ),
        ({"extensions": {"persistedQuery": "abc"}}, "extensions.persistedQuery must be an object"),
        (
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "12"}}},
            "persistedQuery.sha256Hash must be 64 hexadecimal digits",
        ),
    ]
    for body, message in cases:
        response = await api.client.post("/graphql", json=body)
        assert response.status_code == 400, response.text
        assert response.json() == {
            "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]
        }
    # the mismatched query was not kept under either hash
    for digest in (wrong, sha(query)):
        response = await api.client.post("/graphql", json={"extensions": persisted(digest)})
        assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_the_store_is_bounded_by_count_and_text() -> None:
    store = PersistedQueries(entries=3, chars=100)
    for n in range(5):
        store.put(f"h{n}", f"query {n}")
    assert len(store) == 3
    assert store.get("h0") is None and store.get("h1") is None
    assert store.get("h2") == "query 2"  # now the most recently used
    store.put("big", "x" * 60)  # 81 characters: h3 goes for the count
    store.put("big2", "y" * 80)  # 161: h4, then h2 go for the text, least recently used first
    assert [store.get(h) for h in ("h3", "h4", "h2", "big")] == [None, None, None, None]
    assert store.get("big2") == "y" * 80 and store.total_chars == 80
    store.put("huge", "z" * (CACHED_CHARS + 1))  # what the document cache would not keep
    assert store.get("huge") is None
