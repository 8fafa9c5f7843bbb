"""R36: webhook endpoints as an admin manages them, and the outbox rows events leave.

The clock stands at 2025-01-31 10:00 UTC (the `clock` fixture) where instants are checked.
No delivery worker runs here (tests/api/test_r36_webhook_delivery.py has it), so every
delivery stays as it was written.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from app.db import connection, fetch
from tests.helpers import Tenant

ENDPOINT = "id url eventTypes description enabled disabledReason createdAt"
DELIVERY = """id eventId endpointId status attempts lastResponseStatus lastError lastAttemptAt
nextAttemptAt createdAt"""
CREATE = f"""mutation($i: WebhookEndpointInput!) {{ createWebhookEndpoint(input: $i) {{
  secret endpoint {{ {ENDPOINT} }} }} }}"""
UPDATE = f"""mutation($id: ID!, $i: WebhookEndpointInput!) {{ updateWebhookEndpoint(id: $id,
  input: $i) {{ {ENDPOINT} }} }}"""
DELETE = f"mutation($id: ID!) {{ deleteWebhookEndpoint(id: $id) {{ {ENDPOINT} }} }}"
ROTATE = f"""mutation($id: ID!) {{ rotateWebhookSecret(id: $id) {{
  secret endpoint {{ {ENDPOINT} previousSecretExpiresAt }} }} }}"""
LIST = f"{{ webhookEndpoints {{ {ENDPOINT} }} }}"
TEST = f"mutation($id: ID!) {{ sendTestEvent(endpointId: $id) {{ {DELIVERY} }} }}"
RESEND = f"""mutation($e: ID!, $p: ID) {{ resendEvent(eventId: $e, endpointId: $p) {{
  {DELIVERY} }} }}"""
DELIVERIES = f"""query($p: ID, $e: ID, $f: Int, $a: String) {{ webhookDeliveries(endpointId: $p,
  eventId: $e, first: $f, after: $a) {{ edges {{ cursor node {{ {DELIVERY} }} }}
  pageInfo {{ hasNextPage endCursor }} }} }}"""
PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5 credits each
NOW = "2025-01-31T10:00:00+00:00"


async def create(api, key: str, url: str = "https://hooks.example.com/tally", **fields) -> dict:
    data = await api.gql(CREATE, {"i": {"url": url, **fields}}, key=key)
    return data["createWebhookEndpoint"]


async def deliveries(api, key: str, **args) -> list[dict]:
    variables = {"p": args.get("endpoint"), "e": args.get("event"), "f": args.get("first", 200)}
    data = await api.gql(DELIVERIES, variables, key=key)
    return [edge["node"] for edge in data["webhookDeliveries"]["edges"]]


async def member_key(api, tenant: Tenant) -> str:
    data = await api.gql(
        'mutation { createApiKey(name: "reader", role: MEMBER) { secret } }', key=tenant.admin_key
    )
    return data["createApiKey"]["secret"]


async def test_r36_an_endpoint_is_created_with_its_secret_shown_once(api, clock):
    t = await api.create_workspace("launch")
    created = await create(
        api,
        t.admin_key,
        eventTypes=["topup.purchased", "credits.depleted", "topup.purchased"],
        description="billing service",
    )
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    endpoint = created["endpoint"]
    assert endpoint == {
        "id": endpoint["id"],
        "url": "https://hooks.example.com/tally",
        "eventTypes": ["credits.depleted", "topup.purchased"],  # API.md's order, once each
        "description": "billing service",
        "enabled": True,
        "disabledReason": None,
        "createdAt": NOW,
    }
    assert (await api.gql(LIST, key=t.admin_key))["webhookEndpoints"] == [endpoint]
    # Nothing reads the secret again: the type has no such field.
    body = await api.raw("{ webhookEndpoints { secret } }", key=t.admin_key)
    assert "Cannot query field 'secret'" in body["errors"][0]["message"]
    other = await create(api, t.admin_key, "https://b.example.com/")
    assert other["secret"] != secret and other["endpoint"]["eventTypes"] == []  # [] is every type


async def test_r36_endpoint_input_is_validated(api):
    t = await api.create_workspace("launch")
    long_url = "https://hooks.example.com/" + "a" * (2048 - 26)
    assert len(long_url) == 2048
    assert (await create(api, t.admin_key, long_url))["endpoint"]["url"] == long_url
    for url in [
        long_url + "a",  # 2,049 characters
        "http://hooks.example.com/",  # http needs TALLY_WEBHOOK_ALLOW_PRIVATE=on
        "ftp://hooks.example.com/",
        "https://",  # no host
        "hooks.example.com/tally",  # no scheme
        "https://hooks.example.com:99999/",  # no such port
        "https://user:pw@hooks.example.com/",
        "https://10.1.2.3/tally",  # a private address
        "https://127.0.0.1:8443/",
        "https://[::1]/",
        "https://localhost/",
        "https://hooks.example.com/a b",
    ]:
        code = await api.error_code(CREATE, {"i": {"url": url}}, key=t.admin_key)
        assert code == "INVALID_INPUT", url
    for fields in [
        {"eventTypes": ["credits.depleted", "credits.exploded"]},
        {"description": "d" * 501},
    ]:
        variables = {"i": {"url": "https://hooks.example.com/", **fields}}
        assert await api.error_code(CREATE, variables, key=t.admin_key) == "INVALID_INPUT"
    described = await create(api, t.admin_key, description="d" * 500)
    assert described["endpoint"]["description"] == "d" * 500
    assert len((await api.gql(LIST, key=t.admin_key))["webhookEndpoints"]) == 2


async def test_r36_a_workspace_has_at_most_20_endpoints(api):
    t = await api.create_workspace("launch")
    ids = [(await create(api, t.admin_key, f"https://h{n}.example.com/"))["endpoint"]["id"]
           for n in range(20)]  # fmt: skip
    variables = {"i": {"url": "https://h20.example.com/"}}
    assert await api.error_code(CREATE, variables, key=t.admin_key) == "QUOTA_EXCEEDED"
    await api.gql(DELETE, {"id": ids[0]}, key=t.admin_key)  # a deleted one no longer counts
    assert (await create(api, t.admin_key, "https://h20.example.com/"))["endpoint"]["enabled"]
    assert await api.error_code(CREATE, variables, key=t.admin_key) == "QUOTA_EXCEEDED"
    other = await api.create_workspace("launch")  # the cap is per workspace
    assert (await create(api, other.admin_key))["endpoint"]["enabled"]


async def test_r36_update_replaces_the_endpoint_and_enabled_true_re_enables(api):
    t = await api.create_workspace("launch")
    endpoint_id = (await create(api, t.admin_key, eventTypes=["run.ended"]))["endpoint"]["id"]
    changed = await api.gql(
        UPDATE,
        {"id": endpoint_id, "i": {"url": "https://new.example.com/x", "enabled": False}},
        key=t.admin_key,
    )
    assert changed["updateWebhookEndpoint"] | {"createdAt": "-"} == {
        "id": endpoint_id,
        "url": "https://new.example.com/x",
        "eventTypes": [],
        "description": None,
        "enabled": False,
        "disabledReason": "disabled by an admin",
        "createdAt": "-",
    }
    await fetch(  # as five days of failures would leave it
        connection(),
        "UPDATE webhook_endpoint SET failing_since = $2, disabled_reason = $3 WHERE id = $1",
        endpoint_id,
        datetime(2025, 1, 1, tzinfo=UTC),
        "every delivery has failed since 2025-01-01T00:00:00+00:00 (5 days)",
    )
    variables = {"id": endpoint_id, "i": {"url": "https://new.example.com/x", "enabled": True}}
    again = (await api.gql(UPDATE, variables, key=t.admin_key))["updateWebhookEndpoint"]
    assert (again["enabled"], again["disabledReason"]) == (True, None)
    rows = await fetch(
        connection(),
        "SELECT failing_since, disabled_reason FROM webhook_endpoint WHERE id = $1",
        endpoint_id,
    )
    assert [dict(r) for r in rows] == [{"failing_since": None, "disabled_reason": None}]
    variables["i"] = {"url": "http://new.example.com/x"}
    assert await api.error_code(UPDATE, variables, key=t.admin_key) == "INVALID_INPUT"


async def test_r36_deleting_is_soft_and_stops_pending_deliveries(api):
    t = await api.create_workspace("launch")
    endpoint_id = (await create(api, t.admin_key))["endpoint"]["id"]
    sent = (await api.gql(TEST, {"id": endpoint_id}, key=t.admin_key))["sendTestEvent"]
    assert (sent["status"], sent["attempts"], sent["endpointId"]) == ("PENDING", 0, endpoint_id)
    deleted = await api.gql(DELETE, {"id": endpoint_id}, key=t.admin_key)
    assert deleted["deleteWebhookEndpoint"]["id"] == endpoint_id
    assert deleted["deleteWebhookEndpoint"]["enabled"] is False  # it sends nothing any more
    assert (await api.gql(LIST, key=t.admin_key))["webhookEndpoints"] == []
    [stopped] = await deliveries(api, t.admin_key, endpoint=endpoint_id)  # the log stays
    assert (stopped["id"], stopped["status"], stopped["lastError"]) == (
        sent["id"],
        "FAILED",
        "endpoint deleted",
    )
    assert stopped["nextAttemptAt"] is None
    for query, variables in [
        (DELETE, {"id": endpoint_id}),
        (ROTATE, {"id": endpoint_id}),
        (TEST, {"id": endpoint_id}),
        (UPDATE, {"id": endpoint_id, "i": {"url": "https://a.example.com/"}}),
        (RESEND, {"e": sent["eventId"], "p": endpoint_id}),
    ]:
        assert await api.error_code(query, variables, key=t.admin_key) == "NOT_FOUND"


async def test_r36_a_rotation_keeps_the_old_secret_signing_for_24_hours(api, clock):
    t = await api.create_workspace("launch")
    created = await create(api, t.admin_key)
    endpoint_id = created["endpoint"]["id"]
    rotated = (await api.gql(ROTATE, {"id": endpoint_id}, key=t.admin_key))["rotateWebhookSecret"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["endpoint"]["previousSecretExpiresAt"] == "2025-02-01T10:00:00+00:00"
    rows = await fetch(
        connection(),
        "SELECT secret, previous_secret FROM webhook_endpoint WHERE id = $1",
        endpoint_id,
    )
    assert (rows[0]["secret"], rows[0]["previous_secret"]) == (
        rotated["secret"],
        created["secret"],
    )


async def test_r36_another_workspace_sees_nothing_of_an_endpoint(api):
    owner, stranger = await api.create_workspace("launch"), await api.create_workspace("launch")
    endpoint_id = (await create(api, owner.admin_key))["endpoint"]["id"]
    event_id = (await api.gql(TEST, {"id": endpoint_id}, key=owner.admin_key))["sendTestEvent"][
        "eventId"
    ]
    key = stranger.admin_key
    for query, variables in [
        (UPDATE, {"id": endpoint_id, "i": {"url": "https://evil.example.com/"}}),
        (DELETE, {"id": endpoint_id}),
        (ROTATE, {"id": endpoint_id}),
        (TEST, {"id": endpoint_id}),
        (RESEND, {"e": event_id, "p": None}),
        (DELIVERIES, {"p": endpoint_id}),
        (DELIVERIES, {"e": event_id}),
        (DELETE, {"id": "not-an-id"}),
        (RESEND, {"e": "not-an-id"}),
    ]:
        assert await api.error_code(query, variables, key=key) == "NOT_FOUND", query
    assert (await api.gql(LIST, key=key))["webhookEndpoints"] == []
    assert await deliveries(api, key) == []
    mine = (await api.gql(LIST, key=owner.admin_key))["webhookEndpoints"]
    assert [(e["url"], e["enabled"]) for e in mine] == [("https://hooks.example.com/tally", True)]


async def test_r36_webhooks_need_an_admin_key(api):
    t = await api.create_workspace("launch")
    endpoint_id = (await create(api, t.admin_key))["endpoint"]["id"]
    member = await member_key(api, t)
    for key in (member, api.operator_key):
        for query, variables in [
            (LIST, None),
            (DELIVERIES, {}),
            (CREATE, {"i": {"url": "https://a.example.com/"}}),
            (UPDATE, {"id": endpoint_id, "i": {"url": "https://a.example.com/"}}),
            (DELETE, {"id": endpoint_id}),
            (ROTATE, {"id": endpoint_id}),
            (TEST, {"id": endpoint_id}),
            (RESEND, {"e": endpoint_id}),
        ]:
            assert await api.error_code(query, variables, key=key) == "FORBIDDEN", query
    assert len((await api.gql(LIST, key=t.admin_key))["webhookEndpoints"]) == 1


async def test_r36_an_event_leaves_one_outbox_row_per_endpoint_that_wants_it(api):
    t = await api.create_workspace("free")  # 100 Data Credits
    key = t.admin_key
    wants = await create(api, key, "https://a.example.com/", eventTypes=["credits.depleted"])
    every = await create(api, key, "https://b.example.com/")
    other = await create(api, key, "https://c.example.com/", eventTypes=["topup.purchased"])
    disabled = await create(api, key, "https://d.example.com/", enabled=False)
    deleted = await create(api, key, "https://e.example.com/")
    await api.gql(DELETE, {"id": deleted["endpoint"]["id"]}, key=key)
    assert disabled["endpoint"]["disabledReason"] == "disabled by an admin"
    wb = await api.create_workbook(key)
    assert (await api.record_usage(key, wb, results=20, **PHONE))["dataCredits"] == "100"
    rows = await deliveries(api, key)
    [event_id] = {d["eventId"] for d in rows}
    assert sorted(d["endpointId"] for d in rows) == sorted(
        [wants["endpoint"]["id"], every["endpoint"]["id"]]
    )
    assert {(d["status"], d["attempts"], d["lastAttemptAt"]) for d in rows} == {
        ("PENDING", 0, None)
    }
    # test.ping goes to the endpoint asked for only, whatever the others subscribe to.
    ping = (await api.gql(TEST, {"id": other["endpoint"]["id"]}, key=key))["sendTestEvent"]
    assert await deliveries(api, key, event=ping["eventId"]) == [ping]
    assert ping["endpointId"] == other["endpoint"]["id"]
    event = await api.gql(
        "query($t: [String!]) { events(types: $t) { edges { node { id data } } } }",
        {"t": ["test.ping"]},
        key=key,
    )
    assert [e["node"] for e in event["events"]["edges"]] == [
        {"id": ping["eventId"], "data": {"workspaceId": t.id}}
    ]
    assert len(await deliveries(api, key, event=event_id)) == 2


async def test_r36_resend_makes_a_new_delivery_to_one_or_every_subscribed_endpoint(api):
    t = await api.create_workspace("free")
    key = t.admin_key
    wants = await create(api, key, "https://a.example.com/", eventTypes=["credits.depleted"])
    other = await create(api, key, "https://c.example.com/", eventTypes=["topup.purchased"])
    wb = await api.create_workbook(key)
    await api.record_usage(key, wb, results=20, **PHONE)
    [first] = await deliveries(api, key)
    resent = (await api.gql(RESEND, {"e": first["eventId"]}, key=key))["resendEvent"]
    assert [(d["eventId"], d["endpointId"], d["status"]) for d in resent] == [
        (first["eventId"], wants["endpoint"]["id"], "PENDING")
    ]
    assert resent[0]["id"] != first["id"]
    named = await api.gql(RESEND, {"e": first["eventId"], "p": other["endpoint"]["id"]}, key=key)
    assert [d["endpointId"] for d in named["resendEvent"]] == [other["endpoint"]["id"]]
    assert len(await deliveries(api, key, event=first["eventId"])) == 3
    off = {"id": other["endpoint"]["id"], "i": {"url": "https://c.example.com/", "enabled": False}}
    await api.gql(UPDATE, off, key=key)
    variables = {"e": first["eventId"], "p": other["endpoint"]["id"]}
    assert await api.error_code(RESEND, variables, key=key) == "INVALID_INPUT"
    assert await api.error_code(TEST, {"id": off["id"]}, key=key) == "INVALID_INPUT"


async def test_r36_deliveries_page_newest_first(api):
    t = await api.create_workspace("launch")
    endpoint_id = (await create(api, t.admin_key))["endpoint"]["id"]
    sent = [
        (await api.gql(TEST, {"id": endpoint_id}, key=t.admin_key))["sendTestEvent"]["id"]
        for _ in range(5)
    ]
    seen, after = [], None
    while True:
        variables = {"p": endpoint_id, "f": 2, "a": after}
        page = (await api.gql(DELIVERIES, variables, key=t.admin_key))["webhookDeliveries"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sent[::-1]
    for bad in ({"f": 0}, {"f": 201}, {"a": "bm90IGEgY3Vyc29y"}, {"a": "%%%"}):
        code = await api.error_code(DELIVERIES, bad, key=t.admin_key)
        assert code == "INVALID_INPUT", bad


async def test_r36_a_delivery_names_its_event_with_its_type_and_data(api):
    t = await api.create_workspace("launch")
    endpoint_id = (await create(api, t.admin_key))["endpoint"]["id"]
    await api.gql(TEST, {"id": endpoint_id}, key=t.admin_key)
    await api.top_up(t.admin_key, "10")
    query = """query($p: ID) { webhookDeliveries(endpointId: $p) { edges { node {
      eventId event { id type data } } } } }"""
    edges = (await api.gql(query, {"p": endpoint_id}, key=t.admin_key))["webhookDeliveries"]
    nodes = [e["node"] for e in edges["edges"]]
    assert [n["event"]["type"] for n in nodes] == ["topup.purchased", "test.ping"]
    assert all(n["event"]["id"] == n["eventId"] for n in nodes)
    assert nodes[0]["event"]["data"]["credits"] == "10"
