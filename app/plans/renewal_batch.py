"""A batch of renewals in one statement (PostgreSQL): the set-based sweep.

The sweep claims a batch of due workspaces with their rows (app.locks.claim_workspace_rows),
plans every due step of each in Python with the same pure rules the per-workspace path uses
(app.plans.renewal_step), and writes all the batch's effects with one statement of
data-modifying CTEs (app.bulk.combined): the workspaces' updates with their live
notifications, the renewal rows, the ledger entries with their balances after, the plan fees,
the plan history, the events and their outbox rows. The rows are those `renewals.advance`
writes, in the same order per workspace (tests/concurrency/test_renewal_batches.py compares
them). A workspace this path does not cover (a run's hold to release, alerts to evaluate) is
left to `advance` in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.billing.charges import plan_fee_description
from app.billing.money import cycle_price_cents
from app.bulk import combined, unnest_insert, unnest_rows
from app.catalog import BillingSpec, PlanSpec
from app.catalog.store import Timeline
from app.db import fetch
from app.events import bus, types
from app.events.rules import Meters, NewEvent, Outcome
from app.events.store import EVENT_COLUMNS, PENDING, payload
from app.events.watch import workspace_events
from app.history.plan_periods import plan_changes
from app.kinds import BillingInterval, ChargeKind, EntryType, Meter, WorkspaceStatus
from app.models import Workspace
from app.plans.renewal_step import Pending, RenewalKind, State, Step, plan_step


@dataclass(slots=True)
class Row:
    """The columns of a workspace a renewal reads and writes, as plain values: the set path
    reads them with its claim and never builds an ORM object (a tenth of its time went there)."""

    id: uuid.UUID
    plan_code: str
    credit_tier: int | None
    billing_interval: str
    status: str
    anchor_at: datetime
    period_start: datetime
    period_end: datetime
    actions_period_end: datetime
    actions_capacity: int
    actions_used: int
    credit_balance: int
    credits_held: int
    monthly_credits: int
    pending_plan_code: str | None
    pending_credit_tier: int | None
    pending_interval: str | None
    depleted_headroom: int | None
    exhausted_headroom: int | None
    alert_count: int


COLUMNS = ", ".join(Row.__dataclass_fields__)


# The stored text to its member: a dict lookup, where calling the enum is Python code.
_INTERVALS = {i.value: i for i in BillingInterval}
_STATUSES = {s.value: s for s in WorkspaceStatus}


def state_of(row: Workspace | Row) -> State:
    pending = None
    if row.pending_plan_code is not None:
        interval = _INTERVALS[row.pending_interval] if row.pending_interval else None
        pending = Pending(row.pending_plan_code, row.pending_credit_tier, interval)
    return State(
        plan_code=row.plan_code,
        credit_tier=row.credit_tier,
        interval=_INTERVALS[row.billing_interval],
        status=_STATUSES[row.status],
        anchor=row.anchor_at,
        period_start=row.period_start,
        period_end=row.period_end,
        actions_period_end=row.actions_period_end,
        actions_capacity=row.actions_capacity,
        actions_used=row.actions_used,
        balance=row.credit_balance,
        pending=pending,
    )


def follow(row: Workspace | Row, step: Step) -> None:
    """Bring the in-memory row to what the step wrote, sparing a read per period."""
    terms = step.terms
    row.plan_code, row.credit_tier = terms.plan_code, terms.credit_tier
    row.billing_interval, row.status = terms.interval.value, step.status.value
    row.anchor_at, row.period_start, row.period_end = (
        step.anchor,
        step.period_start,
        step.period_end,
    )
    row.actions_period_end = step.actions_period_end
    row.actions_capacity, row.actions_used = terms.monthly_actions, 0
    if step.credits is not None:
        row.credit_balance = step.credits.after
        row.monthly_credits = terms.monthly_credits_units
        row.pending_plan_code = row.pending_credit_tier = row.pending_interval = None


def announced(step: Step) -> list[NewEvent]:
    """R34: a trial's end, or a cycle renewed; an Actions-only month is not announced."""
    if step.kind is RenewalKind.TRIAL_END:
        return [types.trial_ended(step.terms.plan_code)]
    c = step.credits
    if c is None:
        return []
    rolled_over = c.after - c.granted
    return [types.renewed(step.period_start, step.period_end, c.granted, rolled_over,
                          c.expired + c.capped)]  # fmt: skip


