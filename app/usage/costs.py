"""What a usage costs with the catalog in the database: shared by charges and estimates."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from app import validation
from app.catalog import AiModelSpec, Catalog, PriceSpec
from app.catalog.store import catalog_at
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


class CatalogCache:
    """The catalog in force at `at` (R40), read at most once per request: a batch of 1,000
    charges prices from one read, and a batch of free kinds from none. `known`: the same
    catalog, already read along with something else (app.catalog.store.in_force_columns)."""

    def __init__(self, at: datetime, known: Catalog | None = None) -> None:
        self.at = at
        self._catalog = known
        self._prices: dict[tuple[str, str], PriceSpec | None] | None = None
        self._models: dict[str, AiModelSpec | None] | None = None

    async def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = await catalog_at(self.at)
        return self._catalog

    async def preload(self, usages: Iterable[Usage]) -> None:
        """Read the catalog now if any of `usages` is priced from it: the per-usage lookups
        then read nothing."""
        for usage in usages:  # only what `cost_of` would read for a valid usage
            if not is_billable(usage.kind):
                continue
            if usage.kind is UsageKind.AI:
                wanted = usage.model is not None and not usage.own_api_key
            else:
                wanted = usage.provider is not None and usage.data_type is not None
            if wanted:
                await self.catalog()
                return

    async def price(self, provider: str, data_type: str) -> PriceSpec | None:
        if self._prices is None:
            prices = (await self.catalog()).prices
            self._prices = {(p.provider, p.data_type): p for p in prices}
        return self._prices.get((provider, data_type))

    async def model(self, code: str) -> AiModelSpec | None:
        if self._models is None:
            self._models = {m.code: m for m in (await self.catalog()).ai_models}
        return self._models.get(code)

    async def provider_known(self, provider: str) -> bool:
        return any(p.provider == provider for p in (await self.catalog()).prices)


async def _price(usage: Usage, catalog: CatalogCache) -> PriceSpec | None:
    if usage.provider is None or usage.data_type is None:
        if usage.kind is UsageKind.ENRICHMENT:
            raise InvalidInput("an ENRICHMENT needs a provider and dataType from the price catalog")
        return None
    price = await catalog.price(usage.provider, usage.data_type)
    if price is None:
        if not await catalog.provider_known(usage.provider):
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
