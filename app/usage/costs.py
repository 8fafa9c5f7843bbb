"""What a usage costs with the catalog in the database: shared by charges and estimates."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from app import validation
from app.catalog import AiModelSpec, PriceSpec
from app.catalog.store import catalog_at, get_ai_model, get_price, provider_known
from app.errors import InvalidInput
from app.kinds import UsageKind, is_billable
from app.models import Workspace
from app.usage.estimates import Coverage, coverage, expected_results
from app.usage.pricing import FREE, Cost, usage_cost
from app.usage.rules import LimitState, WorkspaceMeters
from app.workspaces.workbooks import get_workbook


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


def _is_label(value: str) -> bool:
    try:
        validation.label(value, "")
    except InvalidInput:
        return False
    return True


class CatalogCache:
    """The catalog in force at `at` (R40), read once per request: a batch of 1,000 charges
    prices from one read, and a batch of free kinds from none."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._prices: dict[tuple[str, str], PriceSpec | None] = {}
        self._models: dict[str, AiModelSpec | None] = {}

    async def preload(self, usages: Iterable[Usage]) -> None:
        """Read the prices and models of all `usages` at once: one read for a batch instead
        of one per distinct provider, data type and model. What the catalog lacks is cached
        as missing, so the per-usage checks still name it."""
        pairs: set[tuple[str, str]] = set()
        codes: set[str] = set()
        for usage in usages:  # only what `cost_of` would read for a valid usage
            if not is_billable(usage.kind):
                continue
            if usage.kind is UsageKind.AI:
                if usage.model is not None and not usage.own_api_key:
                    codes.add(usage.model)
            elif usage.provider is not None and usage.data_type is not None:
                pairs.add((usage.provider, usage.data_type))
        # Names that are not valid labels are left to the per-usage check, which says why.
        pairs = {p for p in pairs - self._prices.keys() if _is_label(p[0]) and _is_label(p[1])}
        codes = {c for c in codes - self._models.keys() if _is_label(c)}
        if not pairs and not codes:
            return
        catalog = await catalog_at(self.at)
        prices = {(p.provider, p.data_type): p for p in catalog.prices}
        models = {m.code: m for m in catalog.ai_models}
        self._prices.update((pair, prices.get(pair)) for pair in pairs)
        self._models.update((code, models.get(code)) for code in codes)

    async def price(self, provider: str, data_type: str) -> PriceSpec | None:
        key = (provider, data_type)
        if key not in self._prices:
            self._prices[key] = await get_price(provider, data_type, self.at)
        return self._prices[key]

    async def model(self, code: str) -> AiModelSpec | None:
        if code not in self._models:
            self._models[code] = await get_ai_model(code, self.at)
        return self._models[code]


async def _price(usage: Usage, catalog: CatalogCache) -> PriceSpec | None:
    if usage.provider is None or usage.data_type is None:
        if usage.kind is UsageKind.ENRICHMENT:
            raise InvalidInput("an ENRICHMENT needs a provider and dataType from the price catalog")
        return None
    price = await catalog.price(usage.provider, usage.data_type)
    if price is None:
        if not await provider_known(usage.provider, catalog.at):
            raise InvalidInput(f"unknown provider {usage.provider!r}")
        raise InvalidInput(f"provider {usage.provider!r} has no data type {usage.data_type!r}")
    if price.kind is not usage.kind:
        raise InvalidInput(
            f"{usage.provider}/{usage.data_type} is priced for {price.kind.value}, "
            f"not {usage.kind.value}"
        )
    return price


async def _model(usage: Usage, catalog: CatalogCache) -> AiModelSpec | None:
    if usage.own_api_key:
        return None  # the customer's own AI key: any model name, no credits (R5, R6)
    model = await catalog.model(usage.model or "")
    if model is None:
        raise InvalidInput(f"unknown AI model {usage.model!r}")
    if usage.input_tokens + usage.output_tokens == 0:
        # Priced by its tokens (R6): without any, the charge would cost no Data Credits.
        raise InvalidInput(
            f"AI usage with model {usage.model!r} needs its inputTokens and outputTokens"
        )
    return model


async def cost_of(usage: Usage, catalog: CatalogCache, count_field: str = "results") -> Cost:
    check_usage(usage, count_field)
    if not is_billable(usage.kind):
        return FREE  # free kinds are labels only: provider and dataType are not priced (R3)
    model = await _model(usage, catalog) if usage.kind is UsageKind.AI else None
    price = None if usage.kind is UsageKind.AI else await _price(usage, catalog)
    return usage_cost(
        usage.kind,
        usage.results,
        own_api_key=usage.own_api_key,
        price=price,
        model=model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
    )


async def estimate(usage: Usage, now: datetime) -> Cost:
    """R7: the cost of `usage.results` records, each charged on its own, with no side effects,
    at the catalog in force `now`.

    For AI, tokens are per record and each record's charge rounds up on its own.
    """
    check_usage(usage, "records")
    one = await cost_of(replace(usage, results=1), CatalogCache(now), "records")
    return Cost(one.actions * usage.results, one.credits * usage.results)


@dataclass(frozen=True)
class EstimateOption:
    usage: Usage  # `results` = the records the run will process
    hit_rate: Decimal | None = None


@dataclass(frozen=True)
class OptionEstimate:
    option: EstimateOption
    results: int  # expected billable results
    cost: Cost


@dataclass(frozen=True)
class RunEstimate:
    options: list[OptionEstimate]
    total: Cost
    coverage: Coverage


MAX_OPTIONS = 50


async def estimate_run(
    workspace_id: uuid.UUID,
    options: list[EstimateOption],
    now: datetime,
    workbook_id: str | None = None,
) -> RunEstimate:
    """R7: each option's Actions and Data Credits, the total, and whether the workspace, the
    workbook's limit and the Actions capacity cover it now. Nothing is charged or held."""
    if not 1 <= len(options) <= MAX_OPTIONS:
        raise InvalidInput(f"an estimate has 1 to {MAX_OPTIONS} options; got {len(options)}")
    priced = []
    for option in options:
        check_usage(option.usage, "records")
        results = expected_results(option.usage.results, option.hit_rate)
        cost = await estimate(replace(option.usage, results=max(results, 1)), now)
        if results == 0:
            cost = Cost(0, 0)
        priced.append(OptionEstimate(option, results, cost))
    total = Cost(sum(p.cost.actions for p in priced), sum(p.cost.credits for p in priced))
    billable = any(is_billable(p.option.usage.kind) and p.results for p in priced)
    ws = await Workspace.get(id=workspace_id)
    meters = WorkspaceMeters(
        ws.actions_capacity - ws.actions_used, ws.credit_balance, ws.credits_held
    )
    limit = None
    if workbook_id is not None:
        book = await get_workbook(workspace_id, workbook_id)
        limit = LimitState(book.name, book.spend_limit, book.spent)
    return RunEstimate(priced, total, coverage(total, billable, meters, limit))
