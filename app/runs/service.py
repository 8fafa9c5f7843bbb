"""Runs: a Data Credit budget (R6), a hold set aside for the estimate, and stopping (R23).

A hold moves credits from available to held: the balance does not change, other work cannot
spend them, and the run's own charges settle against them (`app.usage.charging`). What is
left is released when the run stops or finishes, when it is left alone past its hold's expiry,
or when a renewal would leave the balance below what is held. Each of these is a ledger entry
on the HELD_CREDITS meter in the transaction that moves the held total.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import locks, validation
from app.billing import autotopup
from app.db import fetch_one
from app.errors import ErrorCode, InvalidInput, NotFound, Refused
from app.events import types, watch
from app.events.store import emit
from app.idempotency import run_once
from app.kinds import EntryType, Meter, RunStatus
from app.ledger import Posting, post
from app.models import Run
from app.units import units_to_credits
from app.workspaces.workbooks import get_workbook

MIN_HOLD_TTL = 60  # seconds
MAX_HOLD_TTL = 7 * 24 * 3600
DEFAULT_HOLD_TTL = 3600


@dataclass(frozen=True)
class RunRequest:
    workbook_id: str
    idempotency_key: str
    table_id: str | None = None
    name: str | None = None
    budget: int | None = None  # Data Credit units
    hold: int = 0  # units to set aside now
    hold_ttl_seconds: int = DEFAULT_HOLD_TTL


def _check(request: RunRequest) -> None:
    validation.idempotency_key(request.idempotency_key)
    validation.text(request.table_id, "tableId", validation.MAX_TABLE_ID)
    validation.text(request.name, "name", validation.MAX_NAME)
    # Stored in seconds, asked for in minutes (holdMinutes): the message speaks minutes.
    seconds = request.hold_ttl_seconds
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds % 60:
        raise InvalidInput("holdMinutes must be a whole number")
    validation.whole_number(seconds // 60, "holdMinutes", MIN_HOLD_TTL // 60, MAX_HOLD_TTL // 60)
    if request.budget is not None and request.hold > request.budget:
        raise InvalidInput(
            f"hold {units_to_credits(request.hold)} is more than the budget "
            f"{units_to_credits(request.budget)}: the run could never spend it"
        )


async def start_run(workspace_id: uuid.UUID, request: RunRequest, now: datetime) -> Run:
    _check(request)
    workbook = await get_workbook(workspace_id, request.workbook_id)
    request = RunRequest(**{**request.__dict__, "workbook_id": str(workbook.id)})

    async def effect(conn: BaseDBAsyncClient, run_id: uuid.UUID) -> Run:
        held = await _hold(conn, workspace_id, request.hold) if request.hold else None
        run = await Run.create(
            using_db=conn,
            id=run_id,
            workspace_id=workspace_id,
            workbook_id=workbook.id,
            table_id=request.table_id,
            name=request.name,
            status=RunStatus.RUNNING.value,
            budget=request.budget,
            hold=request.hold,
            hold_placed=request.hold,
            hold_ttl_seconds=request.hold_ttl_seconds,
            hold_expires_at=now + timedelta(seconds=request.hold_ttl_seconds)
            if request.hold
            else None,
            idempotency_key=request.idempotency_key,
            created_at=now,
        )
        if held is not None:
            posting = Posting(Meter.HELD_CREDITS, request.hold, held, EntryType.HOLD)
            await _post(conn, run, [posting], now)
            await autotopup.after_change(conn, workspace_id, now)  # R37: a hold lowers it
            await watch.after(conn, workspace_id, now)
        return run

    return await run_once(
        workspace_id=workspace_id,
        key=request.idempotency_key,
        operation="startRun",
        request=request,
        now=now,
        effect=effect,
        replay=lambda result_id: Run.get(id=uuid.UUID(result_id)),
    )


async def _hold(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, units: int) -> int:
    """Set `units` aside if that many are available; returns the new held total."""
    row = await fetch_one(
        conn,
        "UPDATE workspace SET credits_held = credits_held + $2"
        " WHERE id = $1 AND credit_balance - credits_held >= $2 RETURNING credits_held",
        str(workspace_id),
        units,
    )
    if row is not None:
        held: int = row["credits_held"]
        return held
    state = await fetch_one(
        conn,
        "SELECT credit_balance, credits_held FROM workspace WHERE id = $1",
        str(workspace_id),
    )
    assert state is not None
    available = state["credit_balance"] - state["credits_held"]
    raise Refused(
        ErrorCode.INSUFFICIENT_DATA_CREDITS,
        f"a hold of {units_to_credits(units)} Data Credits needs that many available;"
        f" {units_to_credits(available)} are",
    )


async def _post(conn: BaseDBAsyncClient, run: Run, postings: list[Posting], now: datetime) -> None:
    await post(
        conn,
        run.workspace_id,
        EntryType.HOLD,
        postings,
        now,
        workbook_id=run.workbook_id,
        run_id=run.id,
    )


async def get_run(workspace_id: uuid.UUID, run_id: str | uuid.UUID) -> Run:
    run = await Run.get_or_none(id=validation.object_id(run_id, "run"), workspace_id=workspace_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


async def list_runs(workspace_id: uuid.UUID, limit: int = 50) -> list[Run]:
    validation.whole_number(limit, "first", 0, 500)
    return await Run.filter(workspace_id=workspace_id).order_by("-created_at").limit(limit)


async def end_run(workspace_id: uuid.UUID, run_id: str, status: RunStatus, now: datetime) -> Run:
    """Stop or finish a run: new work is refused from now on (R23) and the unused hold is
    released. Idempotent by nature: ending an ended run changes nothing."""
    parsed = validation.object_id(run_id, "run")
    async with in_transaction() as conn:
        await locks.workspace_row(conn, workspace_id)
        run = await locks.run(conn, workspace_id, parsed)
        if run is None:
            raise NotFound(f"run {run_id} not found")
        if run.status != RunStatus.RUNNING.value:
            return run
        released = run.hold
        await _release(conn, run, now)
        run.status, run.ended_at = status.value, now
        await run.save(
            using_db=conn, update_fields=["status", "ended_at", "hold", "hold_expires_at"]
        )
        ended = types.run_ended(run.id, status.value, run.spent, released)
        await emit(conn, workspace_id, [ended], now)
        await watch.after(conn, workspace_id, now)
        return run


async def _release(conn: BaseDBAsyncClient, run: Run, now: datetime) -> None:
    """Return what the run still holds to the available balance; the run row is locked.
    The caller saves the run (`hold`, `hold_expires_at`), with its own changes if any."""
    if run.hold == 0:
        return
    row = await fetch_one(
        conn,
        "UPDATE workspace SET credits_held = credits_held - $2 WHERE id = $1"
        " RETURNING credits_held",
        str(run.workspace_id),
        run.hold,
    )
    assert row is not None
    posting = Posting(Meter.HELD_CREDITS, -run.hold, row["credits_held"], EntryType.RELEASE)
    await _post(conn, run, [posting], now)
    run.hold, run.hold_expires_at = 0, None


async def expire_holds(now: datetime, batch_size: int = 200) -> int:
    """Release the holds of runs left alone past their expiry; returns how many."""
    released = 0
    while True:
        due = (
            await Run.filter(hold_expires_at__lte=now, hold__gt=0)
            .order_by("hold_expires_at")
            .limit(batch_size)
            .values_list("id", "workspace_id")
        )
        for run_id, workspace_id in due:
            released += await _expire_one(run_id, workspace_id, now)
        if len(due) < batch_size:
            return released


async def _expire_one(run_id: uuid.UUID, workspace_id: uuid.UUID, now: datetime) -> int:
    async with in_transaction() as conn:
        await locks.workspace_row(conn, workspace_id)
        run = await locks.run(conn, workspace_id, run_id)
        # A charge may have kept it alive, or another process released it, meanwhile.
        if run is None or run.hold == 0 or run.hold_expires_at is None:
            return 0
        if run.hold_expires_at > now:
            return 0
        await _release(conn, run, now)
        await run.save(using_db=conn, update_fields=["hold", "hold_expires_at"])
        await watch.after(conn, workspace_id, now)
        return 1


async def count_expired_holds(now: datetime) -> int:
    return await Run.filter(hold_expires_at__lte=now, hold__gt=0).count()


async def release_all_holds(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, now: datetime
) -> None:
    """Before a renewal that would leave the balance below what is held: release every hold
    of the workspace, so expiry and the cap apply as R15–R18 say and available stays ≥ 0."""
    for run in await locks.runs_holding(conn, workspace_id):
        await _release(conn, run, now)
        await run.save(using_db=conn, update_fields=["hold", "hold_expires_at"])
