"""The append-only ledger (R24): building entries and reading pages of them."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app.errors import InvalidInput
from app.kinds import EntryType, Meter
from app.models import LedgerEntry

MAX_PAGE = 500
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class Posting:
    meter: Meter
    amount: int  # signed: Actions, or Data Credit units
    balance_after: int
    entry_type: EntryType | None = None  # when one call posts entries of several types


async def post(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    entry_type: EntryType,
    postings: list[Posting],
    now: datetime,
    *,
    workbook_id: uuid.UUID | None = None,
    charge_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
) -> None:
    """Append one entry per posting that moves a balance (a zero amount changes nothing)."""
    rows = [
        LedgerEntry(
            workspace_id=workspace_id,
            entry_type=(p.entry_type or entry_type).value,
            meter=p.meter.value,
            amount=p.amount,
            balance_after=p.balance_after,
            workbook_id=workbook_id,
            charge_id=charge_id,
            refund_id=refund_id,
            run_id=run_id,
            created_at=now,
        )
        for p in postings
        if p.amount != 0
    ]
    if rows:
        await LedgerEntry.bulk_create(rows, using_db=conn)


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"ledger:{entry_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        entry_id = int(value)
        if kind != "ledger" or not 0 < entry_id < 2**63:
            raise ValueError(kind)
        return entry_id
    except ValueError:
        raise InvalidInput(f"after: {cursor!r} is not a cursor this ledger returned") from None


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntry]
    has_next_page: bool


async def ledger_page(
    workspace_id: uuid.UUID,
    *,
    first: int | None,
    after: str | None,
    workbook_id: uuid.UUID | None = None,
) -> LedgerPage:
    """Newest first; `after` continues below the given cursor."""
    size = DEFAULT_PAGE if first is None else first
    if not 0 <= size <= MAX_PAGE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE}; got {size}")
    query = LedgerEntry.filter(workspace_id=workspace_id)
    if workbook_id is not None:
        query = query.filter(workbook_id=workbook_id)
    if after:
        query = query.filter(id__lt=decode_cursor(after))
    rows = await query.order_by("-id").limit(size + 1)
    return LedgerPage(entries=list(rows[:size]), has_next_page=len(rows) > size)
