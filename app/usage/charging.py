"""Charging usage: one report or a batch of up to 1,000, in one transaction (R2–R13, R23, R25).

The transaction claims every item's idempotency key first (a concurrent retry of a key waits on
the unique index), then locks the rows the batch touches in one fixed order — the workspace,
runs, workbooks — and decides each item against the state the items before it left
(`app.usage.rules`). Accepted items are written with a handful of set-based statements;
refused ones release their key, so they leave no trace (R13). A single `recordUsage` is a batch
of one: the same rules, the same code.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import locks, validation
from app.bulk import insert_many
from app.db import connection, fetch, in_list
from app.errors import InvalidInput, NotFound, Refused
from app.history.service import add_usage, charges_usage
from app.idempotency import key_reused, replay_recorded, request_hash
from app.kinds import EntryType, Meter, RunStatus, is_billable
from app.models import Charge, IdempotencyRecord
from app.usage import rules as charge_rules
from app.usage.costs import CatalogCache, Usage, cost_of
from app.usage.pricing import Cost
from app.usage.rules import Debit, LimitState, RunState, WorkspaceMeters

OPERATION = "recordUsage"
MAX_BATCH = 1000


class ChargeRecord(NamedTuple):
    """A charge just written, as its `charge` row reads; an ORM object per item costs a
    batch about 20 ms for nothing, and a frozen dataclass of 22 fields 3 µs an item to build.
    Replays return the stored `Charge` rows instead."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    workbook_id: uuid.UUID
    table_id: str | None
    kind: str
    provider: str | None
    data_type: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    own_api_key: bool
    results: int
    actions: int
    credits: int
    refunded_results: int
    refunded_credits: int
    spend_epoch: int | None
    idempotency_key: str
    created_at: datetime
    run_id: uuid.UUID | None
    sent_at: datetime | None
    period_start: datetime


Outcome = Charge | ChargeRecord | Refused
# A batch names few workbooks and runs: parse each id once.
_uuid = functools.lru_cache(maxsize=1024)(uuid.UUID)


@dataclass(frozen=True)
class UsageReport:
    workbook_id: str
    usage: Usage
    idempotency_key: str
    table_id: str | None = None
    run_id: str | None = None
    sent_at: datetime | None = None


@dataclass
class _Item:
    report: UsageReport
    label: str  # how messages name the item: "" for a single report, "items[3]: " in a batch
    fingerprint: str = ""
    cost: Cost | None = None
    charge_id: uuid.UUID = field(default_factory=uuid.uuid4)
    outcome: Outcome | None = None
    first: _Item | None = None  # an earlier item of the batch with the same key


async def charge_one(
    workspace_id: uuid.UUID, report: UsageReport, now: datetime
) -> Charge | ChargeRecord:
    """One report; a refusal is raised."""
    outcome = (await charge_batch(workspace_id, [report], now))[0]
    if isinstance(outcome, Refused):
        raise outcome
    return outcome


async def charge_batch(
    workspace_id: uuid.UUID, reports: list[UsageReport], now: datetime
) -> list[Outcome]:
    """Each report's charge or refusal, in order. Invalid input fails the whole batch before
    anything is charged; refusals (R9–R13, R23, R25) are per item."""
    if not 1 <= len(reports) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH:,} items; got {len(reports):,}")
    single = len(reports) == 1
    items = [_Item(r, "" if single else f"items[{i}]: ") for i, r in enumerate(reports)]
    workbooks = await _workbooks(workspace_id, items)
    runs = await _runs(workspace_id, items)
    for item in items:
        item.report = _normalized(item, workbooks, runs, now)
        item.fingerprint = request_hash(OPERATION, item.report)
    await _price(workspace_id, items)
    pending = [item for item in items if item.outcome is None]
    if pending:
        async with in_transaction() as conn:
            taken = await _claim(conn, workspace_id, _first_of_each_key(pending), now)
            fresh = [i for i in pending if i.report.idempotency_key not in taken]
            await _charge(conn, workspace_id, fresh, now)
        await _replay(workspace_id, [i for i in pending if i.report.idempotency_key in taken])
    return [_outcome_of(item) for item in items]


