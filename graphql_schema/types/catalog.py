"""The plan and price catalogs."""

from __future__ import annotations

import decimal

import strawberry

from app.catalog import AiModelSpec, PlanSpec, PriceSpec
from app.units import cents_to_usd, units_to_credits
from graphql_schema.enums import BillingInterval, UsageKind


@strawberry.type
class Plan:
    code: str
    name: str
    rank: int
    features: list[str]
    monthly_actions: int
    credit_tiers: list[int] = strawberry.field(description="Tiers of monthly Data Credits.")
    intervals: list[BillingInterval]
    monthly_base_fee: decimal.Decimal = strawberry.field(description="USD a month, before credits.")

    @classmethod
    def of(cls, spec: PlanSpec) -> Plan:
        return cls(
            code=spec.code,
            name=spec.name,
            rank=spec.rank,
            features=list(spec.features),
            monthly_actions=spec.monthly_actions,
            credit_tiers=list(spec.credit_tiers),
            intervals=list(spec.intervals),
            monthly_base_fee=cents_to_usd(spec.base_fee_cents),
        )


@strawberry.type
class Price:
    provider: str
    data_type: str
    kind: UsageKind
    credits: decimal.Decimal = strawberry.field(description="Data Credits per successful result.")

    @classmethod
    def of(cls, spec: PriceSpec) -> Price:
        return cls(
            provider=spec.provider,
            data_type=spec.data_type,
            kind=spec.kind,
            credits=units_to_credits(spec.credits_units),
        )


@strawberry.type
class AiModel:
    code: str
    input_credits_per_1k: decimal.Decimal
    output_credits_per_1k: decimal.Decimal

    @classmethod
    def of(cls, spec: AiModelSpec) -> AiModel:
        return cls(
            code=spec.code,
            input_credits_per_1k=units_to_credits(spec.input_units_per_1k),
            output_credits_per_1k=units_to_credits(spec.output_units_per_1k),
        )
