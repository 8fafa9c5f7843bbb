"""The catalog in the database: seeded from the data file, read as `app.catalog` values."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import cast

from app.catalog import AiModelSpec, BillingSpec, Catalog, PlanSpec, PriceSpec
from app.db import connection, fetch, in_list
from app.kinds import BillingInterval, UsageKind
from app.models import AiModel, BillingSetting, Plan, PlanTier, Price
from app.units import credits_to_units, units_to_credits


async def seed_catalog(catalog: Catalog) -> None:
    """Insert the rows the database lacks; never overwrite what an operator changed.

    ON CONFLICT DO NOTHING keeps several processes starting at once from colliding.
    """
    conn = connection()
    for plan in catalog.plans:
        await fetch(
            conn,
            "INSERT INTO plan (code, name, rank, intervals, monthly_actions, base_fee_cents,"
            " bill_credits, features) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (code) DO NOTHING",
            plan.code,
            plan.name,
            plan.rank,
            ",".join(i.value for i in plan.intervals),
            plan.monthly_actions,
            plan.base_fee_cents,
            plan.bill_credits,
            ",".join(plan.features),
        )
        for tier in plan.credit_tiers:
            await fetch(
                conn,
                "INSERT INTO plan_tier (plan_id, monthly_credits) VALUES ($1, $2)"
                " ON CONFLICT (plan_id, monthly_credits) DO NOTHING",
                plan.code,
                tier,
            )
    for price in catalog.prices:
        await fetch(
            conn,
            "INSERT INTO price (provider, data_type, kind, credits_units) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (provider, data_type) DO NOTHING",
            price.provider,
            price.data_type,
            price.kind.value,
            price.credits_units,
        )
    for model in catalog.ai_models:
        await fetch(
            conn,
            "INSERT INTO ai_model (code, input_units_per_1k, output_units_per_1k)"
            " VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
            model.code,
            model.input_units_per_1k,
            model.output_units_per_1k,
        )
    for key, value in _billing_rows(catalog.billing).items():
        await fetch(
            conn,
            "INSERT INTO billing_setting (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            key,
            value,
        )


def _billing_rows(billing: BillingSpec) -> dict[str, str]:
    return {
        "credit_price_usd": str(billing.credit_price_usd),
        "top_up_premium": str(billing.top_up_premium),
        "trial_plan": billing.trial_plan,
        "trial_days": str(billing.trial_days),
        "trial_credits": str(units_to_credits(billing.trial_credits_units)),
        "free_plan": billing.free_plan,
    }


async def billing_spec() -> BillingSpec:
    rows = {r.key: r.value for r in await BillingSetting.all()}
    default = BillingSpec()
    return BillingSpec(
        credit_price_usd=Decimal(rows.get("credit_price_usd", default.credit_price_usd)),
        top_up_premium=Decimal(rows.get("top_up_premium", default.top_up_premium)),
        trial_plan=rows.get("trial_plan", default.trial_plan),
        trial_days=int(rows.get("trial_days", default.trial_days)),
        trial_credits_units=credits_to_units(rows.get("trial_credits", "1000")),
        free_plan=rows.get("free_plan", default.free_plan),
    )


def _plan_spec(plan: Plan, tiers: list[int]) -> PlanSpec:
    return PlanSpec(
        code=plan.code,
        name=plan.name,
        rank=plan.rank,
        intervals=tuple(BillingInterval(i) for i in plan.intervals.split(",") if i),
        monthly_actions=plan.monthly_actions,
        credit_tiers=tuple(sorted(tiers)),
        base_fee_cents=plan.base_fee_cents,
        bill_credits=plan.bill_credits,
        features=tuple(f for f in plan.features.split(",") if f),
    )


async def list_plans() -> list[PlanSpec]:
    tiers: dict[str, list[int]] = {}
    for tier in await PlanTier.all():
        tiers.setdefault(tier.plan_id, []).append(tier.monthly_credits)
    plans = await Plan.all().order_by("rank", "code")
    return [_plan_spec(p, tiers.get(p.code, [])) for p in plans]


async def get_plan(code: str) -> PlanSpec | None:
    plan = await Plan.get_or_none(code=code)
    if plan is None:
        return None
    query = PlanTier.filter(plan_id=code).values_list("monthly_credits", flat=True)
    tiers = cast(list[int], await query)  # flat: the column's values, not rows (tortoise's type)
    return _plan_spec(plan, list(tiers))


def _price_spec(row: Price) -> PriceSpec:
    return PriceSpec(row.provider, row.data_type, UsageKind(row.kind), row.credits_units)


async def list_prices() -> list[PriceSpec]:
    return [_price_spec(p) for p in await Price.all().order_by("provider", "data_type")]


async def get_price(provider: str, data_type: str) -> PriceSpec | None:
    return (await get_prices({(provider, data_type)})).get((provider, data_type))


async def get_prices(pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], PriceSpec]:
    """The catalog's prices among `pairs` (provider, data type), in one read."""
    if not pairs:
        return {}
    providers, data_types = sorted({p for p, _ in pairs}), sorted({d for _, d in pairs})
    # Plain SQL, not the ORM's query builder: a one-item request makes this read too.
    rows = await fetch(
        connection(),
        "SELECT provider, data_type, kind, credits_units FROM price"
        f" WHERE provider IN ({in_list(providers)})"
        f" AND data_type IN ({in_list(data_types, len(providers) + 1)})",
        *providers,
        *data_types,
    )
    specs = {
        (r["provider"], r["data_type"]): PriceSpec(
            r["provider"], r["data_type"], UsageKind(r["kind"]), r["credits_units"]
        )
        for r in rows
    }
    return {pair: spec for pair, spec in specs.items() if pair in pairs}


async def provider_known(provider: str) -> bool:
    return await Price.filter(provider=provider).exists()


async def list_ai_models() -> list[AiModelSpec]:
    return [
        AiModelSpec(m.code, m.input_units_per_1k, m.output_units_per_1k)
        for m in await AiModel.all().order_by("code")
    ]


async def get_ai_models(codes: Collection[str]) -> dict[str, AiModelSpec]:
    """The catalog's models among `codes`, in one read."""
    if not codes:
        return {}
    wanted = sorted(set(codes))
    rows = await fetch(
        connection(),
        "SELECT code, input_units_per_1k, output_units_per_1k FROM ai_model"
        f" WHERE code IN ({in_list(wanted)})",
        *wanted,
    )
    return {
        r["code"]: AiModelSpec(r["code"], r["input_units_per_1k"], r["output_units_per_1k"])
        for r in rows
    }


async def get_ai_model(code: str) -> AiModelSpec | None:
    return (await get_ai_models({code})).get(code)