def _with_label(item: _Item, error: InvalidInput | NotFound) -> InvalidInput | NotFound:
    if not item.label:
        return error
    return type(error)(f"{item.label}{error.message}")


class _Owned(NamedTuple):
    """What a report's workbook or run must be checked against before anything is charged."""

    id: str
    workbook_id: str  # a workbook's own id
    table_id: str | None = None
    created_at: datetime | None = None  # a run's start (R23)


async def _workbooks(workspace_id: uuid.UUID, items: list[_Item]) -> dict[str, _Owned]:
    raw = [item.report.workbook_id for item in items]
    return await _owned("SELECT id, id AS workbook_id FROM workbook", workspace_id, raw, "workbook")


async def _runs(workspace_id: uuid.UUID, items: list[_Item]) -> dict[str, _Owned]:
    raw = [item.report.run_id for item in items if item.report.run_id is not None]
    if not raw:
        return {}
    select = "SELECT id, workbook_id, table_id, created_at FROM run"
    return await _owned(select, workspace_id, raw, "run")


async def _owned(
    select: str, workspace_id: uuid.UUID, raw_ids: list[str], what: str
) -> dict[str, _Owned]:
    """Rows of the caller's workspace by id as the client spelled it; any other is NOT_FOUND.
    Plain SQL, not the ORM's query builder: about 200 µs of CPU less a read, and a one-item
    request makes two of these."""
    ids = {raw: str(validation.object_id(raw, what)) for raw in set(raw_ids)}
    wanted = sorted(set(ids.values()))
    rows = await fetch(
        connection(),
        f"{select} WHERE workspace_id = $1 AND id IN ({in_list(wanted, 2)})",
        str(workspace_id),
        *wanted,
    )
    found = {
        str(r["id"]): _Owned(
            str(r["id"]),
            str(r["workbook_id"]),
            r.get("table_id"),
            _as_datetime(r.get("created_at")),
        )
        for r in rows
    }
    for raw, parsed in ids.items():
        if parsed not in found:
            raise NotFound(f"{what} {raw} not found")
    return {raw: found[parsed] for raw, parsed in ids.items()}


def _normalized(
    item: _Item, workbooks: dict[str, _Owned], runs: dict[str, _Owned], now: datetime
) -> UsageReport:
    """Validate, and spell ids one way so a retry's fingerprint matches however it wrote them."""
    report = item.report
    try:
        validation.idempotency_key(report.idempotency_key)
        validation.text(report.table_id, "tableId", validation.MAX_TABLE_ID)
        if report.sent_at is not None:
            run_started = runs[report.run_id].created_at if report.run_id is not None else None
            charge_rules.check_sent_at(report.sent_at, run_started, now)
    except InvalidInput as error:
        raise _with_label(item, error) from None
    changes: dict[str, str | None] = {}
    workbook = workbooks[report.workbook_id]
    if report.workbook_id != workbook.id:
        changes["workbook_id"] = workbook.id
    if report.run_id is not None:
        run = runs[report.run_id]
        if run.workbook_id != workbook.id:
            message = f"run {run.id} belongs to workbook {run.workbook_id}"
            raise _with_label(item, InvalidInput(message))
        if run.table_id is not None and report.table_id not in (None, run.table_id):
            message = f"run {run.id} is in table {run.table_id!r}, not {report.table_id!r}"
            raise _with_label(item, InvalidInput(message))
        if report.run_id != run.id:
            changes["run_id"] = run.id
        if report.table_id != (table_id := report.table_id or run.table_id):
            changes["table_id"] = table_id
    # Most clients already spell ids this way: a copy per item is a cost worth skipping.
    return replace(report, **changes) if changes else report  # type: ignore[arg-type]


