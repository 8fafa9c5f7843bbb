"""R39: every change made with an admin or operator key is one append-only audit entry, in the
same transaction: who, what, the target, before and after, when, and the request id."""

import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from app.db import connection, fetch

AUDIT = """query($f: Int, $a: String) { auditLog(first: $f, after: $a) {
  edges { cursor node { at actor apiKeyId action target before after requestId } }
  pageInfo { hasNextPage endCursor } } }"""
PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}


async def entries(api, key):
    data = await api.gql(AUDIT, {"f": 200}, key=key)
    return [e["node"] for e in reversed(data["auditLog"]["edges"])]  # oldest first


async def post(api, key, query, variables=None, request_id="req-1"):
    response = await api.client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
    )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def test_r39_each_admin_change_is_one_entry_with_before_and_after(api):
    t = await api.create_workspace("launch")
    admin_id = (await api.gql("{ viewer { apiKey { id name } } }", key=t.admin_key))["viewer"][
        "apiKey"
    ]
    before = await entries(api, t.admin_key)
    await post(api, t.admin_key, 'mutation { setAlert(input: {meter: ACTIONS, threshold: "80"})'
               " { id } }", request_id="r-alert")  # fmt: skip
    plan = """mutation { changePlan(input: {plan: "growth", creditTier: 6000,
      idempotencyKey: "p1"}) { __typename } }"""
    await post(api, t.admin_key, plan, request_id="r-plan")
    await post(api, t.admin_key, plan, request_id="r-plan-again")  # a replay changes nothing
    top_up = (
        'mutation { purchaseTopUp(input: {credits: "10", idempotencyKey: "t1"}) { __typename } }'
    )
    await post(api, t.admin_key, top_up, request_id="r-topup")
    new = (await entries(api, t.admin_key))[len(before) :]
    assert [(e["action"], e["requestId"], e["actor"], e["apiKeyId"]) for e in new] == [
        ("alert.set", "r-alert", admin_id["name"], admin_id["id"]),
        ("plan.change", "r-plan", admin_id["name"], admin_id["id"]),
        ("topup.purchase", "r-topup", admin_id["name"], admin_id["id"]),
    ]
    alert, change, bought = new
    assert (alert["before"], alert["after"]) == (None, {"meter": "ACTIONS", "threshold": "80"})
    assert change["target"] == f"workspace:{t.id}"
    assert change["before"] == {"plan": "launch", "creditTier": 2500, "billingInterval": "MONTHLY",
                                "status": "ACTIVE", "pendingChange": None}  # fmt: skip
    assert change["after"] == {"plan": "growth", "creditTier": 6000, "billingInterval": "MONTHLY",
                               "status": "ACTIVE", "pendingChange": None}  # fmt: skip
    assert bought["after"] == {"credits": "10", "price": "0.52"}