def postings(step: Step) -> list[tuple[EntryType, Meter, int, int]]:
    """The step's ledger entries (type, meter, amount, balance after), those that move a
    balance: expiry, then grants, then the cap, each balance following from the one before."""
    c, actions = step.credits, step.terms.monthly_actions
    expired = [(EntryType.EXPIRY, Meter.ACTIONS, -step.actions_expired, 0)]
    granted = [(EntryType.GRANT, Meter.ACTIONS, actions, actions)]
    capped = []
    if c is not None:
        kept = c.before - c.expired
        expired.append((EntryType.EXPIRY, Meter.DATA_CREDITS, -c.expired, kept))
        granted.append((EntryType.GRANT, Meter.DATA_CREDITS, c.granted, kept + c.granted))
        capped.append((EntryType.ROLLOVER_CAP, Meter.DATA_CREDITS, -c.capped, c.after))
    return [p for p in expired + granted + capped if p[2] != 0]


RENEWAL_COLUMNS = [
    ("workspace_id", "uuid"), ("period_start", "timestamptz"), ("kind", "text"),
    ("plan_code", "text"), ("credit_tier", "integer"), ("billing_interval", "text"),
    ("credits_before", "bigint"), ("credits_expired", "bigint"), ("credits_granted", "bigint"),
    ("credits_capped", "bigint"), ("credits_after", "bigint"), ("actions_capacity", "integer"),
    ("processed_at", "timestamptz"),
]  # fmt: skip
LEDGER_COLUMNS = [
    ("workspace_id", "uuid"), ("entry_type", "text"), ("meter", "text"), ("amount", "bigint"),
    ("balance_after", "bigint"), ("created_at", "timestamptz"),
]  # fmt: skip
CHARGE_COLUMNS = [  # and its id, made by PostgreSQL
    ("workspace_id", "uuid"), ("kind", "text"), ("period_start", "timestamptz"),
    ("plan_code", "text"), ("credit_tier", "integer"), ("billing_interval", "text"),
    ("credits", "bigint"), ("amount_cents", "bigint"), ("description", "text"),
    ("created_at", "timestamptz"),
]  # fmt: skip
PLAN_PERIOD_COLUMNS = [
    ("workspace_id", "uuid"), ("started_at", "timestamptz"), ("plan_code", "text"),
    ("credit_tier", "integer"), ("billing_interval", "text"), ("actions_capacity", "integer"),
    ("source", "text"),
]  # fmt: skip
UPDATE_COLUMNS = [
    ("id", "uuid"), ("was_due", "timestamptz"), ("was_balance", "bigint"),
    ("was_used", "integer"), ("plan_code", "text"), ("credit_tier", "integer"),
    ("interval", "text"), ("status", "text"), ("anchor_at", "timestamptz"),
    ("period_start", "timestamptz"), ("period_end", "timestamptz"),
    ("actions_period_end", "timestamptz"), ("capacity", "integer"), ("balance", "bigint"),
    ("monthly_credits", "bigint"), ("opened", "boolean"), ("depleted", "bigint"),
    ("exhausted", "bigint"), ("announced", "boolean"),
]  # fmt: skip
# Each workspace's final state, applied only to the state it was planned from. `{rows}` is
# `unnest_rows` of UPDATE_COLUMNS, `{channel}` the placeholder after its arguments. Its live
# subscribers are told only while it is watched (bus.LIVE), as a charge tells them: the claim
# holds the row's lock, so a lease taken meanwhile waits for the commit and reads after it.
UPDATE = f"""
UPDATE workspace AS w
   SET plan_code = u.plan_code, credit_tier = u.credit_tier, billing_interval = u.interval,
       status = u.status, anchor_at = u.anchor_at, period_start = u.period_start,
       period_end = u.period_end, actions_period_end = u.actions_period_end,
       actions_capacity = u.capacity, actions_used = 0, credit_balance = u.balance,
       monthly_credits = u.monthly_credits,
       pending_plan_code = CASE WHEN u.opened THEN NULL ELSE w.pending_plan_code END,
       pending_credit_tier = CASE WHEN u.opened THEN NULL ELSE w.pending_credit_tier END,
       pending_interval = CASE WHEN u.opened THEN NULL ELSE w.pending_interval END,
       auto_topup_used = CASE WHEN u.opened THEN 0 ELSE w.auto_topup_used END,
       depleted_headroom = u.depleted, exhausted_headroom = u.exhausted
  FROM ({{rows}}) AS u
 WHERE w.id = u.id AND w.actions_period_end = u.was_due AND w.credit_balance = u.was_balance
   AND w.actions_used = u.was_used
RETURNING w.id,
       CASE WHEN u.announced AND w.{bus.LIVE} THEN
            pg_notify({{channel}}, {bus.payload_sql("w.id", bus.Change.EVENTS)}) END,
       CASE WHEN w.{bus.LIVE} THEN
            pg_notify({{channel}}, {bus.payload_sql("w.id", bus.Change.STATE)}) END
"""
EVENT_ROW = [c for c in EVENT_COLUMNS if c[0] != "id"]  # and its id, made by PostgreSQL
# The outbox: one delivery per enabled endpoint of the event's workspace that wants its type,
# in the order `app.events.store.emit` writes them (event, then endpoint id). `{events}` is the
# CTE that inserted the events, returning them.
DELIVERIES = f"""
INSERT INTO webhook_delivery (id, workspace_id, event_id, endpoint_id, status, attempts,
                              next_attempt_at, created_at)
SELECT gen_random_uuid(), e.workspace_id, e.id, ep.id, '{PENDING}', 0, $1, $1
  FROM {{events}} AS e
  JOIN webhook_endpoint AS ep
    ON ep.workspace_id = e.workspace_id AND ep.enabled AND ep.deleted_at IS NULL
   AND (ep.event_types = '' OR strpos(ep.event_types, ',' || e.type || ',') > 0)
 ORDER BY e.seq, ep.id
"""


