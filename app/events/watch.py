"""Firing the events a change causes, in the change's transaction (R34, R35).

Every service that moves a meter, a workbook's spend or limit, or a run's spend ends its
transaction with `settle` (the charge path, which holds the states in memory already) or
`after` (every other service, which has them read). Both compare the states the change left
with what fired before (app.events.rules), store what fired or re-armed, and emit the events.
`settle` is also where the change tells the workspace's live subscribers (app.events.bus),
unless it told them itself (the charge path, in its UPDATE of the workspace).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch, fetch_one, in_list
from app.errors import ErrorCode
from app.events import bus, rules
from app.events.rules import AlertState, Meters, NewEvent, Once, Outcome
from app.events.store import emit
from app.kinds import Meter


@dataclass(frozen=True)
class Limited:
    """A workbook's limit or a run's budget (None: none), its spend, and what fired."""

    limit: int | None
    spent: int
    fired_at: int | None


@dataclass
class Watched:
    meters: Meters
    depleted_at: int | None
    exhausted_at: int | None
    alert_count: int
    workbooks: dict[uuid.UUID, Limited] = field(default_factory=dict)
    runs: dict[uuid.UUID, Limited] = field(default_factory=dict)


@dataclass
class Refusals:
    """What the change's requests were refused for: a refusal fires its event too (R34)."""

    codes: set[ErrorCode] = field(default_factory=set)
    workbooks: set[uuid.UUID] = field(default_factory=set)
    runs: set[uuid.UUID] = field(default_factory=set)


WORKSPACE_COLUMNS = (
    "credit_balance - credits_held AS available, actions_used, actions_capacity,"
    " depleted_headroom, exhausted_headroom, alert_count"
)


async def after(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    now: datetime,
    *,
    workbooks: Iterable[uuid.UUID] = (),
    runs: Iterable[uuid.UUID] = (),
) -> list[NewEvent]:
    """Read what the change left (rows it already locked or wrote) and settle it."""
    watched = await _read(conn, workspace_id, sorted(set(workbooks)), sorted(set(runs)))
    return await settle(conn, workspace_id, watched, now, Refusals())


async def settle(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    watched: Watched,
    now: datetime,
    refused: Refusals,
    *,
    notify: bool = True,
) -> list[NewEvent]:
    """`notify=False`: the change told the subscribers itself (app.usage.writes)."""
    if notify:
        await bus.notify(conn, workspace_id, bus.Change.STATE)
    outcome = Outcome()
    await _workspace(conn, workspace_id, watched, refused, outcome)
    await _limited(conn, "workbook", "limit_reached_headroom", watched.workbooks, refused.workbooks,
                   outcome, rules.limit_reached)  # fmt: skip
    await _limited(conn, "run", "budget_exhausted_headroom", watched.runs, refused.runs,
                   outcome, rules.budget_exhausted)  # fmt: skip
    if watched.alert_count:
        await _alerts(conn, workspace_id, watched.meters, outcome, now)
    await emit(conn, workspace_id, outcome.events, now)
    return outcome.events


async def _workspace(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    watched: Watched,
    refused: Refusals,
    outcome: Outcome,
) -> None:
    depleted_at, exhausted_at = workspace_events(
        watched.meters, watched.depleted_at, watched.exhausted_at, refused.codes, outcome
    )
    if (depleted_at, exhausted_at) != (watched.depleted_at, watched.exhausted_at):
        await fetch(
            conn,
            "UPDATE workspace SET depleted_headroom = $2, exhausted_headroom = $3 WHERE id = $1",
            str(workspace_id),
            depleted_at,
            exhausted_at,
        )


def workspace_events(
    meters: Meters,
    depleted_at: int | None,
    exhausted_at: int | None,
    refused: Collection[ErrorCode],
    outcome: Outcome,
) -> tuple[int | None, int | None]:
    """The workspace's once-per-crossing events (appended to `outcome`) and the headrooms
    they stand at now (depleted, exhausted), from those they fired at and the codes the
    change's requests were refused for. Pure: the renewal sweep's batches use it too."""
    credits_refused = ErrorCode.INSUFFICIENT_DATA_CREDITS in refused
    actions_refused = ErrorCode.ACTIONS_EXHAUSTED in refused
    fires_d, depleted_at = rules.once(Once(meters.available, depleted_at), credits_refused)
    remaining = meters.capacity - meters.used
    fires_e, exhausted_at = rules.once(Once(remaining, exhausted_at), actions_refused)
    if fires_d:
        outcome.events.append(rules.depleted(meters))
    if fires_e:
        outcome.events.append(rules.exhausted(meters))
    return depleted_at, exhausted_at


