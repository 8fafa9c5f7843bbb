"""The jobs `tally jobs` and the scheduler run. Each is a thin call into a service of app."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.plans.renewals import Scope, SweepResult, count_due, sweep
from app.runs.service import count_expired_holds, expire_holds

HOLD_EXPIRY = "hold-expiry"


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    scope: Scope | None  # None: not a renewal sweep


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
        ),
    )
}


async def due(name: str, now: datetime) -> int:
    scope = JOBS[name].scope
    return await count_expired_holds(now) if scope is None else await count_due(now, scope)


async def run_job(
    name: str,
    now: datetime,
    *,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SweepResult:
    job = JOBS[name]
    options = {} if batch_size is None else {"batch_size": batch_size}
    if job.scope is None:
        released = await expire_holds(now, **options)
        return SweepResult(released, Counter({"HOLD_RELEASED": released} if released else {}))
    return await sweep(now, job.scope, on_progress=on_progress, **options)
