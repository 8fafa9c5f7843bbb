"""Read operations. Every field needs a key; workspace data is the caller's own only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.catalog.store import list_ai_models, list_plans, list_prices
from app.errors import NotFound
from app.ledger import ledger_page
from app.models import Charge as ChargeModel
from app.services.billing import list_billing_charges
from app.services.costs import Usage, estimate
from app.services.workbooks import get_workbook
from app.services.workspaces import get_workspace, list_api_keys
from app.units import units_to_credits
from app.validation import object_id
from graphql_schema.context import Info
from graphql_schema.types.billing import BillingCharge
from graphql_schema.types.catalog import AiModel, Plan, Price
from graphql_schema.types.ledger import LedgerConnection
from graphql_schema.types.usage import Charge, Estimate, EstimateInput
from graphql_schema.types.workbook import Workbook
from graphql_schema.types.workspace import ApiKey, Workspace


def usage_of(data: EstimateInput) -> Usage:
    return Usage(
        kind=data.kind,
        results=data.records,
        provider=data.provider,
        data_type=data.data_type,
        own_api_key=bool(data.own_api_key),
        model=data.model,
        input_tokens=data.input_tokens or 0,
        output_tokens=data.output_tokens or 0,
    )


@strawberry.type
class Query:
    @strawberry.field
    async def plans(self, info: Info) -> list[Plan]:
        await info.context.principal()
        return [Plan.of(p) for p in await list_plans()]

    @strawberry.field
    async def price_catalog(self, info: Info) -> list[Price]:
        await info.context.principal()
        return [Price.of(p) for p in await list_prices()]

    @strawberry.field
    async def ai_models(self, info: Info) -> list[AiModel]:
        await info.context.principal()
        return [AiModel.of(m) for m in await list_ai_models()]

    @strawberry.field(description="The caller's workspace.")
    async def workspace(self, info: Info) -> Workspace:
        return Workspace(row=await get_workspace(await info.context.workspace_id()))

    @strawberry.field
    async def workbook(self, info: Info, id: strawberry.ID) -> Workbook | None:
        return Workbook(row=await get_workbook(await info.context.workspace_id(), id))

    @strawberry.field
    async def charge(self, info: Info, id: strawberry.ID) -> Charge | None:
        workspace_id = await info.context.workspace_id()
        charge = await ChargeModel.get_or_none(
            id=object_id(id, "charge"), workspace_id=workspace_id
        )
        if charge is None:
            raise NotFound(f"charge {id} not found")
        return Charge(row=charge)

    @strawberry.field(description="R7: what a run would cost; no side effects.")
    async def estimate_cost(self, info: Info, input: EstimateInput) -> Estimate:
        await info.context.principal()
        cost = await estimate(usage_of(input))
        return Estimate(actions=cost.actions, data_credits=units_to_credits(cost.credits))

    @strawberry.field(description="Every balance change, newest first (R24).")
    async def ledger(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        workbook_id: strawberry.ID | None = None,
    ) -> LedgerConnection:
        workspace_id = await info.context.workspace_id()
        workbook = None if workbook_id is None else await get_workbook(workspace_id, workbook_id)
        page = await ledger_page(
            workspace_id, first=first, after=after, workbook_id=workbook and workbook.id
        )
        return LedgerConnection.of(page.entries, page.has_next_page)

    @strawberry.field(description="The workspace's API keys (admin); secrets are never shown.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        workspace_id = await info.context.admin_workspace_id()
        return [ApiKey(row=k) for k in await list_api_keys(workspace_id)]

    @strawberry.field(
        description="What the workspace is billed in USD: plan fees, upgrades, top-ups. Charges"
        " created in [from, to); with neither, those of the current cycle."
    )
    async def billing_charges(
        self,
        info: Info,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> list[BillingCharge]:
        workspace = await get_workspace(await info.context.workspace_id())
        return [BillingCharge(row=c) for c in await list_billing_charges(workspace, from_, to)]
