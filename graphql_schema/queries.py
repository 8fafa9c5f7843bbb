"""Read operations. Every field needs a key; workspace data is the caller's own only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.billing.charges import list_billing_charges
from app.catalog.store import list_ai_models, list_plans, list_prices
from app.errors import InvalidInput
from app.history.service import usage_history
from app.ledger import ledger_page
from app.runs.service import get_run, list_runs
from app.units import units_to_credits
from app.usage.costs import EstimateOption, RunEstimate, Usage, estimate_run
from app.usage.queries import get_charge
from app.workspaces.service import get_workspace, list_api_keys
from app.workspaces.workbooks import get_workbook
from graphql_schema.context import Info
from graphql_schema.types.billing import BillingCharge
from graphql_schema.types.catalog import AiModel, Plan, Price
from graphql_schema.types.history import OWN_KEY_FIELDS, UsageDimension, UsageRow, selected
from graphql_schema.types.ledger import LedgerConnection
from graphql_schema.types.run import Run
from graphql_schema.types.usage import (
    Charge,
    Estimate,
    EstimateCoverage,
    EstimateInput,
)
from graphql_schema.types.usage import EstimateOption as EstimateOptionType
from graphql_schema.types.viewer import Viewer
from graphql_schema.types.workbook import Workbook
from graphql_schema.types.workspace import ApiKey, Workspace


def options_of(data: EstimateInput) -> list[EstimateOption]:
    """The top-level fields are one option; `options` are several, each with the same
    records unless it says otherwise."""
    if (data.kind is None) == (data.options is None):
        raise InvalidInput("give kind (one option) or options (several), not both or neither")
    specs: list = [data] if data.options is None else data.options
    return [
        EstimateOption(
            Usage(
                kind=o.kind,
                results=getattr(o, "records", None) or data.records,
                provider=o.provider,
                data_type=o.data_type,
                own_api_key=bool(o.own_api_key),
                model=o.model,
                input_tokens=o.input_tokens or 0,
                output_tokens=o.output_tokens or 0,
            ),
            o.hit_rate,
        )
        for o in specs
    ]


def estimate_of(result: RunEstimate) -> Estimate:
    c = result.coverage
    options = [
        EstimateOptionType(
            kind=o.option.usage.kind,
            provider=o.option.usage.provider,
            data_type=o.option.usage.data_type,
            model=o.option.usage.model,
            own_api_key=o.option.usage.own_api_key,
            records=o.option.usage.results,
            results=o.results,
            actions=o.cost.actions,
            data_credits=units_to_credits(o.cost.credits),
        )
        for o in result.options
    ]
    coverage = EstimateCoverage(
        covered=c.covered,
        refusal=c.refusal,
        actions_remaining=c.actions_remaining,
        actions_covered=c.actions_covered,
        data_credits_available=units_to_credits(c.credits_available),
        data_credits_covered=c.credits_covered,
        workbook_limit_remaining=None
        if c.limit_remaining is None
        else units_to_credits(c.limit_remaining),
        workbook_limit_covered=c.limit_covered,
    )
    return Estimate(
        actions=result.total.actions,
        data_credits=units_to_credits(result.total.credits),
        options=options,
        coverage=coverage,
    )


@strawberry.type
class Query:
    @strawberry.field
    async def plans(self, info: Info) -> list[Plan]:
        await info.context.principal()
        return [Plan.of(p) for p in await list_plans(info.context.now)]

    @strawberry.field
    async def price_catalog(self, info: Info) -> list[Price]:
        await info.context.principal()
        return [Price.of(p) for p in await list_prices(info.context.now)]

    @strawberry.field
    async def ai_models(self, info: Info) -> list[AiModel]:
        await info.context.principal()
        return [AiModel.of(m) for m in await list_ai_models(info.context.now)]

    @strawberry.field(description="The caller's workspace.")
    async def workspace(self, info: Info) -> Workspace:
        return Workspace(row=await get_workspace(await info.context.workspace_id()))

    @strawberry.field(description="The caller's API key and role (a workspace key).")
    async def viewer(self, info: Info) -> Viewer:
        await info.context.workspace_id()  # the operator key belongs to no workspace
        return Viewer(principal=await info.context.principal())

    @strawberry.field
    async def workbook(self, info: Info, id: strawberry.ID) -> Workbook | None:
        return Workbook(row=await get_workbook(await info.context.workspace_id(), id))

    @strawberry.field
    async def charge(self, info: Info, id: strawberry.ID) -> Charge | None:
        return Charge.of(await get_charge(await info.context.workspace_id(), id))

    @strawberry.field
    async def run(self, info: Info, id: strawberry.ID) -> Run | None:
        return Run(row=await get_run(await info.context.workspace_id(), id))

    @strawberry.field(description="The workspace's runs, newest first.")
    async def runs(self, info: Info, first: int = 50) -> list[Run]:
        rows = await list_runs(await info.context.workspace_id(), first)
        return [Run(row=r) for r in rows]

    @strawberry.field(description="R7: what a run would cost; no side effects.")
    async def estimate_cost(self, info: Info, input: EstimateInput) -> Estimate:
        workspace_id = await info.context.workspace_id()
        workbook_id = None if input.workbook_id is None else str(input.workbook_id)
        result = await estimate_run(workspace_id, options_of(input), info.context.now, workbook_id)
        return estimate_of(result)

    @strawberry.field(
        description="R24: usage in the UTC days that overlap [from, to) (at most 400), grouped"
        " by `groupBy` in that order and sorted by it; no dimension gives one total row."
    )
    async def usage_history(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        group_by: list[UsageDimension],
        workbook_id: strawberry.ID | None = None,
        table_id: str | None = None,
    ) -> list[UsageRow]:
        workspace_id = await info.context.workspace_id()
        # The own-key figures cost two reads more: only for a query that asks for them.
        own_keys = bool(selected(info.selected_fields) & OWN_KEY_FIELDS)
        rows = await usage_history(
            workspace_id, from_, to, group_by, workbook_id, table_id, own_keys=own_keys
        )
        return [UsageRow.of(row) for row in rows]

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
            workspace_id,
            first=first,
            after=after,
            workbook_id=None if workbook is None else workbook.id,
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
