"""Balances at a past instant (R38): the meters and the plan as they were at `at`, exactly.

Every meter's ledger entry carries the balance after it (R24), so a meter at `at` is the
`balance_after` of its last entry at or before `at`, ties going to the later id (a change made
exactly at `at` counts): DATA_CREDITS is the credit balance, HELD_CREDITS what runs held,
ACTIONS the Actions left in the month. Each is one lookup in the ledger's index (workspace_id,
meter, created_at, id), whatever the ledger's size. The plan and the Actions capacity come the
same way from `plan_period` (app.history.plan_periods), written with the ledger entries of the
change that set them; Actions used is then capacity - remaining, as the workspace row has it.

`at` must not be before the workspace was created, nor in the future: after both the server's
clock and the workspace's latest ledger entry, since `tally jobs run --now` may have moved a
workspace's ledger past the wall clock (R33).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from app import validation
from app.db import connection, fetch_one
from app.errors import InvalidInput, NotFound
from app.kinds import Meter

# The last entry of one meter at or before $2: an index scan (backward) of one row.
_LAST_ENTRY = """(SELECT balance_after FROM ledger_entry
   WHERE workspace_id = $1 AND meter = '{meter}' AND created_at <= $2
   ORDER BY created_at DESC, id DESC LIMIT 1)"""
_PLAN_AT = """(SELECT {column} FROM plan_period
   WHERE workspace_id = $1 AND started_at <= $2
   ORDER BY started_at DESC, id DESC LIMIT 1)"""
READ_AT = f"""
SELECT created_at,
       {_LAST_ENTRY.format(meter=Meter.DATA_CREDITS.value)} AS credits,
       {_LAST_ENTRY.format(meter=Meter.HELD_CREDITS.value)} AS held,
       {_LAST_ENTRY.format(meter=Meter.ACTIONS.value)} AS actions_remaining,
       {_PLAN_AT.format(column="plan_code")} AS plan_code,
       {_PLAN_AT.format(column="actions_capacity")} AS actions_capacity
  FROM workspace WHERE id = $1
"""
_LATEST_ENTRY = """(SELECT created_at FROM ledger_entry
   WHERE workspace_id = $1 AND meter = '{meter}' ORDER BY created_at DESC, id DESC LIMIT 1)"""
READ_LATEST = "SELECT " + ", ".join(
    f"{_LATEST_ENTRY.format(meter=m.value)} AS {m.value.lower()}" for m in Meter
)


@dataclass(frozen=True)
class Readings:
    """What the ledger and the plan history say at one instant, as stored (units); None where
    nothing was recorded at or before it."""

    created_at: datetime  # the workspace's
    credits: int | None
    held: int | None
    actions_remaining: int | None
    plan_code: str | None
    actions_capacity: int | None


@dataclass(frozen=True)
class BalanceSnapshot:
    at: datetime
    plan_code: str
    actions_capacity: int
    actions_used: int
    credits: int  # Data Credit units, held ones included
    held: int

    @property
    def available(self) -> int:
        return self.credits - self.held


def check_instant(at: datetime, created_at: datetime, now: datetime) -> bool:
    """Refuse an instant before the workspace was created; True when `at` is past the server's
    clock, so the caller must also hold it to the workspace's latest ledger entry."""
    if at < created_at:
        raise InvalidInput(
            f"at: {at.isoformat()} is before the workspace was created ({created_at.isoformat()})"
        )
    return at > now


def check_not_future(at: datetime, now: datetime, latest_entry: datetime | None) -> None:
    """R33: an instant after both the server's clock and the latest ledger entry is future."""
    if latest_entry is None or at > latest_entry:
        latest = "none" if latest_entry is None else latest_entry.isoformat()
        raise InvalidInput(
            f"at: {at.isoformat()} is in the future: after the server's clock"
            f" ({now.isoformat()}) and the workspace's latest ledger entry ({latest})"
        )


def snapshot_of(at: datetime, readings: Readings) -> BalanceSnapshot:
    """The snapshot the readings make. A meter with no entry yet is 0; a workspace always has
    a plan from its creation on (written with it, or by migration 0008's backfill)."""
    if readings.plan_code is None or readings.actions_capacity is None:
        raise RuntimeError(f"no plan recorded at or before {at.isoformat()}")
    remaining = readings.actions_remaining or 0
    return BalanceSnapshot(
        at=at,
        plan_code=readings.plan_code,
        actions_capacity=readings.actions_capacity,
        actions_used=readings.actions_capacity - remaining,
        credits=readings.credits or 0,
        held=readings.held or 0,
    )


def _instant(value: object) -> datetime:
    """A timestamp as the driver returns it: a datetime (asyncpg), text (SQLite)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


async def read_at(workspace_id: uuid.UUID, at: datetime) -> Readings:
    """One statement: the workspace's creation, each meter's last entry and the plan at `at`.
    `at` is in UTC (SQLite compares instants as their text)."""
    row = await fetch_one(connection(), READ_AT, str(workspace_id), at)
    if row is None:
        raise NotFound("workspace not found")
    plan_code = row["plan_code"]
    return Readings(
        created_at=_instant(row["created_at"]),
        credits=_int(row["credits"]),
        held=_int(row["held"]),
        actions_remaining=_int(row["actions_remaining"]),
        plan_code=None if plan_code is None else str(plan_code),
        actions_capacity=_int(row["actions_capacity"]),
    )


async def latest_entry(workspace_id: uuid.UUID) -> datetime | None:
    """When the workspace's latest ledger entry was made: one lookup per meter."""
    row = await fetch_one(connection(), READ_LATEST, str(workspace_id))
    instants = [_instant(v) for v in (row or {}).values() if v is not None]
    return max(instants, default=None)


async def balance_at(workspace_id: uuid.UUID, at: datetime, now: datetime) -> BalanceSnapshot:
    """R38: the meters and the plan at `at` (a change made exactly at `at` counts)."""
    at = validation.instant(at, "at")
    readings = await read_at(workspace_id, at)
    if check_instant(at, readings.created_at, now):
        check_not_future(at, now, await latest_entry(workspace_id))
    return snapshot_of(at, readings)