@dataclass
class Batch:
    """The rows a batch writes, built workspace by workspace, step by step."""

    now: datetime
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    renewals: list[tuple[Any, ...]] = field(default_factory=list)
    ledger: list[tuple[Any, ...]] = field(default_factory=list)
    charges: list[tuple[Any, ...]] = field(default_factory=list)
    plan_periods: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # A cycle's price by (plan, tier, interval, billing terms), the catalogs' objects: a batch's
    # workspaces share a few prices, each a Decimal computation. Each entry keeps its objects,
    # so an id stays theirs while the batch lives.
    prices: dict[tuple[int, int, BillingInterval, int], tuple[int, object, object]] = field(
        default_factory=dict
    )

    def price(
        self, plan: PlanSpec, tier: int, interval: BillingInterval, billing: BillingSpec
    ) -> int:
        key = (id(plan), tier, interval, id(billing))
        if (found := self.prices.get(key)) is None:
            found = self.prices[key] = (cycle_price_cents(plan, tier, interval, billing), plan,
                                        billing)  # fmt: skip
        return found[0]

    def statements(self) -> list[tuple[str, list[Any]]]:
        source, args = unnest_rows(UPDATE_COLUMNS, self.updates)
        update = UPDATE.format(rows=source, channel=f"${len(args) + 1}")
        found: list[tuple[str, list[Any]]] = [(update, [*args, bus.CHANNEL])]
        for table, names, rows in (
            ("renewal", RENEWAL_COLUMNS, self.renewals),
            ("ledger_entry", LEDGER_COLUMNS, self.ledger),
            ("plan_period", PLAN_PERIOD_COLUMNS, self.plan_periods),
        ):
            if rows:
                found.append(unnest_insert(table, names, rows))
        if self.charges:
            found.append(_with_id(*unnest_insert("billing_charge", CHARGE_COLUMNS, self.charges)))
        if self.events:
            query, args = _with_id(*unnest_insert("event", EVENT_ROW, self.events))
            found.append((query + " RETURNING id, workspace_id, type, seq", args))
            found.append((DELIVERIES.format(events=f"w{len(found) - 1}"), [self.now]))
        return found

    def mark(self) -> tuple[int, ...]:
        return tuple(map(len, self._lists()))

    def undo(self, mark: tuple[int, ...]) -> None:
        """Drop what was added since `mark`."""
        for rows, length in zip(self._lists(), mark, strict=True):
            del rows[length:]

    def _lists(self) -> tuple[list[tuple[Any, ...]], ...]:
        return (self.updates, self.renewals, self.ledger, self.charges, self.plan_periods,
                self.events)  # fmt: skip


