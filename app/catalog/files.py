"""The catalog's file format (app/catalog/default.toml): checked field by field, and written back.

An operator's file is refused with the first thing wrong in it, named by where it is
(`plans[2].credit_tiers`), before anything changes (R40). `dump_catalog` writes the same format,
so what `tally catalog show` prints can be applied again; parse(dump(c)) == c.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from typing import Any

from app.catalog import (
    WORKBOOK_SPEND_LIMITS,
    AiModelSpec,
    BillingSpec,
    Catalog,
    PlanSpec,
    PriceSpec,
)
from app.errors import InvalidInput
from app.kinds import BillingInterval, UsageKind, is_billable
from app.units import cents_to_usd, credits_text, credits_to_units, usd_to_cents

FEATURES = (WORKBOOK_SPEND_LIMITS,)
MAX_PLAN_CODE = 32  # workspace.plan_code
MAX_LABEL = 64  # providers, data types and models, as usage reports spell them
_SECTIONS = {"billing", "plans", "prices", "ai_models"}
_BILLING = {"credit_price_usd", "top_up_premium", "trial_plan", "trial_days", "trial_credits",
            "free_plan"}  # fmt: skip
_PLAN = {"code", "name", "rank", "intervals", "monthly_actions", "credit_tiers", "base_fee_usd",
         "bill_credits", "features"}  # fmt: skip
_PRICE = {"provider", "data_type", "kind", "credits"}
_MODEL = {"code", "input_credits_per_1k", "output_credits_per_1k"}


class CatalogError(InvalidInput):
    """A catalog file that cannot be applied; the message says where and why."""


def parse_catalog_text(text: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"not TOML: {error}") from None
    return check_catalog(data)


def check_catalog(data: dict[str, Any]) -> Catalog:
    _keys(data, _SECTIONS, "the file")
    billing_data = _table(data.get("billing", {}), "billing")
    _keys(billing_data, _BILLING, "billing")
    plans = tuple(_plan(p, f"plans[{i}]") for i, p in enumerate(_list(data, "plans", "the file")))
    prices = tuple(
        _price(p, f"prices[{i}]") for i, p in enumerate(_list(data, "prices", "the file"))
    )
    models = tuple(
        _model(m, f"ai_models[{i}]") for i, m in enumerate(_list(data, "ai_models", "the file"))
    )
    billing = _billing(billing_data)
    if not plans:
        raise CatalogError("the file has no [[plans]]")
    _unique([p.code for p in plans], "plans", "code")
    _unique([str(p.rank) for p in plans], "plans", "rank")
    _unique([f"{p.provider}/{p.data_type}" for p in prices], "prices", "provider/data_type")
    _unique([m.code for m in models], "ai_models", "code")
    codes = {p.code for p in plans}
    for key in ("free_plan", "trial_plan"):
        code = getattr(billing, key)
        if code not in codes:
            raise CatalogError(f"billing.{key} is {code!r}, which no [[plans]] entry has")
    return Catalog(billing=billing, plans=plans, prices=prices, ai_models=models)


def _keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CatalogError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(allowed))}"
        )


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where} must be a table")
    return value


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise CatalogError(f"{where}: {key} must be an array of tables ([[{key}]])")
    return value


def _required(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise CatalogError(f"{where}.{key} is missing")
    return data[key]


def _text(value: Any, where: str, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where} must be a non-empty string")
    if len(value) > longest or "\x00" in value:
        raise CatalogError(f"{where} must be at most {longest} characters, without NUL")
    return value


def _whole(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogError(f"{where} must be a whole number; got {value!r}")
    if not low <= value <= 2**31 - 1:
        raise CatalogError(f"{where} must be between {low} and {2**31 - 1}; got {value}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    """Amounts are decimal strings (or whole numbers), never floats: 0.1 is not exact."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CatalogError(f'{where} must be a decimal string such as "0.5"; got {value!r}')
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise CatalogError(f"{where} is not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise CatalogError(f"{where} must be zero or more; got {value!r}")
    if amount > 10**9:
        raise CatalogError(f"{where} is too large: {value!r}")
    return amount


def _credits(value: Any, where: str) -> int:
    amount = _decimal(value, where)
    try:
        return credits_to_units(amount)
    except ValueError:
        raise CatalogError(f"{where} has more than 4 decimal places: {value!r}") from None


def _usd_cents(value: Any, where: str) -> int:
    amount = _decimal(value, where)
    if amount != amount.quantize(Decimal("0.01")):
        raise CatalogError(f"{where} is in USD, to the cent: {value!r}")
    return usd_to_cents(amount)


def _billing(b: dict[str, Any]) -> BillingSpec:
    default = BillingSpec()
    trial_credits = b.get("trial_credits", credits_text(default.trial_credits_units))
    trial_days = _whole(b.get("trial_days", default.trial_days), "billing.trial_days", 1)
    return BillingSpec(
        credit_price_usd=_decimal(
            b.get("credit_price_usd", str(default.credit_price_usd)), "billing.credit_price_usd"
        ),
        top_up_premium=_decimal(
            b.get("top_up_premium", str(default.top_up_premium)), "billing.top_up_premium"
        ),
        trial_plan=_text(b.get("trial_plan", default.trial_plan), "billing.trial_plan", 32),
        trial_days=trial_days,
        trial_credits_units=_credits(trial_credits, "billing.trial_credits"),
        free_plan=_text(b.get("free_plan", default.free_plan), "billing.free_plan", 32),
    )


def _plan(value: Any, where: str) -> PlanSpec:
    p = _table(value, where)
    _keys(p, _PLAN, where)
    intervals = _required(p, "intervals", where)
    if not isinstance(intervals, list) or not intervals:
        raise CatalogError(f'{where}.intervals must list MONTHLY and/or ANNUAL, e.g. ["MONTHLY"]')
    try:
        parsed = tuple(BillingInterval(i) for i in intervals)
    except ValueError:
        raise CatalogError(
            f"{where}.intervals: each is MONTHLY or ANNUAL; got {intervals}"
        ) from None
    if len(set(parsed)) != len(parsed):
        raise CatalogError(f"{where}.intervals names one twice: {intervals}")
    tiers = _required(p, "credit_tiers", where)
    if not isinstance(tiers, list) or not tiers:
        raise CatalogError(f"{where}.credit_tiers must list the monthly Data Credits, e.g. [100]")
    tier_values = [_whole(t, f"{where}.credit_tiers", 1) for t in tiers]
    if len(set(tier_values)) != len(tier_values):
        raise CatalogError(f"{where}.credit_tiers names one twice: {tiers}")
    features = p.get("features", [])
    if not isinstance(features, list) or any(f not in FEATURES for f in features):
        raise CatalogError(
            f"{where}.features: each is one of {', '.join(FEATURES)}; got {features}"
        )
    bill_credits = p.get("bill_credits", True)
    if not isinstance(bill_credits, bool):
        raise CatalogError(f"{where}.bill_credits must be true or false")
    return PlanSpec(
        code=_text(_required(p, "code", where), f"{where}.code", MAX_PLAN_CODE),
        name=_text(_required(p, "name", where), f"{where}.name", 100),
        rank=_whole(_required(p, "rank", where), f"{where}.rank"),
        intervals=parsed,
        monthly_actions=_whole(_required(p, "monthly_actions", where), f"{where}.monthly_actions"),
        credit_tiers=tuple(sorted(tier_values)),
        base_fee_cents=_usd_cents(p.get("base_fee_usd", "0"), f"{where}.base_fee_usd"),
        bill_credits=bill_credits,
        features=tuple(features),
    )


def _price(value: Any, where: str) -> PriceSpec:
    r = _table(value, where)
    _keys(r, _PRICE, where)
    kind_name = r.get("kind", UsageKind.ENRICHMENT.value)
    try:
        kind = UsageKind(kind_name)
    except ValueError:
        kind = None
    if kind is None or kind is UsageKind.AI or not is_billable(kind):
        raise CatalogError(f"{where}.kind must be a billable kind other than AI; got {kind_name!r}")
    return PriceSpec(
        provider=_text(_required(r, "provider", where), f"{where}.provider", MAX_LABEL),
        data_type=_text(_required(r, "data_type", where), f"{where}.data_type", MAX_LABEL),
        kind=kind,
        credits_units=_credits(_required(r, "credits", where), f"{where}.credits"),
    )


def _model(value: Any, where: str) -> AiModelSpec:
    m = _table(value, where)
    _keys(m, _MODEL, where)
    return AiModelSpec(
        code=_text(_required(m, "code", where), f"{where}.code", MAX_LABEL),
        input_units_per_1k=_credits(
            _required(m, "input_credits_per_1k", where), f"{where}.input_credits_per_1k"
        ),
        output_units_per_1k=_credits(
            _required(m, "output_credits_per_1k", where), f"{where}.output_credits_per_1k"
        ),
    )


def _unique(values: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise CatalogError(f"two [[{section}]] entries have the {key} {value!r}")
        seen.add(value)


def _q(value: str) -> str:
    """A TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    for char, code in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = escaped.replace(char, code)
    return f'"{escaped}"'


def _strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def dump_catalog(catalog: Catalog) -> str:
    """The catalog in the file format, canonical: what `tally catalog show` prints."""
    b = catalog.billing
    lines = [
        "[billing]",
        f"credit_price_usd = {_q(str(b.credit_price_usd))}",
        f"top_up_premium = {_q(str(b.top_up_premium))}",
        f"trial_plan = {_q(b.trial_plan)}",
        f"trial_days = {b.trial_days}",
        f"trial_credits = {_q(credits_text(b.trial_credits_units))}",
        f"free_plan = {_q(b.free_plan)}",
    ]
    for p in catalog.plans:
        lines += [
            "",
            "[[plans]]",
            f"code = {_q(p.code)}",
            f"name = {_q(p.name)}",
            f"rank = {p.rank}",
            f"intervals = {_strings(tuple(i.value for i in p.intervals))}",
            f"monthly_actions = {p.monthly_actions}",
            f"credit_tiers = [{', '.join(str(t) for t in p.credit_tiers)}]",
            f"base_fee_usd = {_q(_usd(p.base_fee_cents))}",
            f"bill_credits = {'true' if p.bill_credits else 'false'}",
            f"features = {_strings(p.features)}",
        ]
    for r in catalog.prices:
        lines += [
            "",
            "[[prices]]",
            f"provider = {_q(r.provider)}",
            f"data_type = {_q(r.data_type)}",
            f"kind = {_q(r.kind.value)}",
            f"credits = {_q(credits_text(r.credits_units))}",
        ]
    for m in catalog.ai_models:
        lines += [
            "",
            "[[ai_models]]",
            f"code = {_q(m.code)}",
            f"input_credits_per_1k = {_q(credits_text(m.input_units_per_1k))}",
            f"output_credits_per_1k = {_q(credits_text(m.output_units_per_1k))}",
        ]
    return "\n".join(lines) + "\n"


def _usd(cents: int) -> str:
    usd = cents_to_usd(cents)
    return str(usd.quantize(Decimal(1))) if usd == usd.to_integral_value() else str(usd)
