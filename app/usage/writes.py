"""Writing a batch's accepted charges with a handful of set-based statements: one relative
UPDATE of the workspace, one of each run and limited workbook, the charges and their ledger
entries in one INSERT each, and the daily rollups (R24)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.bulk import combined, insert_many, unnest_insert
from app.db import fetch
from app.events import bus
from app.history.rules import UsageDelta
from app.history.service import add_usage, charges_usage, usage_upserts
from app.kinds import EntryType, Meter
from app.usage.items import ChargeRecord, Item, Locked, parse_uuid
from app.usage.rules import Debit


@dataclass
class _RunTotals:
    spent: int = 0
    actions: int = 0
    results: int = 0
    count: int = 0
    settled: int = 0


@dataclass
class Writes:
    charges: list[tuple[Any, ...]] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    accepted: list[tuple[Item, Debit]] = field(default_factory=list)
    limit_spent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    runs: dict[str, _RunTotals] = field(default_factory=lambda: defaultdict(_RunTotals))
    topped_up: int = 0  # units auto top-ups added (R37), and how many there were
    top_ups: int = 0


def record(
    item: Item,
    debit: Debit,
    state: Locked,
    writes: Writes,
    workspace_id: uuid.UUID,
    now: datetime,
) -> None:
    report, usage = item.report, item.report.usage
    epoch = state.epochs[report.workbook_id] if debit.counts_in_limit else None
    workbook_id = parse_uuid(report.workbook_id)
    run_id = None if report.run_id is None else parse_uuid(report.run_id)
    values = (
        item.charge_id,
        workspace_id,
        workbook_id,
        report.table_id,
        usage.kind.value,
        usage.provider,
        usage.data_type,
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.own_api_key,
        usage.results,
        debit.actions,
        debit.credits,
        0,
        0,
        epoch,
        report.idempotency_key,
        now,
        run_id,
        report.sent_at,
        state.period_start,
    )
    item.outcome = record = ChargeRecord._make(values)
    writes.charges.append(record)  # a tuple in CHARGE_COLUMNS order (checked at import)
    writes.accepted.append((item, debit))
    if debit.counts_in_limit:
        writes.limit_spent[report.workbook_id] += debit.credits
    if report.run_id is not None:
        totals = writes.runs[report.run_id]
        totals.spent += debit.credits
        totals.actions += debit.actions
        totals.results += usage.results
        totals.count += 1
        totals.settled += debit.settle
    meters = state.meters
    amounts = (-debit.actions, -debit.credits, -debit.settle)
    afters = (meters.actions_remaining, meters.balance, meters.held)
    ids = (workbook_id, item.charge_id, now, run_id)  # the same in each of its ledger rows
    for (meter, entry_type), amount, after in zip(_CHARGE_ENTRIES, amounts, afters, strict=True):
        if amount:
            writes.ledger.append((workspace_id, entry_type, meter, amount, after, *ids))


# The ledger rows a charge may write, in order (enum values looked up once, not per item).
_CHARGE_ENTRIES = (
    (Meter.ACTIONS.value, EntryType.CHARGE.value),
    (Meter.DATA_CREDITS.value, EntryType.CHARGE.value),
    (Meter.HELD_CREDITS.value, EntryType.SETTLE.value),
)


CHARGE_COLUMNS = [
    ("id", "uuid"),
    ("workspace_id", "uuid"),
    ("workbook_id", "uuid"),
    ("table_id", "text"),
    ("kind", "text"),
    ("provider", "text"),
    ("data_type", "text"),
    ("model", "text"),
    ("input_tokens", "bigint"),
    ("output_tokens", "bigint"),
    ("own_api_key", "boolean"),
    ("results", "integer"),
    ("actions", "integer"),
    ("credits", "bigint"),
    ("refunded_results", "integer"),
    ("refunded_credits", "bigint"),
    ("spend_epoch", "integer"),
    ("idempotency_key", "text"),
    ("created_at", "timestamptz"),
    ("run_id", "uuid"),
    ("sent_at", "timestamptz"),
    ("period_start", "timestamptz"),
]
LEDGER_COLUMNS = [
    ("workspace_id", "uuid"),
    ("entry_type", "text"),
    ("meter", "text"),
    ("amount", "bigint"),
    ("balance_after", "bigint"),
    ("workbook_id", "uuid"),
    ("charge_id", "uuid"),
    ("created_at", "timestamptz"),
    ("run_id", "uuid"),
]
if list(ChargeRecord._fields) != [name for name, _ in CHARGE_COLUMNS]:
    raise RuntimeError("ChargeRecord's fields must be CHARGE_COLUMNS, in order")


async def write(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    state: Locked,
    writes: Writes,
    now: datetime,
) -> None:
    if not writes.accepted:
        return
    told, told_args = bus.notify_returning(conn, workspace_id, bus.Change.STATE, first=6)
    statements = [workspace_update(workspace_id, writes, told, told_args)]
    for workbook_id, spent in writes.limit_spent.items():
        statements.append(
            ("UPDATE workbook SET spent = spent + $2 WHERE id = $1", [workbook_id, spent])
        )
    for run_id, totals in writes.runs.items():
        statements.append(_update_run(run_id, totals, state, now))
    if conn.capabilities.dialect != "postgres":
        for query, args in statements:
            await fetch(conn, query, *args)
        await insert_many(conn, "charge", CHARGE_COLUMNS, writes.charges)
        await insert_many(conn, "ledger_entry", LEDGER_COLUMNS, writes.ledger)
        await add_usage(conn, workspace_id, usage_of(writes))
        return
    # PostgreSQL: every write of the batch in one statement, one round trip. Every row it
    # updates is locked already (app.locks), and the rollups' upsert, in key order, comes last
    # as it did when each was a statement of its own.
    query, args = combined(statements + inserts(workspace_id, writes), "count(*)" if told else "")
    await fetch(conn, query, *args)


def workspace_update(
    workspace_id: uuid.UUID, writes: Writes, tail: str, tail_args: list[Any]
) -> tuple[str, list[Any]]:
    """The batch's one relative UPDATE of the workspace; `tail` follows its `WHERE id = $1`
    (more conditions, a RETURNING clause) with its parameters from $6."""
    return (
        "UPDATE workspace SET actions_used = actions_used + $2,"
        " credit_balance = credit_balance - $3, credits_held = credits_held - $4,"
        " auto_topup_used = auto_topup_used + $5 WHERE id = $1" + tail,
        [str(workspace_id), *debit_totals(writes), writes.top_ups, *tail_args],
    )


def debit_totals(writes: Writes) -> tuple[int, int, int]:
    """What the accepted items take from their workspace's row: Actions used, Data Credit
    units (less the auto top-ups bought meanwhile) and held units settled."""
    debits = [debit for _, debit in writes.accepted]
    return (
        sum(d.actions for d in debits),
        sum(d.credits for d in debits) - writes.topped_up,
        sum(d.settle for d in debits),
    )


def inserts(workspace_id: uuid.UUID, writes: Writes) -> list[tuple[str, list[Any]]]:
    """PostgreSQL: the charges, their ledger entries and the daily rollups, as statements."""
    statements = [unnest_insert("charge", CHARGE_COLUMNS, writes.charges)]
    if writes.ledger:  # a free charge moves no meter
        statements.append(unnest_insert("ledger_entry", LEDGER_COLUMNS, writes.ledger))
    return statements + usage_upserts(workspace_id, usage_of(writes))


def usage_of(writes: Writes) -> list[UsageDelta]:
    """Daily rollups in the same transaction, so history is exact at every commit (R24).
    An accepted item's outcome is the ChargeRecord `record` made; history reads it as a
    charge."""
    return charges_usage([item.outcome for item, _ in writes.accepted])  # type: ignore[misc]


def _update_run(
    run_id: str, totals: _RunTotals, state: Locked, now: datetime
) -> tuple[str, list[Any]]:
    """Activity keeps a hold alive: it expires only once the run is left alone."""
    hold_left = state.runs[run_id].hold
    expires = now + timedelta(seconds=state.ttl[run_id]) if hold_left > 0 else None
    return (
        "UPDATE run SET spent = spent + $2, actions = actions + $3, results = results + $4,"
        " charge_count = charge_count + $5, hold = hold - $6, hold_expires_at = $7,"
        " last_charge_at = $8 WHERE id = $1",
        [
            run_id,
            totals.spent,
            totals.actions,
            totals.results,
            totals.count,
            totals.settled,
            expires,
            now,
        ],
    )


def record_top_up(
    writes: Writes, workspace_id: uuid.UUID, units: int, balance: int, now: datetime
) -> None:
    """An auto top-up bought in the batch (R37): its ledger entry goes in the batch's order,
    so each entry's balance_after follows from the one before."""
    entry = (workspace_id, EntryType.TOP_UP.value, Meter.DATA_CREDITS.value, units, balance)
    writes.ledger.append((*entry, None, None, now, None))
    writes.topped_up += units
    writes.top_ups += 1