def _with_id(query: str, args: list[Any]) -> tuple[str, list[Any]]:
    """An `unnest_insert` whose rows get a random UUID id from PostgreSQL (what uuid4 would
    give; made there, it costs the sweep's Python nothing)."""
    head, _, rest = query.partition(" (")
    columns, _, select = rest.partition(") SELECT ")
    return f"{head} (id, {columns}) SELECT gen_random_uuid(), {select}", args


def plan_workspace(row: Row, now: datetime, catalogs: Timeline, batch: Batch) -> list[str] | None:
    """Add the workspace's due steps to `batch`; None (and nothing added) when it needs the
    per-workspace path: a run's hold to release first (R15-R18), or alerts to evaluate."""
    if row.alert_count:
        return None
    before = (row.actions_period_end, row.credit_balance, row.actions_used)
    mark = batch.mark()
    done: list[str] = []
    opened = False
    while row.actions_period_end <= now:
        boundary = row.actions_period_end
        plans, billing = catalogs.held_plans(boundary), catalogs.at(boundary).billing
        step = plan_step(state_of(row), plans, billing)
        c, terms = step.credits, step.terms
        if c is not None and c.after < row.credits_held:
            batch.undo(mark)
            return None
        balance = c.after if c is not None else row.credit_balance
        # StrEnum members go to asyncpg as they are: each is its text (`.value` is Python code).
        batch.renewals.append((row.id, step.at, step.kind, terms.plan_code,
            terms.credit_tier, terms.interval, row.credit_balance,
            c.expired if c else 0, c.granted if c else 0, c.capped if c else 0, balance,
            terms.monthly_actions, now))  # fmt: skip
        batch.ledger += [(row.id, t, m, a, b, now) for t, m, a, b in postings(step)]
        plan_before = (row.plan_code, row.credit_tier, row.billing_interval, row.actions_capacity)
        if plan_changes(terms, terms.monthly_actions, plan_before):  # R38
            batch.plan_periods.append((row.id, now, terms.plan_code, terms.credit_tier,
                terms.interval, terms.monthly_actions, step.kind))  # fmt: skip
        if step.opens_cycle:
            opened = True
            assert terms.credit_tier is not None
            plan = plans[terms.plan_code]
            price = batch.price(plan, terms.credit_tier, terms.interval, billing)
            if price > 0:
                batch.charges.append((row.id, ChargeKind.PLAN_FEE,
                    step.period_start, terms.plan_code, terms.credit_tier, terms.interval,
                    terms.cycle_grant_units, price,
                    plan_fee_description(plan, terms, step.period_start), now))  # fmt: skip
        follow(row, step)
        batch.events += _event_rows(row.id, announced(step), now)
        done.append(step.kind.value)
    if done:
        _settle(row, before, opened, batch, len(batch.events) > mark[-1])
    return done


def _event_rows(
    workspace_id: uuid.UUID, events: list[NewEvent], now: datetime
) -> list[tuple[Any, ...]]:
    return [(workspace_id, e.type, payload(workspace_id, e), now) for e in events]


def _settle(
    row: Row, before: tuple[datetime, int, int], opened: bool, batch: Batch, announced: bool
) -> None:
    """What `watch.after` does once the steps are written (R34): the once-per-crossing events
    of the new meters, and the workspace's final row with its live notifications."""
    meters = Meters(row.credit_balance - row.credits_held, row.actions_used, row.actions_capacity)
    outcome = Outcome()
    depleted, exhausted = workspace_events(
        meters, row.depleted_headroom, row.exhausted_headroom, (), outcome
    )
    if outcome.events:
        batch.events += _event_rows(row.id, outcome.events, batch.now)
    batch.updates.append((row.id, *before, row.plan_code, row.credit_tier, row.billing_interval,
        row.status, row.anchor_at, row.period_start, row.period_end, row.actions_period_end,
        row.actions_capacity, row.credit_balance, row.monthly_credits, opened, depleted,
        exhausted, announced or bool(outcome.events)))  # fmt: skip


async def write(conn: BaseDBAsyncClient, batch: Batch) -> None:
    """All the batch's rows in one statement. Every workspace was locked and read by the
    claim, so each update applies; one that did not would mean a bug, and fails the batch."""
    if not batch.updates:
        return
    query, args = combined(batch.statements(), returning="count(*) AS n")
    rows = await fetch(conn, query, *args)
    if rows[0]["n"] != len(batch.updates):
        raise RuntimeError(
            f"renewal batch: {rows[0]['n']} of {len(batch.updates)} workspaces updated"
        )