async def _price(workspace_id: uuid.UUID, items: list[_Item]) -> None:
    catalog = CatalogCache()
    await catalog.preload(item.report.usage for item in items)
    # A batch repeats a few usages: price each once. The key has the count's type because
    # True == 1, and cost_of refuses a bool count.
    costs: dict[tuple[Usage, type], Cost] = {}
    for item in items:
        usage = item.report.usage
        key = (usage, type(usage.results))
        if key in costs:
            item.cost = costs[key]
            continue
        try:
            item.cost = costs[key] = await cost_of(usage, catalog=catalog)
        except InvalidInput as error:
            # A retry of a charge whose price row was since edited away still replays (R13).
            replayed = await replay_recorded(
                workspace_id, item.report.idempotency_key, OPERATION, item.report, _load_charge
            )
            if replayed is None:
                raise _with_label(item, error) from None
            item.outcome = replayed


async def _load_charge(result_id: str) -> Charge:
    return await Charge.get(id=uuid.UUID(result_id))


def _first_of_each_key(items: list[_Item]) -> list[_Item]:
    """One claim per key: the key's first item's request and result id."""
    seen: dict[str, _Item] = {}
    for item in items:
        seen.setdefault(item.report.idempotency_key, item)
    return list(seen.values())


def _outcome_of(item: _Item) -> Outcome:
    if item.first is None:
        assert item.outcome is not None
        return item.outcome
    if item.first.fingerprint != item.fingerprint:
        return key_reused(item.report.idempotency_key)
    return _outcome_of(item.first)


_CLAIM_COLUMNS = "workspace_id, key, operation, request_hash, result_id, created_at"
_CLAIMED = " ON CONFLICT (workspace_id, key) DO NOTHING RETURNING key"
# PostgreSQL: three arrays instead of six parameters a row (planning a 6,000-parameter VALUES
# list cost more than the insert itself), and only the keys already taken come back: usually
# none, instead of 1,000 rows to decode.
CLAIM_UNNEST = (
    f"WITH claimed AS (INSERT INTO idempotency_record ({_CLAIM_COLUMNS})"
    " SELECT $1::uuid, k, $2, h, r, $3"
    " FROM unnest($4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(k, h, r, n)"
    " ORDER BY n" + _CLAIMED + ")"
    " SELECT k AS key FROM unnest($4::text[]) AS k WHERE k NOT IN (SELECT key FROM claimed)"
)


async def _claim(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, items: list[_Item], now: datetime
) -> set[str]:
    """Claim every key; returns those already taken. Sorted, so two batches sharing keys
    wait on each other instead of deadlocking."""
    ordered = sorted(items, key=lambda i: i.report.idempotency_key)
    keys = [item.report.idempotency_key for item in ordered]
    if conn.capabilities.dialect == "postgres":
        hashes = [item.fingerprint for item in ordered]
        results = [str(item.charge_id) for item in ordered]
        args = (workspace_id, OPERATION, now, keys, hashes, results)
        return {row["key"] for row in await fetch(conn, CLAIM_UNNEST, *args)}
    values = ", ".join(
        f"(${6 * n + 1}, ${6 * n + 2}, ${6 * n + 3}, ${6 * n + 4}, ${6 * n + 5}, ${6 * n + 6})"
        for n in range(len(ordered))
    )
    params: list[Any] = []
    for item in ordered:
        params += [str(workspace_id), item.report.idempotency_key, OPERATION]
        params += [item.fingerprint, str(item.charge_id), now]
    query = f"INSERT INTO idempotency_record ({_CLAIM_COLUMNS}) VALUES {values}" + _CLAIMED
    rows = await fetch(conn, query, *params)
    return set(keys) - {row["key"] for row in rows}


