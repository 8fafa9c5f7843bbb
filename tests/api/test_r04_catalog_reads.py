"""R4, R6: a batch reads the prices and models it needs at once, and still names what the
catalog lacks, item by item, exactly as single reads did."""

import json
from datetime import UTC, datetime
from decimal import Decimal

from app.catalog.store import get_ai_model, get_price
from app.kinds import UsageKind
from app.usage.costs import CatalogCache, Usage

E = UsageKind.ENRICHMENT


async def test_r04_r06_preload_holds_what_single_reads_give(database):
    usages = [
        Usage(E, 1, "linkedin", "profile"),
        Usage(E, 1, "hunter", "email"),
        Usage(E, 1, "linkedin", "email"),  # both names priced, not together
        Usage(E, 1, "nope", "profile"),
        Usage(UsageKind.AI, 1, model="small", input_tokens=10),
        Usage(UsageKind.AI, 1, model="gpt-nope", input_tokens=10),
        # Not read: any model name with the customer's own key (R5), a model on a kind that
        # takes none, and the labels of a free kind (R3). Each is refused or free as before.
        Usage(UsageKind.AI, 1, model="gpt-own", own_api_key=True),
        Usage(E, 1, "apollo", "phone", model="small"),
        Usage(UsageKind.SOURCING, 1, "clearbit", "company"),
        Usage(UsageKind.HTTP_API_CALL, 1),
    ]
    now = datetime.now(UTC)
    # Free kinds and the customer's own AI key read nothing.
    free = CatalogCache(now)
    await free.preload([usages[6], usages[8], usages[9]])
    assert free._catalog is None
    # Priced usages: the catalog is read once, and every lookup answers from it.
    cache = CatalogCache(now)
    await cache.preload(usages)
    assert cache._catalog is not None
    pairs = [("linkedin", "profile"), ("hunter", "email"), ("linkedin", "email")]
    pairs += [("nope", "profile"), ("apollo", "phone"), ("zerobounce", "email_validation")]
    assert {p: await cache.price(*p) for p in pairs} == {p: await get_price(*p, now) for p in pairs}
    assert await cache.price("linkedin", "email") is None
    assert (await cache.price("hunter", "email")).credits_units == 5_000
    codes = ("small", "gpt-nope")
    assert {c: await cache.model(c) for c in codes} == {
        c: await get_ai_model(c, now) for c in codes
    }
    assert await cache.model("gpt-nope") is None
    assert await cache.provider_known("linkedin") and not await cache.provider_known("nope")
    # A catalog read with something else (app.catalog.store.in_force_columns) is used as is.
    known = CatalogCache(now, cache._catalog)
    assert await known.price("apollo", "phone") == await get_price("apollo", "phone", now)


async def test_r04_a_batch_names_the_first_item_the_catalog_lacks(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    good = {"workbookId": wb, "kind": "ENRICHMENT", "results": 1}
    cases = [
        ({"provider": "nope", "dataType": "email"}, "items[2]: unknown provider 'nope'"),
        (
            {"provider": "linkedin", "dataType": "email"},
            "items[2]: provider 'linkedin' has no data type 'email'",
        ),
        (
            {"kind": "AI", "model": "gpt-nope", "inputTokens": 1},
            "items[2]: unknown AI model 'gpt-nope'",
        ),
    ]
    for n, (fields, message) in enumerate(cases):
        items = [
            {**good, "provider": "linkedin", "dataType": "profile", "idempotencyKey": f"a{n}"},
            {**good, "provider": "hunter", "dataType": "email", "idempotencyKey": f"b{n}"},
            {**good, "idempotencyKey": f"c{n}", **fields},
        ]
        body = await api.raw(
            "mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) { charged } }",
            {"i": {"items": items}},
            key=t.admin_key,
        )
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
        assert body["errors"][0]["message"] == message
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))
    answer = await api.record_batch(
        t.admin_key,
        [
            {**good, "provider": "linkedin", "dataType": "profile", "idempotencyKey": "ok1"},
            {**good, "provider": "apollo", "dataType": "phone", "idempotencyKey": "ok2"},
            {**good, "kind": "AI", "model": "large", "inputTokens": 1000, "idempotencyKey": "ok3"},
        ],
    )
    assert [r["dataCredits"] for r in answer["results"]] == ["0.5", "5", "0.5"]
    assert await api.meters(t.admin_key) == (3, Decimal("2494"))


async def test_r04_text_no_driver_can_send_is_invalid_input(api):
    """JSON's "\\ud800" decodes to a lone surrogate, which neither database driver can encode:
    refused as input wherever it is, never an internal error, and nothing is charged."""
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)

    async def post(query: str, variables: dict) -> list[tuple[str, str]]:
        response = await api.client.post(  # json.dumps escapes the surrogate: valid JSON
            "/graphql",
            content=json.dumps({"query": query, "variables": variables}),
            headers={"Authorization": f"Bearer {t.admin_key}", "Content-Type": "application/json"},
        )
        return [(e["extensions"]["code"], e["message"]) for e in response.json()["errors"]]

    bad = "x\ud800"
    good = {"workbookId": wb, "kind": "ENRICHMENT", "results": 1}
    good |= {"provider": "linkedin", "dataType": "profile"}
    cases = [
        ({"provider": bad}, "provider"),
        ({"dataType": bad}, "dataType"),
        ({"model": bad}, "model"),
        ({"kind": "AI", "provider": None, "dataType": None, "model": bad}, "model"),
        ({"tableId": bad}, "tableId"),
        ({"idempotencyKey": bad}, "idempotencyKey"),
    ]
    query = "mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) { charged } }"
    for n, (fields, field) in enumerate(cases):
        items = [{**good, "idempotencyKey": f"ok{n}"}, {**good, "idempotencyKey": f"s{n}"}]
        items[1] |= fields
        assert await post(query, {"i": {"items": items}}) == [
            ("INVALID_INPUT", f"items[1]: {field} must be Unicode text without lone surrogates")
        ]
    workbook = "mutation($n: String!) { createWorkbook(name: $n) { id } }"
    assert await post(workbook, {"n": bad}) == [
        ("INVALID_INPUT", "name must be Unicode text without lone surrogates")
    ]
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))
