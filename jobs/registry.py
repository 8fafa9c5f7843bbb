"""The jobs `tally jobs` and the scheduler run. Each is a thin call into app.services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.services.renewals import Scope, SweepResult, count_due, sweep


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    scope: Scope


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
    )
}


async def due(name: str, now: datetime) -> int:
    return await count_due(now, JOBS[name].scope)


async def run_job(
    name: str,
    now: datetime,
    *,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SweepResult:
    job = JOBS[name]
    options = {} if batch_size is None else {"batch_size": batch_size}
    return await sweep(now, job.scope, on_progress=on_progress, **options)
