"""Refunds of a charge's Data Credits, whole or per result, each result at most once (R22, R26)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import audit, locks, validation
from app.db import fetch, fetch_one
from app.errors import ErrorCode, NotFound, Refused
from app.events import watch
from app.history.service import add_usage, refund_usage
from app.idempotency import run_once
from app.kinds import EntryType, Meter
from app.ledger import Posting, post
from app.models import Charge, Refund, Workspace
from app.units import units_to_credits
from app.usage.pricing import refund_share


@dataclass(frozen=True)
class RefundRequest:
    charge_id: str
    idempotency_key: str
    results: int | None = None  # None: every result not yet refunded
    reason: str | None = None


async def refund_charge(workspace_id: uuid.UUID, request: RefundRequest, now: datetime) -> Refund:
    validation.idempotency_key(request.idempotency_key)
    if request.results is not None:
        validation.whole_number(request.results, "results", 1, validation.MAX_RESULTS)
    validation.text(request.reason, "reason", validation.MAX_REASON)
    charge_id = validation.object_id(request.charge_id, "charge")
    request = replace(request, charge_id=str(charge_id))  # fingerprint the parsed id

    async def effect(conn: BaseDBAsyncClient, refund_id: uuid.UUID) -> Refund:
        charge = await locks.charge(conn, workspace_id, charge_id)
        if charge is None:
            raise NotFound(f"charge {request.charge_id} not found")
        count = _count_to_refund(charge, request.results)
        credits = refund_share(charge.credits, charge.results, charge.refunded_results, count)
        await (
            Charge.filter(id=charge_id)
            .using_db(conn)
            .update(
                refunded_results=charge.refunded_results + count,
                refunded_credits=charge.refunded_credits + credits,
            )
        )
        period_start = await _period_start(conn, workspace_id)
        if credits:
            await _return_credits(conn, workspace_id, charge, credits, refund_id, now)
        if credits and charge.run_id is not None:
            # A run's budget counts its spend net of refunds, like a workbook limit (R6, R11).
            await fetch(
                conn,
                "UPDATE run SET spent = spent - $2 WHERE id = $1",
                str(charge.run_id),
                credits,
            )
        refund = await Refund.create(
            using_db=conn,
            id=refund_id,
            workspace_id=workspace_id,
            charge_id=charge_id,
            results=count,
            credits=credits,
            reason=request.reason,
            created_at=now,
            period_start=period_start,
        )
        await add_usage(conn, workspace_id, [refund_usage(charge, refund)])  # history (R24)
        runs = [] if charge.run_id is None else [charge.run_id]
        await watch.after(conn, workspace_id, now, workbooks=[charge.workbook_id], runs=runs)
        before = {"refundedResults": charge.refunded_results,
                  "refundedDataCredits": units_to_credits(charge.refunded_credits)}  # fmt: skip
        after = {"refundedResults": charge.refunded_results + count,
                 "refundedDataCredits": units_to_credits(charge.refunded_credits + credits),
                 "refundId": refund.id, "reason": request.reason}  # fmt: skip
        await audit.record(conn, workspace_id, "charge.refund", f"charge:{charge.id}", before,
                           after, now)  # fmt: skip
        return refund

    return await run_once(
        workspace_id=workspace_id,
        key=request.idempotency_key,
        operation="refundCharge",
        request=request,
        now=now,
        effect=effect,
        replay=lambda result_id: Refund.get(id=uuid.UUID(result_id)),
    )


async def _period_start(conn: BaseDBAsyncClient, workspace_id: uuid.UUID) -> datetime:
    """The stored cycle the refund lands in (R33): history nets it there (R24)."""
    row = await Workspace.get(id=workspace_id, using_db=conn).only("period_start")
    return row.period_start


def _count_to_refund(charge: Charge, asked: int | None) -> int:
    remaining = charge.results - charge.refunded_results
    count = remaining if asked is None else asked
    if remaining == 0 or count > remaining:
        raise Refused(
            ErrorCode.ALREADY_REFUNDED,
            f"{remaining} of the charge's {charge.results} results remain unrefunded"
            + ("" if asked is None else f"; {asked} were asked for"),
        )
    return count


async def _return_credits(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    charge: Charge,
    credits: int,
    refund_id: uuid.UUID,
    now: datetime,
) -> None:
    """Credits come back past the cap if need be (R22); Actions are not refunded."""
    row = await fetch_one(
        conn,
        "UPDATE workspace SET credit_balance = credit_balance + $2 WHERE id = $1"
        " RETURNING credit_balance",
        str(workspace_id),
        credits,
    )
    assert row is not None
    await post(
        conn,
        workspace_id,
        EntryType.REFUND,
        [Posting(Meter.DATA_CREDITS, credits, row["credit_balance"])],
        now,
        workbook_id=charge.workbook_id,
        charge_id=charge.id,
        refund_id=refund_id,
    )
    if charge.spend_epoch is not None:
        # Only a charge counted under the limit now in force lowers `spent` (R11).
        await fetch(
            conn,
            "UPDATE workbook SET spent = CASE WHEN spent > $2 THEN spent - $2 ELSE 0 END"
            " WHERE id = $1 AND spend_epoch = $3",
            str(charge.workbook_id),
            credits,
            charge.spend_epoch,
        )
