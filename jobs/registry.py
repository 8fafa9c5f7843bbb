"""The jobs `tally jobs` and the scheduler run. Each is a thin call into a service of app."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.config import Settings
from app.plans.renewals import Scope, SweepResult, count_due, sweep
from app.plans.trials import count_trials_ending, notify_trials_ending
from app.runs.service import count_expired_holds, expire_holds
from app.verify import nothing_due, verify_job
from app.webhooks.retention import count_prunable, prune_deliveries

HOLD_EXPIRY = "hold-expiry"


def _retained_since(now: datetime) -> datetime:
    return now - timedelta(days=Settings.from_env().webhook_retention_days)


async def prune_webhook_deliveries(now: datetime, batch_size: int = 1_000) -> int:
    return await prune_deliveries(_retained_since(now), batch_size)


async def count_webhook_deliveries(now: datetime) -> int:
    return await count_prunable(_retained_since(now))


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    scope: Scope | None  # a renewal sweep's; None: `work` and `count` below
    work: Callable[..., Awaitable[int]] | None = None  # (now, batch_size=): how much it did
    count: Callable[[datetime], Awaitable[int]] | None = None
    done: str = ""  # what `tally jobs run` says it did: "holds released"
    every: float | None = None  # seconds between the scheduler's runs; None: its interval
    first_after: float = 0.0  # seconds after the scheduler starts


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "trial-expiry",
            "End trials that are over: keep 100 Data Credits, start the chosen plan or free (R18).",
            Scope(trials_only=True),
        ),
        Job(
            "renewals",
            "Renew what is due, period by period: monthly Actions (R15), Data Credit rollover"
            " and caps (R16, R17), pending downgrades and cancellations (R21), plan fees.",
            Scope(),
        ),
        Job(
            HOLD_EXPIRY,
            "Release the Data Credits held for runs left alone past their hold's expiry (R6).",
            None,
            expire_holds,
            count_expired_holds,
            "holds released",
        ),
        Job(
            "trial-ending",
            "Tell each trial's workspace, once, that it ends within 3 days (R34).",
            None,
            notify_trials_ending,
            count_trials_ending,
            "trials told",
        ),
        Job(
            "webhook-retention",
            "Delete webhook deliveries and their attempts older than"
            " TALLY_WEBHOOK_RETENTION_DAYS (30) that are no longer pending (R36).",
            None,
            prune_webhook_deliveries,
            count_webhook_deliveries,
            "deliveries pruned",
        ),
        Job(
            "verify",
            "Recompute every balance, hold and spend from the ledger; log each difference and"
            " set tally_verify_differences (R24). Daily, an hour after the scheduler starts.",
            None,
            verify_job,
            nothing_due,
            "differences found",
            every=24 * 3600,
            first_after=3600,
        ),
    )
}


async def due(name: str, now: datetime) -> int:
    job = JOBS[name]
    if job.scope is not None:
        return await count_due(now, job.scope)
    assert job.count is not None
    return await job.count(now)


async def run_job(
    name: str,
    now: datetime,
    *,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SweepResult:
    job = JOBS[name]
    options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    if job.scope is None:
        assert job.work is not None
        done = await job.work(now, **options)
        step = job.name.upper().replace("-", "_")
        return SweepResult(done, Counter({step: done} if done else {}))
    return await sweep(now, job.scope, on_progress=on_progress, **options)
