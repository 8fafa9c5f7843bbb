"""Auto top-up (R37): when a change leaves `available` below the threshold, buy the set amount
in the same transaction, priced and capped as R19 (reduced to fit under the cap; none when
nothing fits), at most `max_per_cycle` times a cycle. A charge that would be refused for Data
Credits buys first when the top-up makes it fit; otherwise it is refused and nothing is bought.

The rules here are pure; `configure` stores an admin's settings; the charge path
(app.usage.charging) and `after_change` (every other service that lowers `available`) buy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import audit, validation
from app.billing.topups import buy, paid_plan
from app.catalog.store import billing_spec
from app.db import fetch
from app.errors import ErrorCode, InvalidInput, Refused
from app.models import Workspace
from app.plans.subscriptions import lock_workspace, stored_terms
from app.units import units_to_credits

MAX_PER_CYCLE = 100


@dataclass(frozen=True)
class AutoTopUp:
    threshold: int  # units: buy when available falls below this
    credits: int  # units bought each time
    max_per_cycle: int
    used: int  # purchases this cycle


def config_of(row: Workspace) -> AutoTopUp | None:
    if row.auto_topup_threshold is None or row.auto_topup_credits is None:
        return None
    return AutoTopUp(
        row.auto_topup_threshold,
        row.auto_topup_credits,
        row.auto_topup_max_per_cycle,
        row.auto_topup_used,
    )


def amount(config: AutoTopUp, balance: int, cap: int) -> int:
    """What one purchase buys now: the set amount, reduced to fit under the cap (R19)."""
    if config.used >= config.max_per_cycle:
        return 0
    return max(0, min(config.credits, cap - balance))


def below_threshold(config: AutoTopUp, available: int, balance: int, cap: int) -> int:
    """What to buy after a change that left `available` where it is (0: nothing)."""
    return amount(config, balance, cap) if available < config.threshold else 0


async def configure(
    workspace_id: uuid.UUID,
    threshold: int | None,
    credits: int | None,
    max_per_cycle: int,
    now: datetime,
) -> Workspace:
    """Set (or, with threshold None, turn off) the workspace's auto top-up."""
    if threshold is not None:
        if credits is None or credits <= 0:
            raise InvalidInput("credits must be more than 0")
        validation.whole_number(max_per_cycle, "maxPerCycle", 1, MAX_PER_CYCLE)
    billing = await billing_spec(now)
    async with in_transaction() as conn:
        row = await lock_workspace(conn, workspace_id)
        if threshold is not None and not paid_plan(row, billing.free_plan):
            raise Refused(
                ErrorCode.PLAN_FEATURE_UNAVAILABLE,
                "auto top-up is for paid plans; a trial or the free plan cannot buy Data Credits",
            )
        before = _settings(row)
        row.auto_topup_threshold = threshold
        row.auto_topup_credits = credits if threshold is not None else row.auto_topup_credits
        row.auto_topup_max_per_cycle = max_per_cycle
        await row.save(
            using_db=conn,
            update_fields=[
                "auto_topup_threshold",
                "auto_topup_credits",
                "auto_topup_max_per_cycle",
            ],
        )
        await audit.record(conn, workspace_id, "auto_top_up.set", f"workspace:{workspace_id}",
                           before, _settings(row), now)  # fmt: skip
        return row


def _settings(row: Workspace) -> dict[str, object] | None:
    config = config_of(row)
    if config is None:
        return None
    return {
        "threshold": units_to_credits(config.threshold),
        "credits": units_to_credits(config.credits),
        "maxPerCycle": config.max_per_cycle,
    }


async def after_change(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, now: datetime) -> None:
    """For a hold (the one change besides charges that lowers `available`): buy if it left
    `available` below the threshold. The caller holds the workspace row."""
    row = await Workspace.get(id=workspace_id, using_db=conn)
    config = config_of(row)
    if config is None:
        return
    billing = await billing_spec(now)
    if not paid_plan(row, billing.free_plan):
        return
    terms = stored_terms(row)
    available = row.credit_balance - row.credits_held
    units = below_threshold(config, available, row.credit_balance, terms.cap_units)
    if units:
        await buy(conn, row, units, billing, now, auto=True)
        await _count_use(conn, workspace_id)


async def _count_use(conn: BaseDBAsyncClient, workspace_id: uuid.UUID) -> None:
    await fetch(
        conn,
        "UPDATE workspace SET auto_topup_used = auto_topup_used + 1 WHERE id = $1",
        str(workspace_id),
    )
