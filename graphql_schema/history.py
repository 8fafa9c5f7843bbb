"""Balances at a past instant (R38): the query, composed into the schema."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.history.balance import balance_at
from graphql_schema.context import Info
from graphql_schema.types.history import BalanceSnapshot


@strawberry.type
class HistoryQueries:
    @strawberry.field(
        description="R38: Data Credits (balance, held, available), Actions (used, capacity) and"
        " the plan at `at`, any instant from the workspace's creation on; any workspace key."
        " Before the creation, or after both the server's clock and the latest ledger entry:"
        " INVALID_INPUT."
    )
    async def balance_at(self, info: Info, at: datetime) -> BalanceSnapshot:
        workspace_id = await info.context.workspace_id()
        snapshot = await balance_at(workspace_id, at, info.context.now)
        spec = await info.context.loaders.plans.load(snapshot.plan_code)
        assert spec is not None, f"balance on unknown plan {snapshot.plan_code}"
        return BalanceSnapshot.of(snapshot, spec)