async def _limited(
    conn: BaseDBAsyncClient,
    table: str,
    column: str,
    rows: dict[uuid.UUID, Limited],
    refused: set[uuid.UUID],
    outcome: Outcome,
    event: rules.LimitEvent,
) -> None:
    for row_id, row in sorted(rows.items()):
        fires, fired_at = _once(row, row_id in refused)
        if fires:
            assert row.limit is not None
            outcome.events.append(event(row_id, row.limit, row.spent))
        if fired_at != row.fired_at:
            await fetch(
                conn, f"UPDATE {table} SET {column} = $2 WHERE id = $1", str(row_id), fired_at
            )


def _once(row: Limited, refused: bool) -> tuple[bool, int | None]:
    """A workbook's limit or a run's budget: (whether it fires, the new `fired_at`)."""
    if row.limit is None:  # no limit: nothing to reach, and a later one starts armed
        return False, None
    return rules.once(Once(row.limit - row.spent, row.fired_at), refused)


def quiet(watched: Watched) -> bool:
    """Whether `settle`, with nothing refused, would fire nothing and write nothing: the
    charge that left `watched` needs none of it (app.usage.optimistic). A workspace with
    alerts is never quiet: they are read from their own rows."""
    if watched.alert_count:
        return False
    outcome = Outcome()
    before = (watched.depleted_at, watched.exhausted_at)
    if workspace_events(watched.meters, *before, (), outcome) != before or outcome.events:
        return False
    limited = [*watched.workbooks.values(), *watched.runs.values()]
    return all(_once(row, False) == (False, row.fired_at) for row in limited)


async def _alerts(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    meters: Meters,
    outcome: Outcome,
    now: datetime,
) -> None:
    rows = await fetch(
        conn,
        "SELECT id, meter, threshold, armed FROM alert WHERE workspace_id = $1 ORDER BY id",
        str(workspace_id),
    )
    alerts = [
        AlertState(uuid.UUID(str(r["id"])), Meter(r["meter"]), r["threshold"], bool(r["armed"]))
        for r in rows
    ]
    rules.alert_events(alerts, meters, outcome)
    for alert_id, armed in outcome.alerts.items():
        fired_at = None if armed else now
        await fetch(
            conn,
            "UPDATE alert SET armed = $2, last_fired_at = COALESCE($3, last_fired_at)"
            " WHERE id = $1",
            str(alert_id),
            armed,
            fired_at,
        )


async def _read(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    workbooks: list[uuid.UUID],
    runs: list[uuid.UUID],
) -> Watched:
    ws = await fetch_one(
        conn, f"SELECT {WORKSPACE_COLUMNS} FROM workspace WHERE id = $1", str(workspace_id)
    )
    assert ws is not None
    watched = watched_of(ws)
    for table, column, limit, ids, into in (
        ("workbook", "limit_reached_headroom", "spend_limit", workbooks, watched.workbooks),
        ("run", "budget_exhausted_headroom", "budget", runs, watched.runs),
    ):
        if not ids:
            continue
        found = await fetch(
            conn,
            f"SELECT id, {limit} AS lim, spent, {column} AS fired FROM {table}"
            f" WHERE id IN ({in_list(ids)})",
            *[str(i) for i in ids],
        )
        for r in found:
            into[uuid.UUID(str(r["id"]))] = Limited(r["lim"], r["spent"], r["fired"])
    return watched


def watched_of(ws: Mapping[str, Any]) -> Watched:
    """The workspace's part of `Watched`, from a row read with WORKSPACE_COLUMNS."""
    return Watched(
        meters=Meters(ws["available"], ws["actions_used"], ws["actions_capacity"]),
        depleted_at=ws["depleted_headroom"],
        exhausted_at=ws["exhausted_headroom"],
        alert_count=ws["alert_count"],
    )
