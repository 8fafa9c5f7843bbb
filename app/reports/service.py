"""The operator report (issue 19): three set-based statements, whatever the fleet's size.

1. Each workspace's last complete month at `to`: its latest `renewal` at or before `to` and the
   one before it (a window function over the renewals), then, as balanceAt does (R38), the
   Actions left and the plan just before the renewal that closed the month: one index lookup
   each in the ledger (workspace_id, meter, created_at, id) and the plan history
   (workspace_id, started_at, id), by the instant the renewal was processed.
2. Data Credits expired by renewals processed in [from, to), summed per UTC month.
3. Billed money in [from, to), summed per UTC month, kind and plan.

A renewal's ledger entries and plan history rows carry the instant it was processed, so "just
before it" is the month's end. When a sweep catches up several months at once, their renewals
share that instant: a month that ended at such a renewal, opened by the one before it in the
same sweep, had nothing in it (the API acted on the stored month, R33): no Actions used, the
plan the earlier renewal started. As for balanceAt, this reads the replay of a clock that only
moves forward (production); `tally jobs run --now` ahead of the wall clock stamps the API's
later changes before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app import validation
from app.db import connection, fetch
from app.kinds import Meter
from app.reports.rules import (
    ChargeSum,
    CycleEnd,
    ExpirySum,
    Report,
    check_range,
    month_rows,
    months,
    plan_rows,
)

# A month that ended at a boundary in range matters with its predecessor only when one sweep
# renewed both (the same processed_at): consecutive boundaries, at most 31 days apart. The
# renewals older than this cannot be that predecessor, so the window never reads them.
PREDECESSOR_WITHIN = timedelta(days=62)

_BEFORE_PROCESSED = """(SELECT {column} FROM {table}
   WHERE workspace_id = e.workspace_id AND {extra}{time} < e.processed_at
   ORDER BY {time} DESC, id DESC LIMIT 1)"""


def _before(table: str, column: str, time: str, extra: str = "") -> str:
    return _BEFORE_PROCESSED.format(table=table, column=column, time=time, extra=extra)


_ACTIONS_LEFT = _before(
    "ledger_entry", "balance_after", "created_at", f"meter = '{Meter.ACTIONS.value}' AND "
)
_CYCLES = f"""
WITH ranked AS (
  SELECT workspace_id, period_start, processed_at, plan_code, credit_tier,
         ROW_NUMBER() OVER (PARTITION BY workspace_id ORDER BY period_start DESC) AS rn
    FROM renewal WHERE period_start <= $2 AND period_start >= $3
), ended AS (
  SELECT k.workspace_id, k.processed_at, p.processed_at AS opened_at,
         p.plan_code AS opened_plan, p.credit_tier AS opened_tier
    FROM ranked k LEFT JOIN ranked p ON p.workspace_id = k.workspace_id AND p.rn = 2
   WHERE k.rn = 1 AND k.period_start >= $1
)
SELECT e.opened_at = e.processed_at AS empty, e.opened_plan, e.opened_tier,
       {_before("plan_period", "plan_code", "started_at")} AS plan_code,
       {_before("plan_period", "credit_tier", "started_at")} AS credit_tier,
       {_ACTIONS_LEFT} AS actions_left
  FROM ended e
"""


def _month(conn_dialect: str, column: str) -> str:
    """The UTC calendar month of a timestamp column, as YYYY-MM."""
    if conn_dialect == "postgres":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"  # stored as text with its offset; strftime gives UTC


def _expiry_sql(dialect: str) -> str:
    return f"""
SELECT {_month(dialect, "processed_at")} AS month,
       SUM(credits_expired + credits_capped) AS expired, SUM(credits_capped) AS capped
  FROM renewal WHERE processed_at >= $1 AND processed_at < $2
 GROUP BY 1"""


def _money_sql(dialect: str) -> str:
    return f"""
SELECT {_month(dialect, "created_at")} AS month, kind, plan_code, SUM(amount_cents) AS cents
  FROM billing_charge WHERE created_at >= $1 AND created_at < $2
 GROUP BY 1, 2, 3"""


def cycle_end(row: dict[str, Any]) -> CycleEnd:
    """A row of _CYCLES as the rules read it. An empty month (a catch-up's) ran on the plan the
    renewal before it started and moved no Actions."""
    if row["empty"] in (True, 1):
        return CycleEnd(str(row["opened_plan"]), row["opened_tier"] is None, None)
    left = row["actions_left"]
    return CycleEnd(
        str(row["plan_code"]), row["credit_tier"] is None, None if left is None else int(left)
    )


async def operator_report(start: datetime, end: datetime) -> Report:
    """Per plan, the share of workspaces whose last complete month at `end` used up their
    Actions; per UTC month of [start, end), Data Credits expired at renewals and money billed."""
    start = validation.instant(start, "from")
    end = validation.instant(end, "to")
    start, end = check_range(start, end)
    conn = connection()
    dialect = conn.capabilities.dialect
    cycles: Sequence[dict[str, Any]] = await fetch(
        conn, _CYCLES, start, end, start - PREDECESSOR_WITHIN
    )
    expiries = await fetch(conn, _expiry_sql(dialect), start, end)
    money = await fetch(conn, _money_sql(dialect), start, end)
    charges = [
        ChargeSum(str(r["month"]), str(r["kind"]), str(r["plan_code"]), int(r["cents"]))
        for r in money
    ]
    expired = [ExpirySum(str(r["month"]), int(r["expired"]), int(r["capped"])) for r in expiries]
    return Report(
        start=start,
        end=end,
        plans=plan_rows((cycle_end(r) for r in cycles), charges),
        months=month_rows(months(start, end), expired, charges),
    )
