"""Write operations: parse input, call one service function, map refusals to `Refusal`."""

from __future__ import annotations

import decimal
import uuid
from collections import Counter
from typing import Annotated

import strawberry

from app.billing.topups import TopUpRequest, purchase_top_up
from app.errors import Refused
from app.kinds import Meter, RunStatus
from app.metrics import USAGE_REPORTS
from app.plans.subscriptions import (
    PlanChangeRequest,
    cancel_subscription,
    change_plan,
    withdraw_pending_change,
)
from app.runs.service import RunRequest, end_run, start_run
from app.units import units_to_credits
from app.usage.charging import charge_batch
from app.usage.charging import charge_one as record_usage
from app.usage.costs import Usage
from app.usage.items import UsageReport
from app.usage.queries import workspace_of_charge
from app.usage.refunds import RefundRequest, refund_charge
from app.validation import credit_amount
from app.workspaces.service import (
    NewWorkspace,
    create_api_key,
    create_workspace,
    revoke_api_key,
)
from app.workspaces.workbooks import create_workbook, set_spend_limit
from graphql_schema.context import Info
from graphql_schema.enums import Role
from graphql_schema.errors import Refusal, refusal_or
from graphql_schema.types.billing import ChangePlanInput, TopUp, TopUpInput
from graphql_schema.types.run import RecordUsageBatchInput, Run, StartRunInput
from graphql_schema.types.usage import Charge, RecordUsageInput, Refund, RefundInput
from graphql_schema.types.workbook import Workbook
from graphql_schema.types.workspace import (
    ApiKey,
    CreatedApiKey,
    CreateWorkspaceInput,
    CreateWorkspaceResult,
    Workspace,
)

RecordUsageResult = Annotated[Charge | Refusal, strawberry.union("RecordUsageResult")]
RefundResult = Annotated[Refund | Refusal, strawberry.union("RefundResult")]
TopUpResult = Annotated[TopUp | Refusal, strawberry.union("TopUpResult")]
ChangePlanResult = Annotated[Workspace | Refusal, strawberry.union("ChangePlanResult")]
SetSpendLimitResult = Annotated[Workbook | Refusal, strawberry.union("SetSpendLimitResult")]


@strawberry.type(description="Each item's charge or refusal, in the order of the items.")
class RecordUsageBatchResult:
    results: list[RecordUsageResult]
    charged: int = strawberry.field(description="Items charged (replays included).")
    refused: int
    actions: int = strawberry.field(description="Actions of the charged items.")
    data_credits: decimal.Decimal = strawberry.field(description="Their Data Credits.")


def count_reports(results: list[Charge | Refusal]) -> None:
    """tally_usage_reports_total: charged (replays included) or refused, with the code."""
    refused = Counter(r.code.value for r in results if isinstance(r, Refusal))
    if charged := len(results) - sum(refused.values()):
        USAGE_REPORTS.labels(outcome="charged", code="").inc(charged)
    for code, count in refused.items():
        USAGE_REPORTS.labels(outcome="refused", code=code).inc(count)


def report_of(data: RecordUsageInput) -> UsageReport:
    usage = Usage(
        kind=data.kind,
        results=data.results,
        provider=data.provider,
        data_type=data.data_type,
        own_api_key=bool(data.own_api_key),
        model=data.model,
        input_tokens=data.input_tokens or 0,
        output_tokens=data.output_tokens or 0,
    )
    return UsageReport(
        workbook_id=str(data.workbook_id),
        usage=usage,
        idempotency_key=data.idempotency_key,
        table_id=data.table_id,
        run_id=None if data.run_id is None else str(data.run_id),
        sent_at=data.sent_at,
    )


