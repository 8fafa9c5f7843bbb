"""One request cannot fan out into thousands of queries (issue 15, finding 6).

30 aliases over 3,000 workbooks, each with its `tables`, ran 90,000 queries for 23 s while
/healthz stalled. Now: tables and plans are loaded in batches, a request may run at most
`max_queries` statements, lists page, and a workspace has at most `max_workbooks` workbooks.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from app.db import connection, fetch
from graphql_schema.asgi import create_app
from tests.helpers import new_key

ALIASED = (
    "{ "
    + " ".join(
        f"a{i}: workspace {{ plan {{ code }} workbooks {{ id tables {{ id }} }} }}"
        for i in range(30)
    )
    + " }"
)


@pytest.fixture(scope="module")
async def tight(settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(replace(settings, max_queries=120, max_workbooks=150), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
        yield client


async def _post(client, query, key, variables=None):
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {key}"},
    )
    return response.status_code, response.json()


async def _workspace_with_tables(api, workbooks: int):
    t = await api.create_workspace("launch")
    books = [await api.create_workbook(t.admin_key, f"W{n:03}") for n in range(workbooks)]
    items = [
        {
            "workbookId": b,
            "kind": "CRM_EXPORT",
            "results": 1,
            "tableId": f"t{n % 3}",
            "idempotencyKey": new_key(),
        }
        for n, b in enumerate(books)
    ]
    batch = await api.record_batch(t.admin_key, items)
    assert batch["charged"] == workbooks
    return t, books


async def test_aliases_over_many_workbooks_run_a_bounded_number_of_queries(api, tight):
    t, books = await _workspace_with_tables(api, 150)
    # Before the loaders this needed 30 x 150 table queries (and 60 plan queries); the app
    # allows 120 statements a request.
    status, body = await _post(tight, ALIASED, t.admin_key)
    assert (status, body.get("errors")) == (200, None)
    for n in range(30):
        workbooks = body["data"][f"a{n}"]["workbooks"]
        assert [w["id"] for w in workbooks] == books
        assert [w["tables"] for w in workbooks[:4]] == [
            [{"id": "t0"}],
            [{"id": "t1"}],
            [{"id": "t2"}],
            [{"id": "t0"}],
        ]


async def test_a_request_past_its_query_budget_is_refused_as_a_bad_request(api, settings):
    t, _ = await _workspace_with_tables(api, 2)
    app = create_app(replace(settings, max_queries=20), manage_database=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tally.test"
    ) as client:
        status, body = await _post(client, ALIASED, t.admin_key)
        assert status == 400, body
        assert body["data"] is None
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == {"BAD_REQUEST"}
        assert "more than 20 database queries" in body["errors"][0]["message"]
        ok, small = await _post(
            client, "{ workspace { workbooks { tables { id } } } }", t.admin_key
        )
        assert (ok, len(small["data"]["workspace"]["workbooks"])) == (200, 2)


async def test_workbooks_page_oldest_first(api):
    t = await api.create_workspace("launch")
    books = [await api.create_workbook(t.admin_key, f"W{n}") for n in range(5)]
    query = "query($f: Int!, $a: ID) { workspace { workbooks(first: $f, after: $a) { id } } }"
    seen, after = [], None
    while True:
        data = await api.gql(query, {"f": 2, "a": after}, key=t.admin_key)
        page = [w["id"] for w in data["workspace"]["workbooks"]]
        if not page:
            break
        seen += page
        after = page[-1]
    assert seen == books
    for first in (0, 1001):
        code = await api.error_code(query, {"f": first, "a": None}, key=t.admin_key)
        assert code == "INVALID_INPUT"
    stranger = await api.create_workspace("launch")
    theirs = await api.create_workbook(stranger.admin_key)
    assert await api.error_code(query, {"f": 2, "a": theirs}, key=t.admin_key) == "NOT_FOUND"


async def test_a_workspace_has_at_most_max_workbooks(api, tight):
    t = await api.create_workspace("launch")
    create = 'mutation { createWorkbook(name: "w") { id } }'
    for _ in range(150):
        _, body = await _post(tight, create, t.admin_key)
        assert body.get("errors") is None, body
    _, body = await _post(tight, create, t.admin_key)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUOTA_EXCEEDED"
    assert "has 150 workbooks, the most it may have" in error["message"]
    assert await _count_workbooks(t.id) == 150


async def test_concurrent_creations_never_pass_the_workbook_cap(api, tight, postgres_only):
    t = await api.create_workspace("launch")
    for _ in range(140):
        await _post(tight, 'mutation { createWorkbook(name: "w") { id } }', t.admin_key)
    results = await asyncio.gather(
        *(
            _post(tight, 'mutation { createWorkbook(name: "w") { id } }', t.admin_key)
            for _ in range(25)
        )
    )
    created = [body for _, body in results if body.get("errors") is None]
    refused = [body["errors"][0]["extensions"]["code"] for _, body in results if body.get("errors")]
    assert (len(created), refused) == (10, ["QUOTA_EXCEEDED"] * 15)
    assert await _count_workbooks(t.id) == 150


async def _count_workbooks(workspace_id: str) -> int:
    rows = await fetch(
        connection(), "SELECT count(*) AS n FROM workbook WHERE workspace_id = $1", workspace_id
    )
    return rows[0]["n"]
