"""Recording usage: the charge transaction (R2–R13, R25).

One transaction claims the idempotency key, debits both meters with one conditional UPDATE
(both or neither, R10), counts the credits against the workbook limit with another, and writes
the charge and its ledger entries. The database enforces the conditions, so any number of
processes may charge one workspace at once without overspending (R12).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import validation
from app.db import fetch_one, lock_clause
from app.errors import ErrorCode, InvalidInput, NotFound, Refused
from app.idempotency import replay_recorded, run_once
from app.kinds import EntryType, Meter, is_billable
from app.ledger import Posting, post
from app.models import Charge, Workbook
from app.pricing import Cost
from app.services.costs import Usage, cost_of
from app.services.workbooks import get_workbook
from app.units import units_to_credits


@dataclass(frozen=True)
class UsageReport:
    workbook_id: str
    usage: Usage
    idempotency_key: str
    table_id: str | None = None
    run_id: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Balances:
    actions_remaining: int
    credit_balance: int


_DEBIT = """
UPDATE workspace
   SET actions_used = actions_used + $2, credit_balance = credit_balance - $3
 WHERE id = $1 AND actions_used + $2 <= actions_capacity AND credit_balance >= $3
RETURNING actions_capacity - actions_used AS actions_remaining, credit_balance
"""

_LOCKED_STATE = (
    "SELECT actions_capacity - actions_used AS remaining, credit_balance FROM workspace"
    " WHERE id = $1"
)

# Counted only while a limit is in force; refused once spent reaches the limit, even for a
# charge of 0 credits, and never taken past it (R11, R12).
_COUNT_SPEND = """
UPDATE workbook
   SET spent = CASE WHEN spend_limit IS NULL THEN spent ELSE spent + $2 END
 WHERE id = $1 AND (spend_limit IS NULL OR (spent < spend_limit AND spent + $2 <= spend_limit))
RETURNING spend_limit, spend_epoch
"""


async def record_usage(workspace_id: uuid.UUID, report: UsageReport, now: datetime) -> Charge:
    validation.idempotency_key(report.idempotency_key)
    validation.text(report.table_id, "tableId", validation.MAX_TABLE_ID)
    workbook = await get_workbook(workspace_id, report.workbook_id)
    # The fingerprint is of the parsed request: the same workbook however its id is spelled.
    report = replace(report, workbook_id=str(workbook.id))
    if report.run_id is not None:
        raise NotFound(f"run {report.run_id} not found")
    try:
        cost = await cost_of(report.usage)
    except InvalidInput:
        # A retry of a charge whose price row was since edited away still replays (R13).
        replayed = await replay_recorded(
            workspace_id, report.idempotency_key, "recordUsage", report, _load_charge
        )
        if replayed is None:
            raise
        return replayed
    billable = is_billable(report.usage.kind)

    async def effect(conn: BaseDBAsyncClient, charge_id: uuid.UUID) -> Charge:
        balances = await _debit(conn, workspace_id, cost) if billable else None
        # Decided inside the transaction, never from the read above: a limit set a moment ago
        # counts (R11). With no limit the update changes nothing.
        epoch = await _count_spend(conn, workbook, cost.credits) if billable else None
        charge = await _insert_charge(
            conn, charge_id, workspace_id, workbook.id, report, cost, epoch, now
        )
        if balances is not None:
            postings = [
                Posting(Meter.ACTIONS, -cost.actions, balances.actions_remaining),
                Posting(Meter.DATA_CREDITS, -cost.credits, balances.credit_balance),
            ]
            await post(
                conn,
                workspace_id,
                EntryType.CHARGE,
                postings,
                now,
                workbook_id=workbook.id,
                charge_id=charge_id,
            )
        return charge

    return await run_once(
        workspace_id=workspace_id,
        key=report.idempotency_key,
        operation="recordUsage",
        request=report,
        now=now,
        effect=effect,
        replay=_load_charge,
    )


async def _load_charge(result_id: str) -> Charge:
    return await Charge.get(id=uuid.UUID(result_id))


async def _debit(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, cost: Cost) -> Balances:
    """Take both meters or neither; refuse in the order of R25."""
    row = await fetch_one(conn, _DEBIT, str(workspace_id), cost.actions, cost.credits)
    if row is None:
        # Lock the row so the state that decides the refusal cannot move under us. If a refund
        # landed since the update failed, the charge fits now and the update below succeeds.
        state = await fetch_one(conn, _LOCKED_STATE + lock_clause(conn), str(workspace_id))
        assert state is not None
        _refuse_if_short(state, cost)
        row = await fetch_one(conn, _DEBIT, str(workspace_id), cost.actions, cost.credits)
        assert row is not None
    return Balances(row["actions_remaining"], row["credit_balance"])


def _refuse_if_short(state: dict, cost: Cost) -> None:
    if state["remaining"] < cost.actions:
        raise Refused(
            ErrorCode.ACTIONS_EXHAUSTED,
            f"this needs {cost.actions} Actions and {state['remaining']} remain this month;"
            " Actions cannot be bought, a higher plan tier has more",
        )
    if state["credit_balance"] < cost.credits:
        raise Refused(
            ErrorCode.INSUFFICIENT_DATA_CREDITS,
            f"this costs {units_to_credits(cost.credits)} Data Credits and the balance is "
            f"{units_to_credits(state['credit_balance'])}",
        )


async def _count_spend(conn: BaseDBAsyncClient, workbook: Workbook, credits: int) -> int | None:
    row = await fetch_one(conn, _COUNT_SPEND, str(workbook.id), credits)
    if row is None:
        current = await Workbook.get(id=workbook.id, using_db=conn)
        raise Refused(
            ErrorCode.WORKBOOK_SPEND_LIMIT_REACHED,
            f"workbook {current.name!r} has spent {units_to_credits(current.spent)} of its "
            f"{units_to_credits(current.spend_limit or 0)} Data Credit limit; this costs "
            f"{units_to_credits(credits)}",
        )
    return row["spend_epoch"] if row["spend_limit"] is not None else None


async def _insert_charge(
    conn: BaseDBAsyncClient,
    charge_id: uuid.UUID,
    workspace_id: uuid.UUID,
    workbook_id: uuid.UUID,
    report: UsageReport,
    cost: Cost,
    spend_epoch: int | None,
    now: datetime,
) -> Charge:
    usage = report.usage
    return await Charge.create(
        using_db=conn,
        id=charge_id,
        workspace_id=workspace_id,
        workbook_id=workbook_id,
        table_id=report.table_id,
        kind=usage.kind.value,
        provider=usage.provider,
        data_type=usage.data_type,
        model=usage.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        own_api_key=usage.own_api_key,
        results=usage.results,
        actions=cost.actions,
        credits=cost.credits,
        spend_epoch=spend_epoch,
        idempotency_key=report.idempotency_key,
        created_at=now,
    )
