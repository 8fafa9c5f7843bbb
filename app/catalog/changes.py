"""Changing the catalog from an instant on (R40), audited (R39), and reading its history.

A new version never changes the past: its instant is now or later, and the versions before it
stay as they were (catalog_version is append-only). Charges from its instant on are priced by
it; charges before it, and their refunds, keep the price they were recorded with; plan fees and
grants follow it from each workspace's next renewal at or after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from app import audit, locks, validation
from app.catalog import Catalog
from app.catalog.files import dump_catalog, parse_catalog_text
from app.catalog.store import aware, catalog_at
from app.db import connection, fetch, fetch_one
from app.errors import DomainError, ErrorCode, InvalidInput
from app.requests import current_actor
from app.units import cents_to_usd, credits_text, units_to_credits


class CatalogBusy(DomainError):
    """The catalog's readers could not be held back in time (app.locks.catalog_versions):
    a long transaction has read the catalog. Nothing changed; try again."""

    code = ErrorCode.SERVICE_UNAVAILABLE


def _lock_timed_out(error: BaseException) -> bool:
    """PostgreSQL's lock_not_available (55P03), however tortoise wraps asyncpg's error."""
    while error is not None:
        if getattr(error, "sqlstate", None) == "55P03":
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


@dataclass(frozen=True)
class CatalogVersionRow:
    id: int
    effective_at: datetime
    applied_at: datetime
    actor: str
    body: str  # the catalog in the file format


_COLUMNS = "id, effective_at, applied_at, actor, body"


async def apply_catalog(
    text: str, at: datetime | None, clock: Callable[[], datetime]
) -> CatalogVersionRow:
    """Check `text` (nothing changes when it is wrong), then make it the catalog from `at`
    (now when None) on. `clock` is read once the catalog's readers are held back, so no read
    for an instant at or after the new version's can miss it (app.locks.catalog_versions)."""
    catalog = parse_catalog_text(text)
    if at is not None:
        at = validation.instant(at, "at")
    async with in_transaction() as conn:
        try:
            await locks.catalog_versions(conn)
        except Exception as error:
            if not _lock_timed_out(error):
                raise
            raise CatalogBusy(
                f"the catalog is being read by a transaction that has run for over"
                f" {locks.CATALOG_LOCK_TIMEOUT}; nothing changed: try again"
            ) from None
        now = clock()
        effective = now if at is None else at
        if effective < now:
            raise InvalidInput(
                f"at {effective.isoformat()} is in the past (now {now.isoformat()}): a catalog"
                " changes from now on, never before, so charges already made keep their prices"
            )
        before = await catalog_at(effective, conn)  # the lock holds other connections back
        actor = current_actor()
        row = await fetch_one(
            conn,
            "INSERT INTO catalog_version (effective_at, applied_at, actor, body)"
            f" VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            effective,
            now,
            "operator" if actor is None else actor.name,
            dump_catalog(catalog),
        )
        assert row is not None
        version = _version(row)
        old, new = _changed(before, catalog)
        await audit.record(
            conn,
            None,
            "catalog.apply",
            f"catalog version {version.id}",
            old,
            {**new, "effectiveAt": effective, "version": version.id},
            now,
        )
    return version


async def catalog_versions() -> list[CatalogVersionRow]:
    """Every version, in the order they take effect (by instant, then as applied)."""
    rows = await fetch(
        connection(), f"SELECT {_COLUMNS} FROM catalog_version ORDER BY effective_at, id"
    )
    return [_version(r) for r in rows]


async def show_catalog(at: datetime) -> str:
    """The catalog in force at `at`, in the file format: it can be applied again."""
    return dump_catalog(await catalog_at(validation.instant(at, "at")))


def _version(row: dict[str, Any]) -> CatalogVersionRow:
    return CatalogVersionRow(
        int(row["id"]),
        aware(row["effective_at"]),
        aware(row["applied_at"]),
        str(row["actor"]),
        str(row["body"]),
    )


def flatten(catalog: Catalog) -> dict[str, str]:
    """Every value of the catalog under a path, for the audit entry's before and after."""
    b = catalog.billing
    values = {
        "billing.credit_price_usd": str(b.credit_price_usd),
        "billing.top_up_premium": str(b.top_up_premium),
        "billing.trial_plan": b.trial_plan,
        "billing.trial_days": str(b.trial_days),
        "billing.trial_credits": credits_text(b.trial_credits_units),
        "billing.free_plan": b.free_plan,
    }
    for p in catalog.plans:
        where = f"plans.{p.code}"
        values |= {
            f"{where}.name": p.name,
            f"{where}.rank": str(p.rank),
            f"{where}.intervals": ",".join(i.value for i in p.intervals),
            f"{where}.monthly_actions": str(p.monthly_actions),
            f"{where}.credit_tiers": ",".join(str(t) for t in p.credit_tiers),
            f"{where}.base_fee_usd": str(cents_to_usd(p.base_fee_cents)),
            f"{where}.bill_credits": str(p.bill_credits).lower(),
            f"{where}.features": ",".join(p.features),
        }
    for r in catalog.prices:
        values[f"prices.{r.provider}/{r.data_type}"] = (
            f"{units_to_credits(r.credits_units)} {r.kind.value}"
        )
    for m in catalog.ai_models:
        values[f"ai_models.{m.code}"] = (
            f"{units_to_credits(m.input_units_per_1k)}/{units_to_credits(m.output_units_per_1k)}"
        )
    return values


def _changed(before: Catalog, after: Catalog) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values that differ: absent on one side means added or removed."""
    old, new = flatten(before), flatten(after)
    keys = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    return {k: old[k] for k in keys if k in old}, {k: new[k] for k in keys if k in new}
