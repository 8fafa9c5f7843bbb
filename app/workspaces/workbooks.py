"""Workbooks and their Data Credit spend limits (R11)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app import audit, locks, validation
from app.catalog import WORKBOOK_SPEND_LIMITS
from app.catalog.store import held_plans
from app.errors import ErrorCode, NotFound, QuotaExceeded, Refused
from app.events import bus, watch
from app.models import Charge, Workbook, Workspace
from app.units import units_to_credits

MAX_PAGE = 1_000  # workbooks a page; workbooks whose tables one query reads


async def create_workbook(
    workspace_id: uuid.UUID, name: str, now: datetime, max_workbooks: int
) -> Workbook:
    """A new workbook, unless the workspace has `max_workbooks` already (a setting)."""
    name = validation.name(name)
    async with in_transaction() as conn:
        # The workspace row serializes creations, so two at once cannot both pass the cap.
        await locks.workspace_row(conn, workspace_id)
        count = await Workbook.filter(workspace_id=workspace_id).using_db(conn).count()
        if count >= max_workbooks:
            raise QuotaExceeded(
                f"the workspace has {count:,} workbooks, the most it may have"
                " (TALLY_MAX_WORKBOOKS); reuse one instead"
            )
        await bus.notify(conn, workspace_id, bus.Change.STATE)  # `workbooks` shows it
        return await Workbook.create(
            id=uuid.uuid4(), workspace_id=workspace_id, name=name, created_at=now, using_db=conn
        )


async def get_workbook(workspace_id: uuid.UUID, workbook_id: str | uuid.UUID) -> Workbook:
    wid = validation.object_id(workbook_id, "workbook")
    workbook = await Workbook.get_or_none(id=wid, workspace_id=workspace_id)
    if workbook is None:
        raise NotFound(f"workbook {workbook_id} not found")
    return workbook


async def list_workbooks(
    workspace_id: uuid.UUID, first: int = MAX_PAGE, after: str | None = None
) -> list[Workbook]:
    """A page of the workspace's workbooks, oldest first; `after` is the last one's id."""
    validation.whole_number(first, "first", 1, MAX_PAGE)
    query = Workbook.filter(workspace_id=workspace_id)
    if after is not None:
        last = await get_workbook(workspace_id, after)
        query = query.filter(
            Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gt=last.id)
        )
    return list(await query.order_by("created_at", "id").limit(first))


async def tables_of(workbook_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The tables each workbook's usage names, sorted; one query for many workbooks."""
    tables: dict[uuid.UUID, list[str]] = {w: [] for w in workbook_ids}
    ids = sorted(set(workbook_ids))
    for start in range(0, len(ids), MAX_PAGE):  # SQLite bounds the parameters of a statement
        rows = (
            await Charge.filter(workbook_id__in=ids[start : start + MAX_PAGE])
            .filter(table_id__isnull=False)
            .distinct()
            .order_by("workbook_id", "table_id")
            .values_list("workbook_id", "table_id")
        )
        for workbook_id, table_id in rows:
            tables[workbook_id].append(str(table_id))
    return tables


async def set_spend_limit(
    workspace_id: uuid.UUID, workbook_id: str, limit_units: int | None, now: datetime
) -> Workbook:
    """Set, change or remove a workbook's limit.

    Setting a limit where none is in force needs an Enterprise feature and starts counting
    `spent` from zero (a new epoch); changing or removing one is allowed on any plan, and a
    limit may be set below what is already spent. Without a limit nothing is counted.
    """
    wid = validation.object_id(workbook_id, "workbook")
    async with in_transaction() as conn:
        query = Workbook.filter(id=wid, workspace_id=workspace_id).using_db(conn)
        # The workspace first, as a charge takes them: the event a limit fires (R34) locks it
        # to be written, and after the workbook that would wait on a charge waiting on us.
        await locks.workspace_row(conn, workspace_id)
        workbook = await locks.workbook(conn, workspace_id, wid)
        if workbook is None:
            raise NotFound(f"workbook {workbook_id} not found")
        before = _limit_state(workbook)
        if limit_units is None:
            await query.update(spend_limit=None, spent=0)
        elif workbook.spend_limit is None:
            workspace = await Workspace.get(id=workspace_id, using_db=conn)
            await _require_spend_limit_feature(workspace.plan_code, now)
            await query.update(
                spend_limit=limit_units, spent=0, spend_epoch=workbook.spend_epoch + 1
            )
        else:
            await query.update(spend_limit=limit_units)
        # R34: a limit set at or below the spend is reached; a raised one re-arms.
        await watch.after(conn, workspace_id, now, workbooks=[wid])
        changed = await Workbook.get(id=wid, using_db=conn)
        await audit.record(conn, workspace_id, "workbook.spend_limit.set", f"workbook:{wid}",
                           before, _limit_state(changed), now)  # fmt: skip
        return changed


def _limit_state(workbook: Workbook) -> dict[str, object]:
    limit = workbook.spend_limit
    return {"spendLimit": None if limit is None else units_to_credits(limit)}


async def _require_spend_limit_feature(plan_code: str, now: datetime) -> None:
    plan = (await held_plans([plan_code], now)).get(plan_code)
    if plan is None or not plan.has_feature(WORKBOOK_SPEND_LIMITS):
        name = plan.name if plan else plan_code
        raise Refused(
            ErrorCode.PLAN_FEATURE_UNAVAILABLE,
            f"workbook spend limits are an Enterprise feature; this workspace is on {name}",
        )
