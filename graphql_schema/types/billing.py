"""Money: top-ups and the billing charges of each cycle (R19, R20), with plan-change inputs."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from app import models
from app.units import cents_to_usd, units_to_credits
from graphql_schema.enums import BillingChargeKind, BillingInterval, Meter


@strawberry.type(description="Data Credits bought once, at the base price plus 30% (R19).")
class TopUp:
    row: strawberry.Private[models.BillingCharge]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def credits(self) -> decimal.Decimal:
        return units_to_credits(self.row.credits)

    @strawberry.field(description="In USD.")
    def price(self) -> decimal.Decimal:
        return cents_to_usd(self.row.amount_cents)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type(description="One amount of money a cycle is billed, for reconciliation.")
class BillingCharge:
    row: strawberry.Private[models.BillingCharge]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def kind(self) -> BillingChargeKind:
        return BillingChargeKind(self.row.kind)

    @strawberry.field(description="In USD, rounded half-up to the cent (R32).")
    def amount(self) -> decimal.Decimal:
        return cents_to_usd(self.row.amount_cents)

    @strawberry.field(description="Data Credits bought, or granted by the plan fee or upgrade.")
    def credits(self) -> decimal.Decimal:
        return units_to_credits(self.row.credits)

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field(description="The start of the cycle this is billed on.")
    def period_start(self) -> datetime:
        return self.row.period_start

    @strawberry.field
    def plan_code(self) -> str:
        return self.row.plan_code

    @strawberry.field
    def credit_tier(self) -> int | None:
        return self.row.credit_tier

    @strawberry.field
    def billing_interval(self) -> BillingInterval:
        return self.row.billing_interval  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.input
class TopUpInput:
    credits: decimal.Decimal
    idempotency_key: str
    meter: Meter | None = strawberry.field(
        default=Meter.DATA_CREDITS,
        description="DATA_CREDITS, also when null; ACTIONS is ACTIONS_NOT_PURCHASABLE.",
    )


@strawberry.input
class ChangePlanInput:
    plan: str
    idempotency_key: str
    credit_tier: int | None = None
    billing_interval: BillingInterval | None = None


@strawberry.input
class AutoTopUpInput:
    threshold: decimal.Decimal = strawberry.field(
        description="Buy when a change leaves available Data Credits below this."
    )
    credits: decimal.Decimal = strawberry.field(description="Data Credits bought each time.")
    max_per_cycle: int = 3


@strawberry.type(description="R37: Data Credits bought by themselves when available runs low.")
class AutoTopUp:
    row: strawberry.Private[models.Workspace]

    @strawberry.field(description="False once turned off (setAutoTopUp(input: null)).")
    def enabled(self) -> bool:
        return self.row.auto_topup_threshold is not None

    @strawberry.field
    def threshold(self) -> decimal.Decimal:
        return units_to_credits(self.row.auto_topup_threshold or 0)

    @strawberry.field
    def credits(self) -> decimal.Decimal:
        return units_to_credits(self.row.auto_topup_credits or 0)

    @strawberry.field
    def max_per_cycle(self) -> int:
        return self.row.auto_topup_max_per_cycle

    @strawberry.field(description="Purchases in the current cycle.")
    def used_this_cycle(self) -> int:
        return self.row.auto_topup_used
