"""APScheduler wiring: an in-memory scheduler per process that only ticks.

APScheduler 3 must not share a job store between processes, and need not: each tick asks the
database what is due and claims it there, so any number of schedulers may run at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.clock import utcnow
from app.metrics import job_ran
from app.tracing import job_span, mark_failed, set_attributes
from jobs.registry import JOBS, run_job

log = logging.getLogger("tally.scheduler")


class Scheduler:
    """Ticks every job at start, then every `interval_seconds`; `stop` waits for a running
    tick so the database is never closed under it, and the ticks queued behind it do not run."""

    def __init__(self, interval_seconds: float) -> None:
        self._busy = asyncio.Lock()
        self._stopping = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        for name, job in JOBS.items():
            self._scheduler.add_job(
                self.tick,
                "interval",
                seconds=job.every or interval_seconds,
                args=[name],
                id=name,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow() + timedelta(seconds=job.first_after),
            )

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self) -> None:
        # APScheduler's asyncio executor cancels the job tasks it still has when it shuts
        # down: a tick in the middle of a sweep, and the ticks queued behind it (each then
        # logged with a traceback). So it shuts down only once no tick is left to cancel.
        self._stopping = True
        self._scheduler.pause()
        async with self._busy:  # the running tick finishes; those queued return at once
            self._scheduler.shutdown(wait=False)

    async def tick(self, name: str) -> None:
        if self._stopping:
            return
        async with self._busy:
            if self._stopping:
                return
            with job_span(name) as span:
                try:
                    result = await run_job(name, utcnow())
                except Exception as error:  # the next tick retries; the scheduler goes on
                    log.exception("job %s failed", name)
                    job_ran(name, failed=1)
                    if span is not None:
                        mark_failed(span, type(error).__name__)
                    return
                set_attributes(span, {"tally.workspaces": result.workspaces,
                                      "tally.steps": result.renewals,
                                      "tally.failed": len(result.failed)})  # fmt: skip
        job_ran(name, failed=len(result.failed))
        if result.renewals or result.failed:
            log.info(
                "job %s: %d workspaces, %d steps %s, %d failed",
                name,
                result.workspaces,
                result.renewals,
                dict(result.steps),
                len(result.failed),
            )
