"""Workspaces with both meters, and API keys."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from app import models
from app.kinds import BillingInterval as DomainInterval
from app.plans.terms import credit_cap
from app.units import units_to_credits
from app.workspaces.workbooks import MAX_PAGE, list_workbooks
from graphql_schema.context import Info
from graphql_schema.enums import BillingInterval, Role, WorkspaceStatus
from graphql_schema.types.catalog import Plan
from graphql_schema.types.workbook import Workbook


@strawberry.type
class Period:
    start: datetime
    end: datetime


@strawberry.type(description="Actions: platform capacity, renewed monthly, never bought (R9).")
class ActionsMeter:
    capacity: int
    used: int
    remaining: int
    resets_at: datetime


@strawberry.type(description="Data Credits: a currency, rolled over up to the cap (R16, R19).")
class DataCreditsMeter:
    balance: decimal.Decimal
    cap: decimal.Decimal
    monthly_grant: decimal.Decimal
    held: decimal.Decimal = strawberry.field(
        description="Part of the balance set aside for runs (R6): only those runs may spend it."
    )
    available: decimal.Decimal = strawberry.field(
        description="balance - held: what any new work may spend."
    )


@strawberry.type
class PendingChange:
    plan: Plan
    credit_tier: int | None
    billing_interval: BillingInterval
    effective_at: datetime


@strawberry.type
class Workspace:
    row: strawberry.Private[models.Workspace]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    async def plan(self, info: Info) -> Plan:
        spec = await info.context.loaders.plans.load(self.row.plan_code)
        assert spec is not None, f"workspace on unknown plan {self.row.plan_code}"
        return Plan.of(spec)

    @strawberry.field(description="Monthly Data Credits of the tier; null during a trial.")
    def credit_tier(self) -> int | None:
        return self.row.credit_tier

    @strawberry.field
    def billing_interval(self) -> BillingInterval:
        return DomainInterval(self.row.billing_interval)

    @strawberry.field
    def status(self) -> WorkspaceStatus:
        return self.row.status  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field
    def trial_ends_at(self) -> datetime | None:
        return self.row.trial_ends_at

    @strawberry.field(description="The original subscription timestamp cycles renew at (R14).")
    def billing_anchor(self) -> datetime:
        return self.row.anchor_at

    @strawberry.field
    def current_period(self) -> Period:
        return Period(start=self.row.period_start, end=self.row.period_end)

    @strawberry.field(
        description="A downgrade, cancellation or a plan chosen in a trial, due at the cycle end."
    )
    async def pending_change(self, info: Info) -> PendingChange | None:
        m = self.row
        if m.pending_plan_code is None:
            return None
        spec = await info.context.loaders.plans.load(m.pending_plan_code)
        assert spec is not None, f"pending change to unknown plan {m.pending_plan_code}"
        return PendingChange(
            plan=Plan.of(spec),
            credit_tier=m.pending_credit_tier,
            billing_interval=DomainInterval(m.pending_interval or m.billing_interval),
            effective_at=m.period_end,
        )

    @strawberry.field
    def actions(self) -> ActionsMeter:
        m = self.row
        return ActionsMeter(
            capacity=m.actions_capacity,
            used=m.actions_used,
            remaining=m.actions_capacity - m.actions_used,
            resets_at=m.actions_period_end,
        )

    @strawberry.field
    def data_credits(self) -> DataCreditsMeter:
        m = self.row
        return DataCreditsMeter(
            balance=units_to_credits(m.credit_balance),
            cap=units_to_credits(credit_cap(m.monthly_credits, DomainInterval(m.billing_interval))),
            monthly_grant=units_to_credits(m.monthly_credits),
            held=units_to_credits(m.credits_held),
            available=units_to_credits(m.credit_balance - m.credits_held),
        )

    @strawberry.field(
        description="Oldest first, `first` at a time (1 to 1,000); `after` a workbook's id."
    )
    async def workbooks(
        self, first: int = MAX_PAGE, after: strawberry.ID | None = None
    ) -> list[Workbook]:
        rows = await list_workbooks(self.row.id, first, None if after is None else str(after))
        return [Workbook(row=w) for w in rows]

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type
class ApiKey:
    row: strawberry.Private[models.ApiKey]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def role(self) -> Role:
        return self.row.role  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field(description="The secret's first characters, to tell keys apart.")
    def prefix(self) -> str:
        return self.row.prefix

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def revoked_at(self) -> datetime | None:
        return self.row.revoked_at


@strawberry.type
class CreatedApiKey:
    api_key: ApiKey
    secret: str = strawberry.field(description="Shown once; only its hash is stored.")


@strawberry.type
class CreateWorkspaceResult:
    workspace: Workspace
    admin_key: str = strawberry.field(description="The admin key's secret, shown once.")


@strawberry.input
class CreateWorkspaceInput:
    name: str
    plan: str
    credit_tier: int | None = None
    billing_interval: BillingInterval | None = None
    trial: bool | None = False
