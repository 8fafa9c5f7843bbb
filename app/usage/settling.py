"""What a charge fires (R34, R35): a batch settles once from where it began and ended; single
charges sharing a transaction (app.usage.group_commit) step by step, as if each were alone
(app.events.steps)."""

from __future__ import annotations

from dataclasses import replace

from app.errors import ErrorCode, Refused
from app.events.rules import Meters
from app.events.steps import Spend, Steps
from app.events.watch import Limited, Refusals, Watched
from app.usage.items import Locked, UsageReport, parse_uuid


def note(refused: Refusals, refusal: Refused, report: UsageReport) -> None:
    """What a refusal fires (R34): the workspace's events, or this workbook's or run's."""
    refused.codes.add(refusal.code)
    if refusal.code is ErrorCode.WORKBOOK_SPEND_LIMIT_REACHED:
        refused.workbooks.add(parse_uuid(report.workbook_id))
    elif refusal.code is ErrorCode.RUN_BUDGET_EXCEEDED and report.run_id is not None:
        refused.runs.add(parse_uuid(report.run_id))


def step(steps: Steps, state: Locked, report: UsageReport, refused: ErrorCode | None) -> None:
    """What this item's charge (or refusal) fires, as if it had been charged alone."""
    meters, capacity = state.meters, state.watched.meters.capacity
    left = Meters(meters.balance - meters.held, capacity - meters.actions_remaining, capacity)
    limit = state.limits[report.workbook_id]
    workbook = Spend(parse_uuid(report.workbook_id), limit.limit, limit.spent)
    run = None
    if report.run_id is not None:
        budget = state.runs[report.run_id]
        run = Spend(parse_uuid(report.run_id), budget.budget, budget.spent)
    bought = state.buying.events[steps.bought :] if state.buying else []
    steps.bought += len(bought)
    steps.step(left, workbook, run, refused, bought)


def left(state: Locked) -> Watched:
    """The states the batch leaves, beside what had fired when it began."""
    before, meters = state.watched, state.meters
    capacity = before.meters.capacity
    left = Meters(meters.balance - meters.held, capacity - meters.actions_remaining, capacity)
    workbooks = {
        wid: Limited(state.limits[str(wid)].limit, state.limits[str(wid)].spent, row.fired_at)
        for wid, row in before.workbooks.items()
    }
    runs = {
        rid: Limited(state.runs[str(rid)].budget, state.runs[str(rid)].spent, row.fired_at)
        for rid, row in before.runs.items()
    }
    return replace(before, meters=left, workbooks=workbooks, runs=runs)
