"""What a usage report costs (R2–R6, R8). Pure: values in, `Cost` out."""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog import AiModelSpec, PriceSpec
from app.kinds import UsageKind, is_billable
from app.units import ceil_div


@dataclass(frozen=True)
class Cost:
    actions: int
    credits: int  # Data Credit minor units


FREE = Cost(0, 0)


def ai_credits(model: AiModelSpec, input_tokens: int, output_tokens: int) -> int:
    """Per-1,000-token prices, rounded up to the minor unit per charge (R1, R32)."""
    per_thousand = (
        input_tokens * model.input_units_per_1k + output_tokens * model.output_units_per_1k
    )
    return ceil_div(per_thousand, 1000)


def usage_cost(
    kind: UsageKind,
    results: int,
    *,
    own_api_key: bool = False,
    price: PriceSpec | None = None,
    model: AiModelSpec | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> Cost:
    """Cost of `results` successful results of `kind`.

    Free kinds cost nothing (R3). Billable kinds take one Action per result (R2). Data Credits
    come from the catalog price per result (R4) or the AI model's token prices (R6); the
    customer's own key costs no credits (R5); a billable kind with no provider costs none.
    """
    if not is_billable(kind):
        return FREE
    if own_api_key:
        return Cost(results, 0)
    if model is not None:
        return Cost(results, ai_credits(model, input_tokens, output_tokens))
    if price is not None:
        return Cost(results, price.credits_units * results)
    return Cost(results, 0)


def refund_share(credits: int, results: int, refunded_before: int, count: int) -> int:
    """Data Credits returned for `count` more refunded results of a charge (R22).

    Shares are cut from the cumulative total, so refunding every result one at a time returns
    exactly the charge's credits, never a unit more or less.
    """
    return credits * (refunded_before + count) // results - credits * refunded_before // results
