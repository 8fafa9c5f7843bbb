"""Talking to Tally the way a client does: GraphQL documents over HTTP."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from app.db import connection, fetch

_keys = itertools.count()

CHARGE_FIELDS = """
  __typename
  ... on Charge { id actions dataCredits results kind provider dataType ownApiKey
                  workbookId tableId refundedResults refundedDataCredits }
  ... on Refusal { code message }
"""
REFUND_FIELDS = """
  __typename
  ... on Refund { id chargeId results dataCredits reason }
  ... on Refusal { code message }
"""
RUN_FIELDS = """
  id workbookId tableId name status budget spent budgetRemaining actions results charges held
  holdPlaced holdExpiresAt createdAt lastChargeAt endedAt
"""
WORKSPACE_FIELDS = """
  id name plan { code } creditTier billingInterval status trialEndsAt billingAnchor
  currentPeriod { start end }
  pendingChange { plan { code } creditTier billingInterval effectiveAt }
  actions { capacity used remaining resetsAt } dataCredits { balance cap monthlyGrant }
"""


def new_key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}-{uuid.uuid4().hex[:8]}"


@dataclass
class Tenant:
    id: str
    admin_key: str
    workspace: dict[str, Any]


class GraphQLErrors(AssertionError):
    pass


class Api:
    def __init__(self, client: httpx.AsyncClient, operator_key: str) -> None:
        self.client = client
        self.operator_key = operator_key

    async def raw(self, query: str, variables: dict | None = None, key: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def gql(self, query: str, variables: dict | None = None, key: str | None = None) -> dict:
        body = await self.raw(query, variables, key)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        return body["data"]

    async def error_code(
        self, query: str, variables: dict | None = None, key: str | None = None
    ) -> str:
        body = await self.raw(query, variables, key)
        assert body.get("errors"), f"expected an error, got {body}"
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert len(codes) == 1, body["errors"]
        return codes.pop()

    async def create_workspace(self, plan: str = "launch", **fields: Any) -> Tenant:
        data = await self.gql(
            f"""mutation($input: CreateWorkspaceInput!) {{ createWorkspace(input: $input) {{
                  adminKey workspace {{ {WORKSPACE_FIELDS} }} }} }}""",
            {"input": {"name": fields.pop("name", "Acme"), "plan": plan, **fields}},
            key=self.operator_key,
        )
        result = data["createWorkspace"]
        return Tenant(result["workspace"]["id"], result["adminKey"], result["workspace"])

    async def workspace(self, key: str) -> dict[str, Any]:
        return (await self.gql(f"{{ workspace {{ {WORKSPACE_FIELDS} }} }}", key=key))["workspace"]

    async def create_workbook(self, key: str, name: str = "Leads") -> str:
        data = await self.gql(
            "mutation($n: String!) { createWorkbook(name: $n) { id } }", {"n": name}, key=key
        )
        return data["createWorkbook"]["id"]

    async def record_usage(self, key: str, workbook_id: str, **fields: Any) -> dict[str, Any]:
        payload = {"workbookId": workbook_id, "idempotencyKey": new_key(), **fields}
        data = await self.gql(
            f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE_FIELDS} }} }}",
            {"i": payload},
            key=key,
        )
        return data["recordUsage"]

    async def start_run(self, key: str, workbook_id: str, **fields: Any) -> dict[str, Any]:
        payload = {"workbookId": workbook_id, "idempotencyKey": new_key("run"), **fields}
        data = await self.gql(
            f"mutation($i: StartRunInput!) {{ startRun(input: $i) {{ {RUN_FIELDS} }} }}",
            {"i": payload},
            key=key,
        )
        return data["startRun"]

    async def run(self, key: str, run_id: str) -> dict[str, Any]:
        data = await self.gql(
            f"query($id: ID!) {{ run(id: $id) {{ {RUN_FIELDS} }} }}", {"id": run_id}, key=key
        )
        return data["run"]

    async def end_run(self, key: str, run_id: str, how: str = "stopRun") -> dict[str, Any]:
        data = await self.gql(
            f"mutation($id: ID!) {{ {how}(runId: $id) {{ {RUN_FIELDS} }} }}",
            {"id": run_id},
            key=key,
        )
        return data[how]

    async def record_batch(self, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        data = await self.gql(
            f"""mutation($i: RecordUsageBatchInput!) {{ recordUsageBatch(input: $i) {{
                  charged refused actions dataCredits results {{ {CHARGE_FIELDS} }} }} }}""",
            {"i": {"items": items}},
            key=key,
        )
        return data["recordUsageBatch"]

    async def credits(self, key: str) -> dict[str, str]:
        data = await self.gql("{ workspace { dataCredits { balance held available } } }", key=key)
        return data["workspace"]["dataCredits"]

    async def refund(self, key: str, charge_id: str, **fields: Any) -> dict[str, Any]:
        payload = {"chargeId": charge_id, "idempotencyKey": new_key("refund"), **fields}
        data = await self.gql(
            f"mutation($i: RefundInput!) {{ refundCharge(input: $i) {{ {REFUND_FIELDS} }} }}",
            {"i": payload},
            key=key,
        )
        return data["refundCharge"]

    async def set_limit(self, key: str, workbook_id: str, limit: str | None) -> dict[str, Any]:
        data = await self.gql(
            """mutation($w: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $w, limit: $l) {
                 __typename ... on Workbook { id spendLimit spent }
                 ... on Refusal { code message } } }""",
            {"w": workbook_id, "l": limit},
            key=key,
        )
        return data["setWorkbookSpendLimit"]

    async def ledger(self, key: str, first: int = 500, **args: Any) -> list[dict[str, Any]]:
        data = await self.gql(
            """query($f: Int, $a: String, $w: ID) { ledger(first: $f, after: $a, workbookId: $w) {
                 edges { cursor node { id entryType meter amount balanceAfter workbookId chargeId
                                       refundId createdAt } }
                 pageInfo { hasNextPage endCursor } } }""",
            {"f": first, "a": args.get("after"), "w": args.get("workbook_id")},
            key=key,
        )
        return [edge["node"] for edge in data["ledger"]["edges"]]

    async def change_plan(self, key: str, plan: str, **fields: Any) -> dict[str, Any]:
        """The ChangePlanResult: the workspace, or a Refusal (`__typename` tells which)."""
        payload = {"plan": plan, "idempotencyKey": new_key("plan"), **fields}
        data = await self.gql(
            f"""mutation($i: ChangePlanInput!) {{ changePlan(input: $i) {{ __typename
                  ... on Workspace {{ {WORKSPACE_FIELDS} }}
                  ... on Refusal {{ code message }} }} }}""",
            {"i": payload},
            key=key,
        )
        return data["changePlan"]

    async def cancel(self, key: str) -> dict[str, Any]:
        data = await self.gql(
            f"""mutation {{ cancelSubscription {{ __typename
                  ... on Workspace {{ {WORKSPACE_FIELDS} }}
                  ... on Refusal {{ code message }} }} }}""",
            key=key,
        )
        return data["cancelSubscription"]

    async def withdraw(self, key: str) -> dict[str, Any]:
        data = await self.gql(
            f"mutation {{ withdrawPendingChange {{ {WORKSPACE_FIELDS} }} }}", key=key
        )
        return data["withdrawPendingChange"]

    async def top_up(self, key: str, credits: str, **fields: Any) -> dict[str, Any]:
        payload = {"credits": credits, "idempotencyKey": new_key("topup"), **fields}
        data = await self.gql(
            """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) { __typename
                 ... on TopUp { id credits price createdAt } ... on Refusal { code message } } }""",
            {"i": payload},
            key=key,
        )
        return data["purchaseTopUp"]

    async def billing(self, key: str, **args: Any) -> list[dict[str, Any]]:
        data = await self.gql(
            """query($f: DateTime, $t: DateTime) { billingCharges(from: $f, to: $t) {
                 id kind amount credits description periodStart planCode creditTier
                 billingInterval createdAt } }""",
            {"f": args.get("start"), "t": args.get("end")},
            key=key,
        )
        return data["billingCharges"]

    async def meters(self, key: str) -> tuple[int, Decimal]:
        """(Actions used, Data Credit balance), checked against the ledger on the way (R24)."""
        ws = await self.workspace(key)
        await assert_ledger_matches(ws["id"])
        return ws["actions"]["used"], Decimal(ws["dataCredits"]["balance"])


async def assert_ledger_matches(workspace_id: str) -> None:
    """R24: the balances shown always equal the sum of the ledger."""
    rows = await fetch(
        connection(),
        "SELECT meter, SUM(amount) AS total FROM ledger_entry WHERE workspace_id = $1"
        " GROUP BY meter",
        workspace_id,
    )
    sums = {r["meter"]: int(r["total"]) for r in rows}
    ws = (
        await fetch(
            connection(),
            "SELECT credit_balance, credits_held, actions_capacity - actions_used AS remaining"
            " FROM workspace WHERE id = $1",
            workspace_id,
        )
    )[0]
    assert sums.get("DATA_CREDITS", 0) == ws["credit_balance"], (sums, ws)
    assert sums.get("ACTIONS", 0) == ws["remaining"], (sums, ws)
    # Holds: the held total is the sum of HOLD, SETTLE and RELEASE entries, and so is each
    # run's hold; available = balance - held never goes below zero.
    assert sums.get("HELD_CREDITS", 0) == ws["credits_held"], (sums, ws)
    assert 0 <= ws["credits_held"] <= ws["credit_balance"], ws
    runs = await fetch(
        connection(),
        "SELECT r.id, r.hold, COALESCE(SUM(l.amount), 0) AS total FROM run r LEFT JOIN"
        " ledger_entry l ON l.run_id = r.id AND l.meter = 'HELD_CREDITS'"
        " WHERE r.workspace_id = $1 GROUP BY r.id, r.hold",
        workspace_id,
    )
    for run in runs:
        assert int(run["total"]) == run["hold"], run


async def adjust_credits(workspace_id: str, delta_units: int) -> None:
    """Test setup: move a balance by an ADJUSTMENT entry, as an operator correction would."""
    from datetime import UTC, datetime

    from tortoise.transactions import in_transaction

    from app.kinds import EntryType, Meter
    from app.ledger import Posting, post

    async with in_transaction() as conn:
        row = await fetch(
            conn,
            "UPDATE workspace SET credit_balance = credit_balance + $2 WHERE id = $1"
            " RETURNING credit_balance",
            workspace_id,
            delta_units,
        )
        posting = Posting(Meter.DATA_CREDITS, delta_units, row[0]["credit_balance"])
        await post(
            conn, uuid.UUID(workspace_id), EntryType.ADJUSTMENT, [posting], datetime.now(UTC)
        )


async def run_jobs(now: datetime, *workspace_ids: str) -> dict[str, Any]:
    """What `tally jobs run all --now` does, limited to the given workspaces so tests sharing a
    database do not renew each other's. Returns {job: SweepResult}."""
    from dataclasses import replace

    from app.plans.renewals import sweep
    from jobs.registry import JOBS

    ids = [uuid.UUID(i) for i in workspace_ids]
    return {
        name: await sweep(now, replace(job.scope, workspace_ids=ids))
        for name, job in JOBS.items()
        if job.scope is not None  # hold expiry is not per workspace; tests call it directly
    }


async def ledger_rows(workspace_id: str, since_id: int = 0) -> list[tuple[str, str, int, int]]:
    """(entryType, meter, amount, balanceAfter) in units, oldest first."""
    rows = await fetch(
        connection(),
        "SELECT entry_type, meter, amount, balance_after FROM ledger_entry"
        " WHERE workspace_id = $1 AND id > $2 ORDER BY id",
        workspace_id,
        since_id,
    )
    return [(r["entry_type"], r["meter"], int(r["amount"]), int(r["balance_after"])) for r in rows]


async def last_ledger_id(workspace_id: str) -> int:
    rows = await fetch(
        connection(),
        "SELECT COALESCE(MAX(id), 0) AS m FROM ledger_entry WHERE workspace_id = $1",
        workspace_id,
    )
    return int(rows[0]["m"])