async def _replay(workspace_id: uuid.UUID, items: list[_Item]) -> None:
    """Keys an earlier request holds: its charge if it was this request, else a refusal."""
    if not items:
        return
    keys = [i.report.idempotency_key for i in items]
    records = await IdempotencyRecord.filter(workspace_id=workspace_id, key__in=keys)
    by_key = {r.key: r for r in records}
    charge_ids = [uuid.UUID(r.result_id) for r in records if r.operation == OPERATION]
    charges = {c.id: c for c in await Charge.filter(id__in=charge_ids)}
    for item in items:
        record = by_key[item.report.idempotency_key]
        if (record.operation, record.request_hash) != (OPERATION, item.fingerprint):
            item.outcome = key_reused(item.report.idempotency_key)
        else:
            item.outcome = charges[uuid.UUID(record.result_id)]


@dataclass
class _Locked:
    meters: WorkspaceMeters
    period_start: datetime
    limits: dict[str, LimitState]
    epochs: dict[str, int]
    runs: dict[str, RunState]
    ttl: dict[str, int]


async def _lock(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, items: list[_Item]) -> _Locked:
    """The rows the batch touches, locked in app.locks' order and read as they are now."""
    ws = await locks.workspace_row(
        conn,
        workspace_id,
        "actions_capacity - actions_used AS remaining, credit_balance, credits_held, period_start",
    )
    assert ws is not None
    meters = WorkspaceMeters(ws["remaining"], ws["credit_balance"], ws["credits_held"])
    rows = await locks.workbook_rows(
        conn, [i.report.workbook_id for i in items], "id, name, spend_limit, spent, spend_epoch"
    )
    limits = {str(r["id"]): LimitState(r["name"], r["spend_limit"], r["spent"]) for r in rows}
    epochs = {str(r["id"]): r["spend_epoch"] for r in rows}
    runs, ttl = await _lock_runs(conn, items)
    return _Locked(meters, _as_datetime(ws["period_start"]), limits, epochs, runs, ttl)


async def _lock_runs(
    conn: BaseDBAsyncClient, items: list[_Item]
) -> tuple[dict[str, RunState], dict[str, int]]:
    run_ids = [i.report.run_id for i in items if i.report.run_id is not None]
    if not run_ids:
        return {}, {}
    rows = await locks.run_rows(
        conn, run_ids, "id, status, ended_at, budget, spent, hold, hold_ttl_seconds"
    )
    runs = {
        str(r["id"]): RunState(
            RunStatus(r["status"]), _as_datetime(r["ended_at"]), r["budget"], r["spent"], r["hold"]
        )
        for r in rows
    }
    return runs, {str(r["id"]): r["hold_ttl_seconds"] for r in rows}