async def test_r39_refunds_by_an_admin_and_by_the_operator_are_audited(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(t.admin_key, wb, results=4, **PHONE)
    await api.refund(t.admin_key, charge["id"], results=1)
    await api.refund(api.operator_key, charge["id"], results=1)
    refunds = [e for e in await entries(api, t.admin_key) if e["action"] == "charge.refund"]
    assert [(e["actor"], e["target"], e["before"], {k: v for k, v in e["after"].items()
            if k != "refundId"}) for e in refunds] == [
        (refunds[0]["actor"], f"charge:{charge['id']}",
         {"refundedResults": 0, "refundedDataCredits": "0"},
         {"refundedResults": 1, "refundedDataCredits": "5", "reason": None}),
        ("operator", f"charge:{charge['id']}",
         {"refundedResults": 1, "refundedDataCredits": "5"},
         {"refundedResults": 2, "refundedDataCredits": "10", "reason": None}),
    ]  # fmt: skip
    assert refunds[1]["apiKeyId"] is None


async def test_r39_webhook_entries_never_hold_a_secret_and_members_write_none(api):
    t = await api.create_workspace("launch")
    created = await api.gql(
        """mutation { createWebhookEndpoint(input: {url: "https://hooks.example.com/x"})
           { secret endpoint { id } } }""",
        key=t.admin_key,
    )
    secret = created["createWebhookEndpoint"]["secret"]
    endpoint = created["createWebhookEndpoint"]["endpoint"]["id"]
    rotated = await api.gql(
        "mutation($i: ID!) { rotateWebhookSecret(id: $i) { secret } }",
        {"i": endpoint},
        key=t.admin_key,
    )
    log = await entries(api, t.admin_key)
    assert [e["action"] for e in log[-2:]] == [
        "webhook_endpoint.create",
        "webhook_endpoint.rotate_secret",
    ]
    assert log[-2]["after"] == {"url": "https://hooks.example.com/x", "eventTypes": [],
                                "description": None, "enabled": True}  # fmt: skip
    rows = await fetch(connection(), "SELECT before, after FROM audit_entry")
    text = " ".join(str(r["before"]) + str(r["after"]) for r in rows)
    assert secret not in text and rotated["rotateWebhookSecret"]["secret"] not in text
    member = await api.gql(
        'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=t.admin_key
    )
    member_key = member["createApiKey"]["secret"]
    count = len(await entries(api, t.admin_key))
    wb = await api.create_workbook(member_key)
    await api.record_usage(member_key, wb, results=1, **PHONE)
    assert len(await entries(api, t.admin_key)) == count
    assert await api.error_code(AUDIT, {"f": 5}, key=member_key) == "FORBIDDEN"
    stranger = await api.create_workspace("launch")
    assert [e["action"] for e in await entries(api, stranger.admin_key)] == ["workspace.create"]


async def test_r39_a_credits_alert_is_audited_in_credits_as_the_api_shows_it(api):
    t = await api.create_workspace("launch")
    alert = await api.gql(
        'mutation { setAlert(input: {meter: DATA_CREDITS, threshold: "109.5"}) { id } }',
        key=t.admin_key,
    )
    await api.gql(
        "mutation($a: ID!) { deleteAlert(id: $a) { id } }",
        {"a": alert["setAlert"]["id"]},
        key=t.admin_key,
    )
    deleted, made = (await entries(api, t.admin_key))[-2:][::-1]
    state = {"meter": "DATA_CREDITS", "threshold": "109.5"}
    assert (made["action"], made["before"], made["after"]) == ("alert.set", None, state)
    assert (deleted["action"], deleted["before"], deleted["after"]) == ("alert.delete", state, None)


async def test_r39_the_audit_log_is_append_only(api, database):
    t = await api.create_workspace("launch")
    await api.gql('mutation { setAlert(input: {meter: ACTIONS, threshold: "50"}) { id } }',
                  key=t.admin_key)  # fmt: skip
    for statement in ("UPDATE audit_entry SET actor = 'x'", "DELETE FROM audit_entry"):
        with pytest.raises(Exception, match="append-only"):
            await fetch(connection(), statement)


async def test_r39_pages_newest_first(api):
    t = await api.create_workspace("launch")
    for n in range(3):
        await api.gql(
            "mutation($t: Decimal!) { setAlert(input: {meter: ACTIONS, threshold: $t}) { id } }",
            {"t": str(10 + n)},
            key=t.admin_key,
        )
    first = (await api.gql(AUDIT, {"f": 2}, key=t.admin_key))["auditLog"]
    assert [e["node"]["after"]["threshold"] for e in first["edges"]] == ["12", "11"]
    rest = await api.gql(AUDIT, {"f": 2, "a": first["pageInfo"]["endCursor"]}, key=t.admin_key)
    assert [e["node"]["action"] for e in rest["auditLog"]["edges"]] == [
        "alert.set",
        "workspace.create",
    ]
    assert rest["auditLog"]["edges"][0]["node"]["after"]["threshold"] == "10"
    assert rest["auditLog"]["pageInfo"]["hasNextPage"] is False


async def test_r39_workspace_creation_keys_and_spend_limits_are_audited_without_secrets(api):
    t = await api.create_workspace("enterprise")
    (created,) = await entries(api, t.admin_key)
    assert (created["action"], created["actor"], created["apiKeyId"], created["target"]) == (
        "workspace.create", "operator", None, f"workspace:{t.id}")  # fmt: skip
    admin = created["after"].pop("adminKey")
    assert created["after"] == {"name": "Acme", "plan": "enterprise",
                                "creditTier": t.workspace["creditTier"],
                                "billingInterval": "ANNUAL", "status": "ACTIVE"}  # fmt: skip
    assert isinstance(created["after"]["creditTier"], int)
    assert (admin["name"], admin["role"], admin["revokedAt"]) == ("Admin key", "ADMIN", None)
    assert t.admin_key.startswith(admin["prefix"]) and t.admin_key != admin["prefix"]
    made = await api.gql(
        'mutation { createApiKey(name: "ci", role: MEMBER) { secret apiKey { id } } }',
        key=t.admin_key,
    )
    key_id = made["createApiKey"]["apiKey"]["id"]
    await post(api, t.admin_key, "mutation($i: ID!) { revokeApiKey(id: $i) { id } }",
               {"i": key_id}, request_id="r-revoke")  # fmt: skip
    wb = await api.create_workbook(t.admin_key)
    limit = """mutation($w: ID!, $l: Decimal) {
      setWorkbookSpendLimit(workbookId: $w, limit: $l) { __typename } }"""
    for value in ("12.5", "3", None):
        await post(api, t.admin_key, limit, {"w": wb, "l": value})
    log = (await entries(api, t.admin_key))[1:]
    assert [(e["action"], e["target"]) for e in log] == [
        ("api_key.create", f"api_key:{key_id}"),
        ("api_key.revoke", f"api_key:{key_id}"),
        ("workbook.spend_limit.set", f"workbook:{wb}"),
        ("workbook.spend_limit.set", f"workbook:{wb}"),
        ("workbook.spend_limit.set", f"workbook:{wb}"),
    ]
    made_entry, revoked, *limits = log
    assert made_entry["before"] is None
    assert {k: v for k, v in made_entry["after"].items() if k != "prefix"} == {
        "name": "ci", "role": "MEMBER", "revokedAt": None}  # fmt: skip
    assert revoked["requestId"] == "r-revoke"
    assert revoked["before"]["revokedAt"] is None and revoked["after"]["revokedAt"] is not None
    assert [(e["before"], e["after"]) for e in limits] == [
        ({"spendLimit": None}, {"spendLimit": "12.5"}),
        ({"spendLimit": "12.5"}, {"spendLimit": "3"}),
        ({"spendLimit": "3"}, {"spendLimit": None}),
    ]
    rows = await fetch(connection(), "SELECT before, after FROM audit_entry")
    text = " ".join(str(r["before"]) + str(r["after"]) for r in rows)
    assert t.admin_key not in text and made["createApiKey"]["secret"] not in text


def test_r39_the_shells_changes_are_the_operators(tmp_path):
    """`tally create-workspace` acts as the operator, audited as an API change is."""
    env = {**os.environ, "TALLY_DATABASE_URL": f"sqlite://{tmp_path}/t.sqlite3",
           "TALLY_OPERATOR_KEY": "tly_op_cli"}  # fmt: skip
    made = subprocess.run(
        [sys.executable, "-m", "tally", "create-workspace", "--name", "Shell", "--plan", "growth"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    workspace_id = made.stdout.split()[1]
    with contextlib.closing(sqlite3.connect(tmp_path / "t.sqlite3")) as db:
        rows = db.execute("SELECT workspace_id, actor, api_key_id, action, target, before, after"
                          " FROM audit_entry").fetchall()  # fmt: skip
    assert [row[:6] for row in rows] == [
        (workspace_id, "operator", None, "workspace.create", f"workspace:{workspace_id}", None)
    ]
    after = json.loads(rows[0][6])
    assert (after["name"], after["plan"], after["adminKey"]["role"]) == ("Shell", "growth", "ADMIN")
    assert made.stdout.split()[-1] not in rows[0][6]  # the admin key's secret is not kept


# Each admin mutation that changes something, with the one audit action it writes (R39).
EACH_ADMIN_CHANGE = [
    ('mutation { createApiKey(name: "k", role: MEMBER) { secret } }', "api_key.create"),
    ('mutation { setAlert(input: {meter: DATA_CREDITS, threshold: "5"}) { id } }', "alert.set"),
    ("mutation($a: ID!) { deleteAlert(id: $a) { id } }", "alert.delete"),
    (
        'mutation { changePlan(input: {plan: "launch", creditTier: 2500, idempotencyKey: "d"})'
        " { __typename } }",
        "plan.change",
    ),
    ("mutation { withdrawPendingChange { id } }", "plan.withdraw"),
    ("mutation { cancelSubscription { __typename } }", "plan.cancel"),
    (
        'mutation { purchaseTopUp(input: {credits: "10", idempotencyKey: "t"}) { __typename } }',
        "topup.purchase",
    ),
    (
        'mutation { setAutoTopUp(input: {threshold: "5", credits: "10"}) { __typename } }',
        "auto_top_up.set",
    ),
    (
        'mutation($w: ID!) { setWorkbookSpendLimit(workbookId: $w, limit: "9") { __typename } }',
        "workbook.spend_limit.set",
    ),
    (
        'mutation($c: ID!) { refundCharge(input: {chargeId: $c, results: 1, idempotencyKey: "r"})'
        " { __typename } }",
        "charge.refund",
    ),
    (
        'mutation { createWebhookEndpoint(input: {url: "https://hooks.example.com/y"})'
        " { secret } }",
        "webhook_endpoint.create",
    ),
    (
        'mutation($e: ID!) { updateWebhookEndpoint(id: $e, input: {url: "https://hooks.example.com/z"'
        ', description: "d"}) { id } }',
        "webhook_endpoint.update",
    ),
    (
        "mutation($e: ID!) { rotateWebhookSecret(id: $e) { secret } }",
        "webhook_endpoint.rotate_secret",
    ),
    ("mutation($e: ID!) { deleteWebhookEndpoint(id: $e) { id } }", "webhook_endpoint.delete"),
    ("mutation { setAutoTopUp(input: null) { __typename } }", "auto_top_up.set"),
]


async def test_r39_every_admin_change_writes_exactly_one_entry(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(t.admin_key, wb, results=2, **PHONE)
    alert = await api.gql(
        'mutation { setAlert(input: {meter: ACTIONS, threshold: "90"}) { id } }', key=t.admin_key
    )
    hook = await api.gql(
        'mutation { createWebhookEndpoint(input: {url: "https://hooks.example.com/x"})'
        " { endpoint { id } } }",
        key=t.admin_key,
    )
    variables = {"a": alert["setAlert"]["id"], "w": wb, "c": charge["id"],
                 "e": hook["createWebhookEndpoint"]["endpoint"]["id"]}  # fmt: skip
    seen = len(await entries(api, t.admin_key))
    for mutation, action in EACH_ADMIN_CHANGE:
        used = {k: v for k, v in variables.items() if f"${k}" in mutation}
        await post(api, t.admin_key, mutation, used, request_id=f"r-{action}")
        log = await entries(api, t.admin_key)
        assert [(e["action"], e["requestId"]) for e in log[seen:]] == [(action, f"r-{action}")]
        seen = len(log)
