"""What a usage costs with the catalog in the database: shared by charges and estimates."""

from __future__ import annotations

from dataclasses import dataclass, replace

from app import validation
from app.catalog import AiModelSpec, PriceSpec
from app.catalog.store import get_ai_model, get_price, provider_known
from app.errors import InvalidInput
from app.kinds import UsageKind, is_billable
from app.pricing import FREE, Cost, usage_cost


@dataclass(frozen=True)
class Usage:
    kind: UsageKind
    results: int
    provider: str | None = None
    data_type: str | None = None
    own_api_key: bool = False
    model: str | None = None  # AI only
    input_tokens: int = 0
    output_tokens: int = 0


def check_usage(usage: Usage, count_field: str = "results") -> None:
    """Reject combinations that cannot be priced, naming the field at fault."""
    validation.whole_number(usage.results, count_field, 1, validation.MAX_RESULTS)
    validation.label(usage.provider, "provider")
    validation.label(usage.data_type, "dataType")
    validation.label(usage.model, "model")
    if (usage.provider is None) != (usage.data_type is None):
        raise InvalidInput("provider and dataType go together: give both or neither")
    is_ai = usage.kind is UsageKind.AI
    if not is_ai and (usage.model is not None or usage.input_tokens or usage.output_tokens):
        raise InvalidInput("model, inputTokens and outputTokens are for kind AI only")
    if is_ai:
        if usage.provider is not None:
            raise InvalidInput("AI usage is priced by model: leave provider and dataType out")
        validation.whole_number(usage.input_tokens, "inputTokens", 0, validation.MAX_TOKENS)
        validation.whole_number(usage.output_tokens, "outputTokens", 0, validation.MAX_TOKENS)
        if usage.model is None and not usage.own_api_key:
            raise InvalidInput("AI usage needs a model from the catalog (or ownApiKey: true)")


async def _price(usage: Usage) -> PriceSpec | None:
    if usage.provider is None or usage.data_type is None:
        if usage.kind is UsageKind.ENRICHMENT:
            raise InvalidInput("an ENRICHMENT needs a provider and dataType from the price catalog")
        return None
    price = await get_price(usage.provider, usage.data_type)
    if price is None:
        if not await provider_known(usage.provider):
            raise InvalidInput(f"unknown provider {usage.provider!r}")
        raise InvalidInput(f"provider {usage.provider!r} has no data type {usage.data_type!r}")
    if price.kind is not usage.kind:
        raise InvalidInput(
            f"{usage.provider}/{usage.data_type} is priced for {price.kind.value}, "
            f"not {usage.kind.value}"
        )
    return price


async def _model(usage: Usage) -> AiModelSpec | None:
    if usage.own_api_key:
        return None  # the customer's own AI key: any model name, no credits (R5, R6)
    model = await get_ai_model(usage.model or "")
    if model is None:
        raise InvalidInput(f"unknown AI model {usage.model!r}")
    return model


async def cost_of(usage: Usage, count_field: str = "results") -> Cost:
    check_usage(usage, count_field)
    if not is_billable(usage.kind):
        return FREE  # free kinds are labels only: provider and dataType are not priced (R3)
    model = await _model(usage) if usage.kind is UsageKind.AI else None
    price = None if usage.kind is UsageKind.AI else await _price(usage)
    return usage_cost(
        usage.kind,
        usage.results,
        own_api_key=usage.own_api_key,
        price=price,
        model=model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
    )


async def estimate(usage: Usage) -> Cost:
    """R7: the cost of `usage.results` records, each charged on its own, with no side effects.

    For AI, tokens are per record and each record's charge rounds up on its own.
    """
    check_usage(usage, "records")
    one = await cost_of(replace(usage, results=1), "records")
    return Cost(one.actions * usage.results, one.credits * usage.results)
