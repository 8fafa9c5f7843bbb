"""Workbooks and their Data Credit spend limits (R11)."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.transactions import in_transaction

from app import validation
from app.catalog import WORKBOOK_SPEND_LIMITS
from app.catalog.store import get_plan
from app.errors import ErrorCode, NotFound, Refused
from app.models import Charge, Workbook, Workspace


async def create_workbook(workspace_id: uuid.UUID, name: str, now: datetime) -> Workbook:
    return await Workbook.create(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=validation.name(name),
        created_at=now,
    )


async def get_workbook(workspace_id: uuid.UUID, workbook_id: str | uuid.UUID) -> Workbook:
    wid = validation.object_id(workbook_id, "workbook")
    workbook = await Workbook.get_or_none(id=wid, workspace_id=workspace_id)
    if workbook is None:
        raise NotFound(f"workbook {workbook_id} not found")
    return workbook


async def list_workbooks(workspace_id: uuid.UUID) -> list[Workbook]:
    return list(await Workbook.filter(workspace_id=workspace_id).order_by("created_at", "id"))


async def workbook_tables(workbook_id: uuid.UUID) -> list[str]:
    rows = (
        await Charge.filter(workbook_id=workbook_id, table_id__isnull=False)
        .distinct()
        .order_by("table_id")
        .values_list("table_id", flat=True)
    )
    return [str(r) for r in rows]


async def set_spend_limit(
    workspace_id: uuid.UUID, workbook_id: str, limit_units: int | None
) -> Workbook:
    """Set, change or remove a workbook's limit.

    Setting a limit where none is in force needs an Enterprise feature and starts counting
    `spent` from zero (a new epoch); changing or removing one is allowed on any plan, and a
    limit may be set below what is already spent. Without a limit nothing is counted.
    """
    wid = validation.object_id(workbook_id, "workbook")
    async with in_transaction() as conn:
        query = Workbook.filter(id=wid, workspace_id=workspace_id).using_db(conn)
        workbook = await query.select_for_update(no_key=True).first()
        if workbook is None:
            raise NotFound(f"workbook {workbook_id} not found")
        if limit_units is None:
            await query.update(spend_limit=None, spent=0)
        elif workbook.spend_limit is None:
            workspace = await Workspace.get(id=workspace_id, using_db=conn)
            await _require_spend_limit_feature(workspace.plan_code)
            await query.update(
                spend_limit=limit_units, spent=0, spend_epoch=workbook.spend_epoch + 1
            )
        else:
            await query.update(spend_limit=limit_units)
        return await Workbook.get(id=wid, using_db=conn)


async def _require_spend_limit_feature(plan_code: str) -> None:
    plan = await get_plan(plan_code)
    if plan is None or not plan.has_feature(WORKBOOK_SPEND_LIMITS):
        name = plan.name if plan else plan_code
        raise Refused(
            ErrorCode.PLAN_FEATURE_UNAVAILABLE,
            f"workbook spend limits are an Enterprise feature; this workspace is on {name}",
        )