def _as_datetime(value: Any) -> Any:
    """SQLite hands timestamps back as text."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


@dataclass
class _RunTotals:
    spent: int = 0
    actions: int = 0
    results: int = 0
    count: int = 0
    settled: int = 0


@dataclass
class _Writes:
    charges: list[tuple] = field(default_factory=list)
    ledger: list[tuple] = field(default_factory=list)
    accepted: list[tuple[_Item, Debit]] = field(default_factory=list)
    limit_spent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    runs: dict[str, _RunTotals] = field(default_factory=lambda: defaultdict(_RunTotals))


async def _charge(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, items: list[_Item], now: datetime
) -> None:
    if not items:
        return
    state = await _lock(conn, workspace_id, items)
    writes = _Writes()
    holders: dict[str, _Item] = {}  # the accepted item holding each key
    for item in items:
        report = item.report
        if report.idempotency_key in holders:  # a repeat: answers like the holder
            item.first = holders[report.idempotency_key]
            continue
        run = state.runs.get(report.run_id) if report.run_id else None
        limit = state.limits[report.workbook_id]
        assert item.cost is not None
        try:
            debit = charge_rules.decide(
                item.cost, is_billable(report.usage.kind), state.meters, limit, run, report.sent_at
            )
        except Refused as refusal:
            # Per item; the key stays free, so a later item with it is a new request (R13).
            item.outcome = refusal
            continue
        charge_rules.apply(debit, state.meters, limit, run)
        holders[report.idempotency_key] = item
        _record(item, debit, state, writes, workspace_id, now)
    claimed = _first_of_each_key(items)
    await _settle_claims(conn, workspace_id, claimed, holders)
    await _write(conn, workspace_id, state, writes, now)


async def _settle_claims(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    claimed: list[_Item],
    holders: dict[str, _Item],
) -> None:
    """A key nobody holds is released: a refused request leaves no trace (R13). A key held by
    a later item than the one claimed for (the first was refused) records that item."""
    free = [c.report.idempotency_key for c in claimed if c.report.idempotency_key not in holders]
    if free:
        await fetch(
            conn,
            f"DELETE FROM idempotency_record WHERE workspace_id = $1 AND key IN"
            f" ({in_list(free, 2)})",
            str(workspace_id),
            *free,
        )
    for first in claimed:
        holder = holders.get(first.report.idempotency_key)
        if holder is not None and holder is not first:
            await fetch(
                conn,
                "UPDATE idempotency_record SET request_hash = $3, result_id = $4"
                " WHERE workspace_id = $1 AND key = $2",
                str(workspace_id),
                holder.report.idempotency_key,
                holder.fingerprint,
                str(holder.charge_id),
            )


def _record(
    item: _Item,
    debit: Debit,
    state: _Locked,
    writes: _Writes,
    workspace_id: uuid.UUID,
    now: datetime,
) -> None:
    report, usage = item.report, item.report.usage
    epoch = state.epochs[report.workbook_id] if debit.counts_in_limit else None
    workbook_id = _uuid(report.workbook_id)
    run_id = None if report.run_id is None else _uuid(report.run_id)
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


async def _write(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    state: _Locked,
    writes: _Writes,
    now: datetime,
) -> None:
    if not writes.accepted:
        return
    debits = [debit for _, debit in writes.accepted]
    await fetch(
        conn,
        "UPDATE workspace SET actions_used = actions_used + $2,"
        " credit_balance = credit_balance - $3, credits_held = credits_held - $4 WHERE id = $1",
        str(workspace_id),
        sum(d.actions for d in debits),
        sum(d.credits for d in debits),
        sum(d.settle for d in debits),
    )
    for workbook_id, spent in writes.limit_spent.items():
        await fetch(
            conn, "UPDATE workbook SET spent = spent + $2 WHERE id = $1", workbook_id, spent
        )
    for run_id, totals in writes.runs.items():
        await _update_run(conn, run_id, totals, state, now)
    await insert_many(conn, "charge", CHARGE_COLUMNS, writes.charges)
    await insert_many(conn, "ledger_entry", LEDGER_COLUMNS, writes.ledger)
    # Daily rollups in the same transaction, so history is exact at every commit (R24).
    usage = charges_usage([item.outcome for item, _ in writes.accepted])  # type: ignore[misc]
    await add_usage(conn, workspace_id, usage)


async def _update_run(
    conn: BaseDBAsyncClient, run_id: str, totals: _RunTotals, state: _Locked, now: datetime
) -> None:
    """Activity keeps a hold alive: it expires only once the run is left alone."""
    hold_left = state.runs[run_id].hold
    expires = now + timedelta(seconds=state.ttl[run_id]) if hold_left > 0 else None
    await fetch(
        conn,
        "UPDATE run SET spent = spent + $2, actions = actions + $3, results = results + $4,"
        " charge_count = charge_count + $5, hold = hold - $6, hold_expires_at = $7,"
        " last_charge_at = $8 WHERE id = $1",
        run_id,
        totals.spent,
        totals.actions,
        totals.results,
        totals.count,
        totals.settled,
        expires,
        now,
    )
