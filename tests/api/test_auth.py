"""Tenancy and keys: a key sees and changes only its own workspace; roles; revocation."""

import hashlib
from decimal import Decimal

import pytest

from app.db import connection, fetch

WORKSPACE = "{ workspace { id dataCredits { balance } } }"


async def member_key(api, admin_key: str) -> str:
    data = await api.gql(
        'mutation { createApiKey(name: "ci", role: MEMBER) { secret apiKey { role } } }',
        key=admin_key,
    )
    assert data["createApiKey"]["apiKey"]["role"] == "MEMBER"
    return data["createApiKey"]["secret"]


@pytest.mark.parametrize("key", [None, "", "tly_wrong", "x" * 10_000])
async def test_missing_or_bad_keys_are_unauthenticated(api, key):
    for query in (WORKSPACE, "{ plans { code } }", 'mutation { createWorkbook(name: "x") { id } }'):
        assert await api.error_code(query, key=key) == "UNAUTHENTICATED"


async def test_non_bearer_authorization_is_unauthenticated(api):
    t = await api.create_workspace("launch")
    response = await api.client.post(
        "/graphql", json={"query": WORKSPACE}, headers={"Authorization": f"Basic {t.admin_key}"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_revoked_key_is_unauthenticated(api):
    t = await api.create_workspace("launch")
    member = await member_key(api, t.admin_key)
    keys = (await api.gql("{ apiKeys { id role revokedAt } }", key=t.admin_key))["apiKeys"]
    member_id = next(k["id"] for k in keys if k["role"] == "MEMBER")
    revoked = await api.gql(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }",
        {"id": member_id},
        key=t.admin_key,
    )
    assert revoked["revokeApiKey"]["revokedAt"] is not None
    assert await api.error_code(WORKSPACE, key=member) == "UNAUTHENTICATED"


async def test_keys_are_stored_hashed(api):
    t = await api.create_workspace("launch")
    rows = await fetch(connection(), "SELECT * FROM api_key WHERE workspace_id = $1", t.id)
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0].values())
    assert t.admin_key not in stored
    assert rows[0]["key_hash"] == hashlib.sha256(t.admin_key.encode()).hexdigest()
    listed = await api.gql("{ apiKeys { name role prefix } }", key=t.admin_key)
    assert listed["apiKeys"] == [{"name": "Admin key", "role": "ADMIN", "prefix": t.admin_key[:12]}]


async def test_the_last_admin_key_cannot_be_revoked(api):
    t = await api.create_workspace("launch")
    keys = (await api.gql("{ apiKeys { id } }", key=t.admin_key))["apiKeys"]
    code = await api.error_code(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        {"id": keys[0]["id"]},
        key=t.admin_key,
    )
    assert code == "INVALID_INPUT"
    second = (
        await api.gql(
            'mutation { createApiKey(name: "b", role: ADMIN) { secret } }', key=t.admin_key
        )
    )["createApiKey"]["secret"]
    await api.gql(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", {"id": keys[0]["id"]}, key=second
    )
    assert await api.error_code(WORKSPACE, key=t.admin_key) == "UNAUTHENTICATED"
    assert (await api.gql(WORKSPACE, key=second))["workspace"]["id"] == t.id


async def test_members_read_and_record_but_cannot_administer(api):
    t = await api.create_workspace("enterprise")
    member = await member_key(api, t.admin_key)
    wb = await api.create_workbook(member)
    assert (await api.record_usage(member, wb, kind="CRM_EXPORT", results=1))["actions"] == 1
    assert (await api.gql(WORKSPACE, key=member))["workspace"]["id"] == t.id
    forbidden = [
        ('mutation { createApiKey(name: "x", role: ADMIN) { secret } }', None),
        ("{ apiKeys { id } }", None),
        (
            'mutation($w: ID!) { setWorkbookSpendLimit(workbookId: $w, limit: "5")'
            " { __typename } }",
            {"w": wb},
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            {"id": "00000000-0000-0000-0000-000000000000"},
        ),
        ('mutation { createWorkspace(input: {name: "x", plan: "free"}) { adminKey } }', None),
    ]
    for query, variables in forbidden:
        assert await api.error_code(query, variables, key=member) == "FORBIDDEN"


