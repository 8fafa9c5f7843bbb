"""Events of a group of charges, exactly as if each had been charged alone in order (R34, R35,
R37; issue 20's group commit, app.usage.group_commit).

A batch (`recordUsageBatch`) settles once, from the states it began and ended with. Single
charges that share a transaction must answer as if each had its own, so each is settled in
memory after it is decided: its auto top-ups' events, then what its own end state fires, with
the states its predecessors left (depleted and exhausted, its workbook's limit, its run's
budget, the alerts). One write at the end stores where they ended, and one emit the events, in
the order the charges would have emitted them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch
from app.errors import ErrorCode
from app.events import rules
from app.events.rules import AlertState, Meters, NewEvent, Once, Outcome
from app.events.store import emit
from app.events.watch import Watched
from app.kinds import Meter


@dataclass(frozen=True)
class Spend:
    """A workbook's limit or a run's budget (None: none) and its spend after a charge."""

    id: uuid.UUID
    limit: int | None
    spent: int


@dataclass
class Steps:
    watched: Watched  # what had fired when the group began
    alerts: list[AlertState]
    depleted_at: int | None = None
    exhausted_at: int | None = None
    workbooks: dict[uuid.UUID, int | None] = field(default_factory=dict)
    runs: dict[uuid.UUID, int | None] = field(default_factory=dict)
    fired_alerts: set[uuid.UUID] = field(default_factory=set)
    armed_before: dict[uuid.UUID, bool] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)
    bought: int = 0  # the group's auto top-up events already stepped

    @classmethod
    async def begin(
        cls, conn: BaseDBAsyncClient, workspace_id: uuid.UUID, watched: Watched
    ) -> Steps:
        alerts: list[AlertState] = []
        if watched.alert_count:
            rows = await fetch(
                conn,
                "SELECT id, meter, threshold, armed FROM alert WHERE workspace_id = $1 ORDER BY id",
                str(workspace_id),
            )
            alerts = [
                AlertState(uuid.UUID(str(r["id"])), Meter(r["meter"]), r["threshold"],
                           bool(r["armed"]))
                for r in rows
            ]  # fmt: skip
        steps = cls(watched, alerts, watched.depleted_at, watched.exhausted_at)
        steps.workbooks = {k: v.fired_at for k, v in watched.workbooks.items()}
        steps.runs = {k: v.fired_at for k, v in watched.runs.items()}
        steps.armed_before = {a.id: a.armed for a in alerts}
        return steps

    def step(
        self,
        meters: Meters,
        workbook: Spend,
        run: Spend | None,
        refused: ErrorCode | None,
        bought: list[NewEvent],
    ) -> None:
        """One charge settled as `watch.settle` would have settled it alone."""
        self.events += bought
        fires, self.depleted_at = rules.once(
            Once(meters.available, self.depleted_at), refused is ErrorCode.INSUFFICIENT_DATA_CREDITS
        )
        if fires:
            self.events.append(rules.depleted(meters))
        remaining = meters.capacity - meters.used
        fires, self.exhausted_at = rules.once(
            Once(remaining, self.exhausted_at), refused is ErrorCode.ACTIONS_EXHAUSTED
        )
        if fires:
            self.events.append(rules.exhausted(meters))
        self._limited(workbook, self.workbooks, refused is ErrorCode.WORKBOOK_SPEND_LIMIT_REACHED,
                      rules.limit_reached)  # fmt: skip
        if run is not None:
            self._limited(run, self.runs, refused is ErrorCode.RUN_BUDGET_EXCEEDED,
                          rules.budget_exhausted)  # fmt: skip
        if self.alerts:
            outcome = Outcome()
            rules.alert_events(self.alerts, meters, outcome)
            self.events += outcome.events
            self.fired_alerts |= {a for a, armed in outcome.alerts.items() if not armed}
            self.alerts = [
                AlertState(a.id, a.meter, a.threshold, outcome.alerts.get(a.id, a.armed))
                for a in self.alerts
            ]

    def _limited(
        self,
        row: Spend,
        fired: dict[uuid.UUID, int | None],
        refused: bool,
        event: rules.LimitEvent,
    ) -> None:
        if row.limit is None:  # no limit: nothing to reach, and a later one starts armed
            fired[row.id] = None
            return
        fires, fired[row.id] = rules.once(Once(row.limit - row.spent, fired[row.id]), refused)
        if fires:
            self.events.append(event(row.id, row.limit, row.spent))

    async def finish(self, conn: BaseDBAsyncClient, workspace_id: uuid.UUID, now: datetime) -> None:
        """Store where the states ended, then emit every event in order."""
        w = self.watched
        if (self.depleted_at, self.exhausted_at) != (w.depleted_at, w.exhausted_at):
            await fetch(
                conn,
                "UPDATE workspace SET depleted_headroom = $2, exhausted_headroom = $3"
                " WHERE id = $1",
                str(workspace_id),
                self.depleted_at,
                self.exhausted_at,
            )
        for table, column, before, after in (
            ("workbook", "limit_reached_headroom", w.workbooks, self.workbooks),
            ("run", "budget_exhausted_headroom", w.runs, self.runs),
        ):
            for row_id, fired_at in sorted(after.items()):
                if fired_at != before[row_id].fired_at:
                    await fetch(
                        conn,
                        f"UPDATE {table} SET {column} = $2 WHERE id = $1",
                        str(row_id),
                        fired_at,
                    )
        await self._store_alerts(conn, now)
        await emit(conn, workspace_id, self.events, now)

    async def _store_alerts(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        for alert in self.alerts:
            fired = alert.id in self.fired_alerts
            if fired or alert.armed != self.armed_before[alert.id]:
                await fetch(
                    conn,
                    "UPDATE alert SET armed = $2, last_fired_at = COALESCE($3, last_fired_at)"
                    " WHERE id = $1",
                    str(alert.id),
                    alert.armed,
                    now if fired else None,
                )
