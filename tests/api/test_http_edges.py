"""The edges of POST /graphql (API.md "HTTP"): sizes, shapes and headers no request may abuse.

Each answer has the GraphQL error shape with its code in `extensions.code`; none is a 500.
"""

import gc
import json
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from graphql_schema.asgi import create_app
from graphql_schema.schema import MAX_ALIASES, MAX_DEPTH

OPERATOR = {"Authorization": "Bearer tly_op_test-operator-key"}
OPERATOR_AUTH = OPERATOR["Authorization"].encode()
JSON = {"content-type": "application/json"}
PLAN_CODES = ["free", "launch", "growth", "enterprise"]  # the seeded catalog, in order


def only_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"] == {"code": code}, body
    assert body.get("data") is None
    return error["message"]


@pytest.fixture(scope="module")
async def small(settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a 2 KB body limit and GraphiQL and introspection off."""
    tight = replace(settings, max_body_bytes=2048, introspection=False, graphiql=False)
    app = create_app(tight, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
        yield client


async def test_a_declared_body_over_the_limit_is_413_before_it_is_read(small):
    body = b'{"query": "{ plans { code } }", "x": "' + b"a" * 3000 + b'"}'
    response = await small.post("/graphql", content=body, headers={**OPERATOR, **JSON})
    message = only_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert message == "the request body is larger than 2,048 bytes"


async def test_a_streamed_body_over_the_limit_is_413_while_it_is_read(small):
    sent = []

    async def chunks():  # no Content-Length: the limit is counted as the body arrives
        for _ in range(100):
            sent.append(1)
            yield b" " * 1000

    response = await small.post("/graphql", content=chunks(), headers={**OPERATOR, **JSON})
    only_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert len(sent) < 10  # reading stopped at the limit, not at the end


async def test_a_body_at_the_limit_is_served(small):
    query = '{"query": "{ plans { code } }"}'
    body = query.encode() + b" " * (2048 - len(query))
    response = await small.post("/graphql", content=body, headers={**OPERATOR, **JSON})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["plans"][0]["code"] == "free"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'"x"', "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b"1", "expected a JSON object"),
        (b"[]", "expected a JSON object"),
        (b'[{"query": "{ plans { code } }"}]', "expected a JSON object"),
        (b"{bad", "not JSON text in UTF-8"),
        (b'{"query": "\x80"}', "not JSON text in UTF-8"),
        (b"\xff\xfe{}", "not JSON text in UTF-8"),
        (b'{"query": 5}', "must be a string"),
        (b'{"query": "{ plans { code } }", "variables": [1]}', "must be an object"),
        (b"{}", "No GraphQL query found"),
    ],
)
async def test_a_body_that_is_not_a_graphql_request_object_is_400(api, body, reason):
    response = await api.client.post("/graphql", content=body, headers={**OPERATOR, **JSON})
    assert reason in only_error(response, 400, "BAD_REQUEST")


async def test_variables_nested_a_thousand_deep_are_refused_or_ignored(api):
    deep = "[" * 1000 + "]" * 1000  # orjson reads it; json.loads gave up at about 950
    used = "mutation($v: [RecordUsageInput!]!) { recordUsageBatch(input: {items: $v}) { charged } }"
    for query, answer in (
        (used, {"data": None, "errors": [{"message": "Variable values are nested too deeply.",
                                          "extensions": {"code": "INVALID_INPUT"}}]}),
        ("{ plans { code } }", {"data": {"plans": [{"code": c} for c in PLAN_CODES]}}),
    ):  # fmt: skip
        body = f'{{"query": {json.dumps(query)}, "variables": {{"v": {deep}}}}}'.encode()
        response = await api.client.post("/graphql", content=body, headers={**OPERATOR, **JSON})
        assert (response.status_code, response.json()) == (200, answer)


async def test_documents_over_the_limits_are_400_bad_request(api):
    too_long = "{ plans { code } }" + " " * 33_000
    many_tokens = "{ plans { " + " ".join(["code"] * 2_100) + " } }"
    aliased = "{ " + " ".join(f"a{i}: plans {{ code }}" for i in range(MAX_ALIASES + 1)) + " }"
    deep = "{ workspace { " + "plan { " * MAX_DEPTH + "code" + " }" * MAX_DEPTH + " } }"
    cases = [
        (too_long, "the document is 33,018 characters long; at most 32,768"),
        (many_tokens, "the document has more than 2,000 tokens"),
        (aliased, "31 aliases found. Allowed: 30"),
        (deep, "exceeds maximum operation depth of 12"),
    ]
    for query, reason in cases:
        response = await api.client.post("/graphql", json={"query": query}, headers=OPERATOR)
        assert reason in only_error(response, 400, "BAD_REQUEST"), query[:40]


async def asgi_post(app, body: bytes) -> int:
    """POST /graphql straight into the app: no client objects in the memory measured."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"authorization", OPERATOR_AUTH)],
        "client": ("127.0.0.1", 1),
        "server": ("tally.test", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def test_refused_documents_are_not_kept_alive_by_reference_cycles(settings):
    """The collector is tuned to run rarely (gc_tuning). An error's traceback used to be a
    cycle holding the request's whole document: 2.6 MB a request until the next collection."""
    app = create_app(settings, manage_database=False)
    for n in range(21):
        body = json.dumps({"query": "{ plans { code } }" + " " * (40_000 + n)}).encode()
        if n == 1:
            gc.collect()
            gc.disable()  # what is in a cycle now stays; what is freed by counting goes
            tracemalloc.start()
        try:
            assert await asgi_post(app, body) == 400  # over the document length limit
        except BaseException:
            tracemalloc.stop()
            gc.enable()
            raise
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.enable()
    assert kept < 200_000, kept  # twenty documents and bodies would be over 1,600,000 bytes


async def test_two_authorization_headers_are_refused(api):
    t = await api.create_workspace("launch")
    headers = [("Authorization", f"Bearer {t.admin_key}"), ("Authorization", "Bearer nope")]
    response = await api.client.post(
        "/graphql", json={"query": "{ workspace { id } }"}, headers=headers
    )
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "send one Authorization header; this request has 2"
    csv = await api.client.get(
        "/usage.csv",
        params={"from": "2025-01-01T00:00Z", "to": "2025-01-02T00:00Z"},
        headers=headers,
    )
    assert csv.status_code == 401


async def test_introspection_and_graphiql_can_be_turned_off(api, small):
    query = {"query": "{ __schema { queryType { name } } }"}
    on = await api.client.post("/graphql", json=query, headers=OPERATOR)
    assert on.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    off = await small.post("/graphql", json=query, headers=OPERATOR)
    assert off.status_code == 400
    errors = off.json()["errors"]  # one for each introspection field asked for
    assert [e["extensions"]["code"] for e in errors] == ["BAD_REQUEST", "BAD_REQUEST"]
    assert "introspection has been disabled" in errors[0]["message"]
    typename = await small.post("/graphql", json={"query": "{ __typename }"}, headers=OPERATOR)
    assert typename.json() == {"data": {"__typename": "Query"}}
    page = await small.get("/graphql", headers={"Accept": "text/html"})
    only_error(page, 404, "NOT_FOUND")
    assert (await small.get("/graphiql/assets/graphiql.min.js")).status_code == 404
    assert (await api.client.get("/graphql", headers={"Accept": "text/html"})).status_code == 200