async def _refund_workspace(info: Info, charge_id: str) -> uuid.UUID:
    """Admins refund their own charges; the operator's integration may refund any charge."""
    principal = await info.context.principal()
    if not principal.operator:
        return principal.require_admin()
    return await workspace_of_charge(charge_id)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Operator only. Returns the admin key's secret once.")
    async def create_workspace(
        self, info: Info, input: CreateWorkspaceInput
    ) -> CreateWorkspaceResult:
        (await info.context.principal()).require_operator()
        request = NewWorkspace(
            name=input.name,
            plan=input.plan,
            credit_tier=input.credit_tier,
            billing_interval=input.billing_interval,
            trial=bool(input.trial),
        )
        workspace, secret = await create_workspace(request, info.context.now)
        return CreateWorkspaceResult(workspace=Workspace(row=workspace), admin_key=secret)

    @strawberry.mutation
    async def create_workbook(self, info: Info, name: str) -> Workbook:
        workspace_id = await info.context.workspace_id()
        limit = info.context.settings.max_workbooks
        return Workbook(row=await create_workbook(workspace_id, name, info.context.now, limit))

    @strawberry.mutation(description="Admin. The secret is shown once.")
    async def create_api_key(self, info: Info, name: str, role: Role) -> CreatedApiKey:
        workspace_id = await info.context.admin_workspace_id()
        key, secret = await create_api_key(workspace_id, name, role, info.context.now)
        return CreatedApiKey(api_key=ApiKey(row=key), secret=secret)

    @strawberry.mutation(description="Admin.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        workspace_id = await info.context.admin_workspace_id()
        return ApiKey(row=await revoke_api_key(workspace_id, id, info.context.now))

    @strawberry.mutation(description="R2–R13: charge a usage report to both meters.")
    async def record_usage(self, info: Info, input: RecordUsageInput) -> RecordUsageResult:
        caller = await info.context.caller()  # the key, if unread: the charge's read checks it
        report = report_of(input)

        async def charge() -> Charge:
            return Charge.of(await record_usage(caller, report, info.context.now))

        result = await refusal_or(charge)
        count_reports([result])
        return result

    @strawberry.mutation(
        description="R2–R13, R23: up to 1,000 reports in one transaction; each item is charged"
        " or refused on its own, and retries replay per item."
    )
    async def record_usage_batch(
        self, info: Info, input: RecordUsageBatchInput
    ) -> RecordUsageBatchResult:
        workspace_id = await info.context.workspace_id()
        reports = [report_of(item) for item in input.items]
        outcomes = await charge_batch(workspace_id, reports, info.context.now)
        results: list[Charge | Refusal] = []
        actions = credits = 0
        for outcome in outcomes:
            if isinstance(outcome, Refused):
                results.append(Refusal(code=outcome.code, message=outcome.message))
            else:
                results.append(Charge.of(outcome))
                actions, credits = actions + outcome.actions, credits + outcome.credits
        count_reports(results)
        charged = len(results) - sum(isinstance(r, Refusal) for r in results)
        return RecordUsageBatchResult(
            results=results,
            charged=charged,
            refused=len(results) - charged,
            actions=actions,
            data_credits=units_to_credits(credits),
        )

    @strawberry.mutation(
        description="R6: open a run with an optional Data Credit budget and hold. A hold larger"
        " than the available credits fails with code INSUFFICIENT_DATA_CREDITS."
    )
    async def start_run(self, info: Info, input: StartRunInput) -> Run:
        workspace_id = await info.context.workspace_id()
        request = RunRequest(
            workbook_id=str(input.workbook_id),
            idempotency_key=input.idempotency_key,
            table_id=input.table_id,
            name=input.name,
            budget=None if input.budget is None else credit_amount(input.budget, "budget"),
            hold=0 if input.hold is None else credit_amount(input.hold, "hold"),
            hold_ttl_seconds=input.hold_minutes * 60,
        )
        return Run(row=await start_run(workspace_id, request, info.context.now))

    @strawberry.mutation(
        description="R23: refuse new work; results sent before now are still charged. Releases"
        " the unused hold. Stopping a stopped or finished run changes nothing."
    )
    async def stop_run(self, info: Info, run_id: strawberry.ID) -> Run:
        workspace_id = await info.context.workspace_id()
        return Run(row=await end_run(workspace_id, run_id, RunStatus.STOPPED, info.context.now))

    @strawberry.mutation(description="The run is complete: like stopRun, with status FINISHED.")
    async def finish_run(self, info: Info, run_id: strawberry.ID) -> Run:
        workspace_id = await info.context.workspace_id()
        return Run(row=await end_run(workspace_id, run_id, RunStatus.FINISHED, info.context.now))

    @strawberry.mutation(description="R22: return a charge's Data Credits, whole or per result.")
    async def refund_charge(self, info: Info, input: RefundInput) -> RefundResult:
        workspace_id = await _refund_workspace(info, input.charge_id)
        request = RefundRequest(
            charge_id=str(input.charge_id),
            idempotency_key=input.idempotency_key,
            results=input.results,
            reason=input.reason,
        )

        async def refund() -> Refund:
            return Refund(row=await refund_charge(workspace_id, request, info.context.now))

        return await refusal_or(refund)

    @strawberry.mutation(description="R11, admin: set, change or (null) remove a workbook limit.")
    async def set_workbook_spend_limit(
        self, info: Info, workbook_id: strawberry.ID, limit: decimal.Decimal | None
    ) -> SetSpendLimitResult:
        workspace_id = await info.context.admin_workspace_id()
        units = None if limit is None else credit_amount(limit, "limit")

        async def update() -> Workbook:
            now = info.context.now
            return Workbook(row=await set_spend_limit(workspace_id, workbook_id, units, now))

        return await refusal_or(update)

    @strawberry.mutation(description="R19, admin: buy Data Credits once, up to the cap.")
    async def purchase_top_up(self, info: Info, input: TopUpInput) -> TopUpResult:
        workspace_id = await info.context.admin_workspace_id()
        request = TopUpRequest(
            credits=credit_amount(input.credits, "credits"),
            idempotency_key=input.idempotency_key,
            meter=Meter.DATA_CREDITS if input.meter is None else input.meter,
        )

        async def buy() -> TopUp:
            return TopUp(row=await purchase_top_up(workspace_id, request, info.context.now))

        return await refusal_or(buy)

    @strawberry.mutation(
        description="R20/R21, admin: upgrades now (prorated), downgrades at the cycle end."
    )
    async def change_plan(self, info: Info, input: ChangePlanInput) -> ChangePlanResult:
        workspace_id = await info.context.admin_workspace_id()
        request = PlanChangeRequest(
            plan=input.plan,
            idempotency_key=input.idempotency_key,
            credit_tier=input.credit_tier,
            billing_interval=input.billing_interval,
        )

        async def change() -> Workspace:
            return Workspace(row=await change_plan(workspace_id, request, info.context.now))

        return await refusal_or(change)

    @strawberry.mutation(description="R21, admin: take back a pending change.")
    async def withdraw_pending_change(self, info: Info) -> Workspace:
        workspace_id = await info.context.admin_workspace_id()
        return Workspace(row=await withdraw_pending_change(workspace_id, info.context.now))

    @strawberry.mutation(description="R21, admin: move to free at the cycle end.")
    async def cancel_subscription(self, info: Info) -> ChangePlanResult:
        """Never refused (R21: idempotent by nature); API.md types it as a plan change."""
        workspace_id = await info.context.admin_workspace_id()
        return Workspace(row=await cancel_subscription(workspace_id, info.context.now))
