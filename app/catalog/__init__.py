"""The plan and price catalogs as plain values, parsed from a TOML data file (R4)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from app.kinds import BillingInterval, UsageKind
from app.units import credits_to_units, usd_to_cents

WORKBOOK_SPEND_LIMITS = "WORKBOOK_SPEND_LIMITS"


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    rank: int
    intervals: tuple[BillingInterval, ...]
    monthly_actions: int
    credit_tiers: tuple[int, ...]  # whole Data Credits per month, ascending
    base_fee_cents: int
    bill_credits: bool = True
    features: tuple[str, ...] = ()

    def has_feature(self, feature: str) -> bool:
        return feature in self.features

    def default_interval(self) -> BillingInterval:
        """R30: monthly, or annual where the plan offers only that."""
        if BillingInterval.MONTHLY in self.intervals:
            return BillingInterval.MONTHLY
        return self.intervals[0]


@dataclass(frozen=True)
class PriceSpec:
    provider: str
    data_type: str
    kind: UsageKind
    credits_units: int  # per successful result


@dataclass(frozen=True)
class AiModelSpec:
    code: str
    input_units_per_1k: int
    output_units_per_1k: int


@dataclass(frozen=True)
class BillingSpec:
    credit_price_usd: Decimal = Decimal("0.04")
    top_up_premium: Decimal = Decimal("0.30")
    trial_plan: str = "growth"
    trial_days: int = 14
    trial_credits_units: int = 1000 * 10_000
    free_plan: str = "free"


@dataclass(frozen=True)
class Catalog:
    billing: BillingSpec
    plans: tuple[PlanSpec, ...]
    prices: tuple[PriceSpec, ...]
    ai_models: tuple[AiModelSpec, ...] = field(default=())


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Parse a catalog file; the packaged default when no path is given."""
    if path is None:
        text = resources.files("app.catalog").joinpath("default.toml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return parse_catalog(tomllib.loads(text))


def parse_catalog(data: dict[str, Any]) -> Catalog:
    b = data.get("billing", {})
    billing = BillingSpec(
        credit_price_usd=Decimal(b.get("credit_price_usd", "0.04")),
        top_up_premium=Decimal(b.get("top_up_premium", "0.30")),
        trial_plan=b.get("trial_plan", "growth"),
        trial_days=int(b.get("trial_days", 14)),
        trial_credits_units=credits_to_units(b.get("trial_credits", "1000")),
        free_plan=b.get("free_plan", "free"),
    )
    plans = tuple(
        PlanSpec(
            code=p["code"],
            name=p["name"],
            rank=int(p["rank"]),
            intervals=tuple(BillingInterval(i) for i in p["intervals"]),
            monthly_actions=int(p["monthly_actions"]),
            credit_tiers=tuple(sorted(int(t) for t in p["credit_tiers"])),
            base_fee_cents=usd_to_cents(Decimal(p.get("base_fee_usd", "0"))),
            bill_credits=bool(p.get("bill_credits", True)),
            features=tuple(p.get("features", ())),
        )
        for p in data.get("plans", [])
    )
    prices = tuple(
        PriceSpec(
            provider=r["provider"],
            data_type=r["data_type"],
            kind=UsageKind(r.get("kind", "ENRICHMENT")),
            credits_units=credits_to_units(r["credits"]),
        )
        for r in data.get("prices", [])
    )
    models = tuple(
        AiModelSpec(
            code=m["code"],
            input_units_per_1k=credits_to_units(m["input_credits_per_1k"]),
            output_units_per_1k=credits_to_units(m["output_credits_per_1k"]),
        )
        for m in data.get("ai_models", [])
    )
    return Catalog(billing=billing, plans=plans, prices=prices, ai_models=models)