async def test_only_the_operator_creates_workspaces(api):
    t = await api.create_workspace("launch")
    code = await api.error_code(
        'mutation { createWorkspace(input: {name: "x", plan: "free"}) { adminKey } }',
        key=t.admin_key,
    )
    assert code == "FORBIDDEN"
    assert await api.error_code(WORKSPACE, key=api.operator_key) == "FORBIDDEN"
    assert (await api.gql("{ plans { code } }", key=api.operator_key))["plans"]


async def test_a_key_sees_nothing_of_another_workspace(api):
    a = await api.create_workspace("launch")
    b = await api.create_workspace("enterprise")
    b_wb = await api.create_workbook(b.admin_key)
    b_charge = await api.record_usage(
        b.admin_key, b_wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=10
    )
    b_before = await api.ledger(b.admin_key)
    attempts = [
        ("query($id: ID!) { workbook(id: $id) { id } }", {"id": b_wb}),
        ("query($id: ID!) { charge(id: $id) { id } }", {"id": b_charge["id"]}),
        ("query($id: ID!) { ledger(workbookId: $id) { edges { cursor } } }", {"id": b_wb}),
        (
            "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }",
            {"i": {"workbookId": b_wb, "kind": "CRM_EXPORT", "results": 1, "idempotencyKey": "x"}},
        ),
        (
            "mutation($i: RefundInput!) { refundCharge(input: $i) { __typename } }",
            {"i": {"chargeId": b_charge["id"], "idempotencyKey": "y"}},
        ),
        (
            "mutation($w: ID!) { setWorkbookSpendLimit(workbookId: $w, limit: null)"
            " { __typename } }",
            {"w": b_wb},
        ),
    ]
    for query, variables in attempts:
        assert await api.error_code(query, variables, key=a.admin_key) == "NOT_FOUND"
    keys = (await api.gql("{ apiKeys { id } }", key=b.admin_key))["apiKeys"]
    code = await api.error_code(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        {"id": keys[0]["id"]},
        key=a.admin_key,
    )
    assert code == "NOT_FOUND"
    assert await api.ledger(b.admin_key) == b_before
    assert await api.meters(b.admin_key) == (10, Decimal("599995"))
    workbooks = await api.gql("{ workspace { workbooks { id } } }", key=a.admin_key)
    assert workbooks["workspace"]["workbooks"] == []


async def test_malformed_ids_are_not_found(api):
    t = await api.create_workspace("launch")
    code = await api.error_code('query { workbook(id: "not-a-uuid") { id } }', key=t.admin_key)
    assert code == "NOT_FOUND"


async def test_a_charge_checks_its_key_before_its_input(api):
    """recordUsage checks the key in its first read (app.workspaces.auth.Bearer): a wrong or
    revoked key is UNAUTHENTICATED whatever workbook it names, and nothing is charged."""
    t = await api.create_workspace("launch")
    other = await api.create_workspace("launch")
    own = await api.create_workbook(t.admin_key)
    foreign = await api.create_workbook(other.admin_key)
    member = await member_key(api, t.admin_key)
    keys = (await api.gql("{ apiKeys { id role } }", key=t.admin_key))["apiKeys"]
    await api.gql(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        {"id": next(k["id"] for k in keys if k["role"] == "MEMBER")},
        key=t.admin_key,
    )
    charge = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }"
    workbooks = [own, foreign, "not-a-uuid", "00000000-0000-4000-8000-000000000000"]
    for key, expected in [("tly_wrong", "UNAUTHENTICATED"), (member, "UNAUTHENTICATED")]:
        for workbook in workbooks:
            usage = {"workbookId": workbook, "kind": "CRM_EXPORT", "results": 1}
            variables = {"i": {**usage, "idempotencyKey": f"k-{workbook}"}}
            assert await api.error_code(charge, variables, key=key) == expected, workbook
    usage = {"workbookId": own, "kind": "CRM_EXPORT", "results": 1, "idempotencyKey": "op"}
    assert await api.error_code(charge, {"i": usage}, key=api.operator_key) == "FORBIDDEN"
    for workbook in workbooks[1:]:
        variables = {"i": {**usage, "workbookId": workbook}}
        assert await api.error_code(charge, variables, key=t.admin_key) == "NOT_FOUND"
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))
    charged = await api.record_usage(t.admin_key, own, kind="CRM_EXPORT", results=1)
    assert charged["actions"] == 1
    assert await api.meters(t.admin_key) == (1, Decimal("2500"))
