"""Auto top-up (R37): the query and the mutation, composed into the schema."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.billing.autotopup import configure
from app.validation import credit_amount
from app.workspaces.service import get_workspace
from graphql_schema.context import Info
from graphql_schema.errors import Refusal, refusal_or
from graphql_schema.types.billing import AutoTopUp, AutoTopUpInput

AutoTopUpResult = Annotated[AutoTopUp | Refusal, strawberry.union("AutoTopUpResult")]


@strawberry.type
class TopUpQueries:
    @strawberry.field(description="R37: the workspace's auto top-up; null when it is off.")
    async def auto_top_up(self, info: Info) -> AutoTopUp | None:
        row = await get_workspace(await info.context.workspace_id())
        return AutoTopUp(row=row) if row.auto_topup_threshold is not None else None


@strawberry.type
class TopUpMutations:
    @strawberry.mutation(
        description="R37, admin: buy `credits` whenever available falls below `threshold`, at"
        " most maxPerCycle times a cycle; null turns it off. Paid plans only."
    )
    async def set_auto_top_up(
        self, info: Info, input: AutoTopUpInput | None = None
    ) -> AutoTopUpResult:
        workspace_id = await info.context.admin_workspace_id()
        if input is None:
            threshold = credits = None
            per_cycle = 3
        else:
            threshold = credit_amount(input.threshold, "threshold")
            credits = credit_amount(input.credits, "credits")
            per_cycle = input.max_per_cycle

        async def turn() -> AutoTopUp:
            now = info.context.now
            return AutoTopUp(row=await configure(workspace_id, threshold, credits, per_cycle, now))

        return await refusal_or(turn)
