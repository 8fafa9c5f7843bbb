"""The fenced HTTP fast path (graphql_schema.perf.http) answers every POST of JSON exactly as
strawberry's own request handling does: status, headers a client reads, and body, for requests
well-formed and not. The same requests go to an app with the fast paths on and one with them off
(TALLY_FAST_PATHS=off), over one database."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from graphql_schema.asgi import create_app
from graphql_schema.perf import http as fast_http
from tests.helpers import Api

OPERATOR = {"Authorization": "Bearer tly_op_test-operator-key"}
JSON = {"content-type": "application/json"}
READ_HEADERS = ("content-type", "cache-control", "retry-after")
ALIASES = "{ " + " ".join(f"a{n}: plans {{ code }}" for n in range(40)) + " }"
TWO_OPERATIONS = "query A { plans { code } } query B { plans { name } }"
SUBSCRIBE = "subscription { workspaceUpdated { id } }"


VARIABLES = "query($k: [String!]) { plans { code } priceCatalog { provider } }"
WRONG_TYPE = "query($c: Boolean!) { plans { code @include(if: $c) } }"
REFUSED = """mutation { recordUsage(input: {workbookId: "x", kind: SIGNAL, results: 1,
  idempotencyKey: "k"}) { __typename } }"""
UNKNOWN_HASH = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
WRONG_HASH = {"persistedQuery": {"version": 1, "sha256Hash": "1" * 64}}
PLANS = "{ plans { code } }"
KNOWN = "{ plans { name } }  # stored with its hash before each case"
KNOWN_HASH = {
    "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(KNOWN.encode()).hexdigest()}
}
LATIN = {**OPERATOR, "content-type": "application/json; charset=latin-1"}
CHARSET = {**OPERATOR, "content-type": "application/json; charset=utf-8"}


def case(name: str, content: Any, headers: dict[str, str] = OPERATOR, fast: bool = True) -> Any:
    """A request: its body (bytes as they are, anything else as JSON), its headers beside
    Content-Type: application/json, and whether the fast path answers it."""
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    return pytest.param(raw, headers, fast, id=name)


CASES = [
    case("a query", {"query": "{ plans { code name } }"}),
    case("charset", {"query": PLANS}, CHARSET),
    case("no key", {"query": "{ workspace { id } }"}, {}),
    case("a wrong key", {"query": "{ workspace { id } }"}, {"Authorization": "Bearer tly_x"}),
    case("variables", {"query": VARIABLES, "variables": {"k": ["a"]}}),
    case("a variable of the wrong type", {"query": WRONG_TYPE, "variables": {"c": 5}}),
    case("null variables", {"query": PLANS, "variables": None}),
    case("malformed JSON", b'{"query": '),
    case("not UTF-8", b'{"query": "\xff"}'),
    case("a list", [{"query": PLANS}]),
    case("a number", b"5"),
    case("query not a string", {"query": 5}),
    case("variables not an object", {"query": PLANS, "variables": []}),
    case("extensions not an object", {"query": PLANS, "extensions": "x"}),
    case("no query", {}),
    case("a syntax error", {"query": "{ plans { code "}),
    case("an unknown field", {"query": "{ plans { nope } }"}),
    case("too many aliases", {"query": ALIASES}),
    case("two operations, no name", {"query": TWO_OPERATIONS}),
    case("two operations, named", {"query": TWO_OPERATIONS, "operationName": "B"}),
    case("an unknown operation name", {"query": TWO_OPERATIONS, "operationName": "C"}),
    case("a subscription", {"query": SUBSCRIBE}),
    case("a mutation refused", {"query": REFUSED}, {}),
    case("an unknown persisted hash", {"extensions": UNKNOWN_HASH}),
    case("a persisted hash not the query's", {"query": PLANS, "extensions": WRONG_HASH}),
    case("text/plain", {"query": PLANS}, {**OPERATOR, "content-type": "text/plain"}, fast=False),
    case(
        "upper-case media type",
        {"query": PLANS},
        {**OPERATOR, "content-type": "Application/JSON"},
        fast=False,
    ),
    case("another charset", {"query": PLANS}, LATIN),
    case("an empty body", b""),
    case("a byte order mark", b"\xef\xbb\xbf" + json.dumps({"query": PLANS}).encode()),
    case("a persisted hash known", {"extensions": KNOWN_HASH}),
    case("a multipart accept", {"query": PLANS}, {**OPERATOR, "accept": "multipart/mixed"}, False),
    case(
        "a streaming accept", {"query": PLANS}, {**OPERATOR, "accept": "text/event-stream"}, False
    ),
]


@pytest.fixture(scope="module")
async def both(settings) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    clients = []
    for mode in ("on", "off"):
        app = create_app(replace(settings, fast_paths=mode), manage_database=False)
        transport = httpx.ASGITransport(app=app)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://tally.test"))
    yield clients[0], clients[1]
    for client in clients:
        await client.aclose()


def seen(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {name: response.headers.get(name) for name in READ_HEADERS}
    try:
        content: Any = response.json()
    except ValueError:
        content = response.text
    return response.status_code, headers, content


@pytest.fixture
def taken(monkeypatch) -> list[bool]:
    """Each request the fast path answers, as it answers it (the view's `fast_http`)."""
    answered: list[bool] = []
    original = fast_http.answer

    async def counted(view: Any, request: Any) -> Any:
        answered.append(view.fast_http)
        return await original(view, request)

    monkeypatch.setattr(fast_http, "answer", counted)
    return answered


@pytest.mark.parametrize(("content", "headers", "fast"), CASES)
async def test_the_fast_path_answers_as_strawberry_does(both, taken, content, headers, fast):
    on, off = both
    # Persisted documents are one store per process: both apps know KNOWN once it is sent.
    stored = json.dumps({"query": KNOWN, "extensions": KNOWN_HASH})
    assert (await off.post("/graphql", content=stored, headers={**JSON, **OPERATOR})).is_success
    sent = {**JSON, **headers}
    fast_answer = seen(await on.post("/graphql", content=content, headers=sent))
    assert taken == ([True] if fast else [])
    plain_answer = seen(await off.post("/graphql", content=content, headers=sent))
    assert taken == ([True] if fast else [])  # the app with the fast paths off never takes it
    assert fast_answer == plain_answer
    assert fast_answer[0] != 500


async def test_a_charge_answers_alike_both_ways(api: Api, both) -> None:
    """A mutation that writes: the same charge's answer (its id aside) and its replay."""
    tenant = await api.create_workspace("launch")
    workbook = await api.create_workbook(tenant.admin_key)
    query = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
      __typename ... on Charge { results dataCredits actions kind } ... on Refusal { code } } }"""
    answers = []
    for client in both:
        variables = {"i": {"workbookId": workbook, "kind": "SIGNAL", "results": 2,
                           "idempotencyKey": str(uuid.uuid4())}}  # fmt: skip
        headers = {**JSON, "Authorization": f"Bearer {tenant.admin_key}"}
        sent = json.dumps({"query": query, "variables": variables})
        response = await client.post("/graphql", content=sent, headers=headers)
        answers.append(seen(response))
    assert answers[0] == answers[1]
    assert answers[0][2]["data"]["recordUsage"]["__typename"] == "Charge"


async def _refused(*args: Any, **kwargs: Any) -> Any:
    raise ConnectionRefusedError(111, "Connection refused")  # what asyncpg meets: no server


@pytest.mark.parametrize(
    ("lost", "query", "key"),
    [
        ("graphql_schema.queries.list_plans", PLANS, OPERATOR["Authorization"]),
        ("graphql_schema.context.authenticate", "{ workspace { id } }", "Bearer tly_ws_gone"),
    ],
    ids=["a resolver's read", "the key's lookup"],
)
async def test_a_lost_database_answers_alike_both_ways(both, taken, monkeypatch, lost, query, key):
    """The database unreachable mid-request: 503 SERVICE_UNAVAILABLE with Retry-After, the
    same from the fast path as from strawberry's own handling."""
    monkeypatch.setattr(lost, _refused)
    sent = json.dumps({"query": query})
    answers = [
        seen(await client.post("/graphql", content=sent, headers={**JSON, "Authorization": key}))
        for client in both
    ]
    assert taken == [True]  # the fast path answered the first, strawberry the second
    assert answers[0] == answers[1]
    status, headers, body = answers[0]
    assert status == 503 and headers["retry-after"] is not None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
