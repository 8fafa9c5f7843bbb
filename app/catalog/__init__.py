"""The plan and price catalogs as plain values, parsed from a TOML data file (R4)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from app.kinds import BillingInterval, UsageKind

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
    """Parse a catalog file, checked as `tally catalog apply` checks it; the packaged default
    when no path is given."""
    if path is None:
        text = resources.files("app.catalog").joinpath("default.toml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return parse_catalog(tomllib.loads(text))


def parse_catalog(data: dict[str, Any]) -> Catalog:
    from app.catalog.files import check_catalog  # the checks import these types

    return check_catalog(data)
