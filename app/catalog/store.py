"""The catalog in the database: versions in force from an instant on (R40), read as values.

Every read names its instant: a charge's, a renewal's boundary, a request's `now`. The catalog
in force at `at` is the latest `catalog_version` effective at or before it. A version is never
edited, so each process keeps the versions it parsed, by id: a read is one small statement that
returns the id in force and, only when it is not the one this process read last, the body.
A charge therefore makes the one catalog read it made before versions existed (none for free
kinds), and sees a version the moment another process commits it (app.catalog.changes holds
readers back while it commits one, so no read at or after its instant can miss it).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.catalog import AiModelSpec, BillingSpec, Catalog, PlanSpec, PriceSpec
from app.catalog.files import dump_catalog, parse_catalog_text
from app.db import connection, fetch, fetch_one, in_list
from app.units import credits_text

FIRST = datetime(1970, 1, 1, tzinfo=UTC)  # the seeded version is in force from then on

# (database, version id) -> the parsed catalog; (database) -> the id read last.
_parsed: dict[tuple[str, int], Catalog] = {}
_last: dict[str, int] = {}

_AT = (
    "SELECT id, CASE WHEN id = $2 THEN NULL ELSE body END AS body FROM catalog_version"
    " WHERE effective_at <= $1 ORDER BY effective_at DESC, id DESC LIMIT 1"
)


class NoCatalog(RuntimeError):
    """No version is in force at the instant: the database was never seeded."""


def _database() -> str:
    """Which database the cache is for: tests open several in one process, and ids repeat."""
    client: Any = connection()
    where = getattr(client, "filename", None) or (
        f"{getattr(client, 'host', '')}:{getattr(client, 'port', '')}"
        f"/{getattr(client, 'database', '')}"
    )
    return f"{client.capabilities.dialect}:{where}"


def _parse(database: str, version_id: int, body: str) -> Catalog:
    key = (database, version_id)
    if key not in _parsed:
        _parsed[key] = parse_catalog_text(body)
    return _parsed[key]


async def catalog_at(at: datetime, conn: BaseDBAsyncClient | None = None) -> Catalog:
    """The catalog in force at `at`: one read (through `conn`, a transaction's, if given)."""
    row = await fetch_one(conn or connection(), _AT, at, last_read())
    if row is None:
        raise NoCatalog(f"no catalog is in force at {at.isoformat()}; was the database seeded?")
    return adopt(row["id"], row["body"])


def in_force_columns(at: int, last: int) -> str:
    """`catalog_id` and `catalog_body` as two columns of a caller's own statement, so the
    catalog comes with a read the caller makes anyway (one round trip, not two): the version
    in force at parameter $`at`, its body only when its id is not parameter $`last`
    (`last_read()`). Hand both to `adopt`. Each is one index lookup, in the statement's
    snapshot, and waits for a catalog apply as `catalog_at` does."""
    version = (
        f"FROM catalog_version WHERE effective_at <= ${at}"
        " ORDER BY effective_at DESC, id DESC LIMIT 1"
    )
    return (
        f"(SELECT id {version}) AS catalog_id,"
        f" (SELECT CASE WHEN id = ${last} THEN NULL ELSE body END {version}) AS catalog_body"
    )


def last_read() -> int:
    """The id of the version this process parsed last for the database in use (-1: none)."""
    return _last.get(_database(), -1)


def adopt(version_id: Any, body: Any) -> Catalog:
    """The catalog of a read of the version in force: `body` None when it is the one read
    last, which this process parsed then."""
    if version_id is None:
        raise NoCatalog("no catalog is in force; was the database seeded?")
    database = _database()
    if body is None:
        return _parsed[(database, int(version_id))]
    catalog = _parse(database, int(version_id), str(body))
    _last[database] = int(version_id)
    return catalog


@dataclass
class Timeline:
    """Every version effective by some instant, for work that spans instants (renewals)."""

    starts: list[tuple[datetime, int]]  # (effective_at, id), ascending
    catalogs: list[Catalog]
    _held: dict[int, dict[str, PlanSpec]] = field(default_factory=dict)

    def _index(self, at: datetime) -> int:
        index = bisect.bisect_right(self.starts, (at, 2**63)) - 1
        if index < 0:
            raise NoCatalog(f"no catalog is in force at {at.isoformat()}")
        return index

    def at(self, at: datetime) -> Catalog:
        return self.catalogs[self._index(at)]

    def held_plans(self, at: datetime) -> dict[str, PlanSpec]:
        """The plans in force at `at`, and each plan removed before it as it last was: a
        workspace already on a removed plan keeps renewing on its last terms (R40)."""
        index = self._index(at)
        if index not in self._held:
            plans: dict[str, PlanSpec] = {}
            for catalog in self.catalogs[: index + 1]:
                plans.update((p.code, p) for p in catalog.plans)
            self._held[index] = plans
        return self._held[index]


async def timeline(until: datetime) -> Timeline:
    """The versions effective by `until`: one read, and one more for bodies not parsed yet."""
    database = _database()
    rows = await fetch(
        connection(),
        "SELECT id, effective_at FROM catalog_version WHERE effective_at <= $1"
        " ORDER BY effective_at, id",
        until,
    )
    ids = [int(r["id"]) for r in rows]
    missing = [i for i in ids if (database, i) not in _parsed]
    if missing:
        bodies = await fetch(
            connection(),
            f"SELECT id, body FROM catalog_version WHERE id IN ({in_list(missing)})",
            *missing,
        )
        for body in bodies:
            _parse(database, int(body["id"]), str(body["body"]))
    starts = [(aware(r["effective_at"]), int(r["id"])) for r in rows]
    return Timeline(starts, [_parsed[(database, i)] for i in ids])


def aware(value: Any) -> datetime:
    """A datetime as both databases return it, made UTC-aware."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def seed_catalog(catalog: Catalog) -> None:
    """The first version, from the catalog file, when the database has none; never again, so
    what an operator applied since stays. Two processes starting at once may both insert it:
    the same catalog from the same instant, harmless."""
    await fetch(
        connection(),
        "INSERT INTO catalog_version (effective_at, applied_at, actor, body)"
        " SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM catalog_version)",
        FIRST,
        datetime.now(UTC),
        "seed",
        dump_catalog(catalog),
    )
    await _seed_legacy_rows(catalog)


async def _seed_legacy_rows(catalog: Catalog) -> None:
    """The tables that held the catalog before versions, seeded as they were: nothing reads
    them now but migration 0008's rebuild of plan histories (`history_rows`), which tests
    run against a seeded database. ON CONFLICT DO NOTHING: several processes may start."""
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
        "trial_credits": credits_text(billing.trial_credits_units),
        "free_plan": billing.free_plan,
    }


# What the services read, each at an instant, each one read (app.catalog values).


async def billing_spec(at: datetime) -> BillingSpec:
    return (await catalog_at(at)).billing


async def list_plans(at: datetime) -> list[PlanSpec]:
    return sorted((await catalog_at(at)).plans, key=lambda p: (p.rank, p.code))


async def get_plan(code: str, at: datetime) -> PlanSpec | None:
    """A plan offered at `at` (a removed plan is not: it cannot be chosen)."""
    return next((p for p in (await catalog_at(at)).plans if p.code == code), None)


async def held_plans(codes: Collection[str], at: datetime) -> dict[str, PlanSpec]:
    """The plans in force at `at`, and among `codes` those removed before it as they last
    were (what a workspace already on one shows and renews on): one read unless one was."""
    plans = {p.code: p for p in await list_plans(at)}
    if all(code in plans for code in codes):
        return plans
    return (await timeline(at)).held_plans(at)


async def list_prices(at: datetime) -> list[PriceSpec]:
    return sorted((await catalog_at(at)).prices, key=lambda p: (p.provider, p.data_type))


async def get_prices(
    pairs: Collection[tuple[str, str]], at: datetime
) -> dict[tuple[str, str], PriceSpec]:
    """The catalog's prices among `pairs` (provider, data type), in one read (none for none)."""
    if not pairs:
        return {}
    prices = (await catalog_at(at)).prices
    return {(p.provider, p.data_type): p for p in prices if (p.provider, p.data_type) in pairs}


async def get_price(provider: str, data_type: str, at: datetime) -> PriceSpec | None:
    return (await get_prices({(provider, data_type)}, at)).get((provider, data_type))


async def list_ai_models(at: datetime) -> list[AiModelSpec]:
    return sorted((await catalog_at(at)).ai_models, key=lambda m: m.code)


async def get_ai_models(codes: Collection[str], at: datetime) -> dict[str, AiModelSpec]:
    """The catalog's models among `codes`, in one read (none for none)."""
    if not codes:
        return {}
    return {m.code: m for m in (await catalog_at(at)).ai_models if m.code in codes}


async def get_ai_model(code: str, at: datetime) -> AiModelSpec | None:
    return (await get_ai_models({code}, at)).get(code)
