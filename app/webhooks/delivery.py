"""The delivery worker (R36): reads the outbox that events leave (app.events.store) and posts
each delivery to its endpoint, signed, at least once.

Every ~0.5 s it claims due deliveries in a short transaction (app.locks.claim_deliveries:
rows other workers hold are skipped) that pushes their next_attempt_at out by a lease, commits,
then posts them outside any transaction and records each outcome in a new one (outcomes.py).
So several processes share the outbox without sending an attempt twice, and a process killed
mid-delivery leaves its claims to be taken again once their lease lapses: never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from tortoise.transactions import in_transaction

from app import locks
from app.clock import utcnow
from app.config import Settings
from app.db import connection, fetch, fetch_one, in_list
from app.webhooks import signing
from app.webhooks.addresses import Refused, resolve
from app.webhooks.outcomes import Claim, fail_unsendable, instant, record
from app.webhooks.rules import AttemptResult, lease_seconds, status_error

log = logging.getLogger("tally.webhooks")

POLL_SECONDS = 0.5
CONCURRENCY = 16  # attempts in flight in one process
RETRY_AFTER_ERROR = 5.0  # seconds to wait when the database cannot be reached


@dataclass(frozen=True)
class Job:
    """A claimed delivery with what its attempt needs."""

    claim: Claim
    event_id: uuid.UUID
    event_type: str
    event_data: dict[str, Any]
    event_at: datetime
    url: str
    secrets: list[str]
    active: bool  # its endpoint is enabled and not deleted


_DETAILS = (
    "SELECT d.id, e.type, e.data, e.created_at, p.url, p.secret, p.previous_secret,"
    " p.previous_secret_until, p.enabled, p.deleted_at FROM webhook_delivery d"
    " JOIN event e ON e.id = d.event_id JOIN webhook_endpoint p ON p.id = d.endpoint_id"
    " WHERE d.id IN ({ids})"
)


async def claim_due(now: datetime, lease: float, limit: int) -> list[Job]:
    """Claim up to `limit` due deliveries until `now + lease`. A cheap read comes first, so an
    idle worker opens no transaction (on SQLite, one takes the file's write lock)."""
    due = await fetch_one(
        connection(),
        "SELECT id FROM webhook_delivery WHERE status = 'PENDING' AND next_attempt_at <= $1"
        " LIMIT 1",
        now,
    )
    if due is None:
        return []
    lease_until = now + timedelta(seconds=lease)
    async with in_transaction() as conn:
        rows = await locks.claim_deliveries(conn, now, lease_until, limit)
        if not rows:
            return []
        ids = [str(r["id"]) for r in rows]
        details = await fetch(conn, _DETAILS.format(ids=in_list(ids)), *ids)
    by_id = {str(d["id"]): d for d in details}
    return [_job(r, by_id[str(r["id"])], lease_until, now) for r in rows]


def _job(row: dict[str, Any], detail: dict[str, Any], lease_until: datetime, now: datetime) -> Job:
    previous_until = detail["previous_secret_until"]
    return Job(
        claim=Claim(
            delivery_id=uuid.UUID(str(row["id"])),
            workspace_id=uuid.UUID(str(row["workspace_id"])),
            endpoint_id=uuid.UUID(str(row["endpoint_id"])),
            attempts=int(row["attempts"]),
            lease_until=lease_until,
        ),
        event_id=uuid.UUID(str(row["event_id"])),
        event_type=str(detail["type"]),
        event_data=json.loads(detail["data"]),
        event_at=instant(detail["created_at"]),
        url=str(detail["url"]),
        secrets=signing.signing_secrets(
            str(detail["secret"]),
            detail["previous_secret"],
            None if previous_until is None else instant(previous_until),
            now,
        ),
        active=bool(detail["enabled"]) and detail["deleted_at"] is None,
    )


async def attempt(
    client: httpx.AsyncClient, job: Job, sent_at: datetime, seconds: float, allow_private: bool
) -> AttemptResult:
    """One POST: the address checked first, no redirect followed, `seconds` for it all."""
    body = signing.body(job.event_type, job.event_at, job.event_data)
    headers = signing.headers(job.secrets, str(job.event_id), sent_at, body)
    started = time.monotonic()

    def result(status: int | None, error: str | None) -> AttemptResult:
        return AttemptResult(status, error, round((time.monotonic() - started) * 1000))

    try:
        async with asyncio.timeout(seconds):
            target = await resolve(job.url, allow_private)
            request = client.build_request(
                "POST",
                target.url,
                content=body,
                headers={**headers, "host": target.host_header},
                extensions={"sni_hostname": target.tls_name},
            )
            response = await client.send(request, stream=True)  # the body is never read
            await response.aclose()
    except Refused as refused:
        return result(None, f"refused: {refused}")
    except (TimeoutError, httpx.TimeoutException):
        return result(None, f"no answer within {seconds:g} s")
    except httpx.HTTPError as error:
        return result(None, f"{type(error).__name__}: {error}".rstrip(": "))
    return result(response.status_code, status_error(response.status_code))


def new_client(timeout: float) -> httpx.AsyncClient:
    """No redirects, no proxies from the environment, and no kept connections: requests go to
    a checked address, and a connection opened for one name must never carry another's."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_keepalive_connections=0),
    )


class DeliveryWorker:
    """Started by `tally serve` and `tally scheduler` (TALLY_WEBHOOK_DELIVERY=off: not)."""

    def __init__(
        self,
        settings: Settings,
        *,
        poll_seconds: float = POLL_SECONDS,
        concurrency: int = CONCURRENCY,
        lease: float | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.lease = lease_seconds(settings.webhook_timeout) if lease is None else lease
        self.clock = clock
        self.rng = rng or random.Random()
        self._client = new_client(settings.webhook_timeout)
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; give attempts in flight `grace` seconds, then cancel them (their
        deliveries stay claimed until the lease lapses, then are tried again)."""
        self._stopping.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()

    async def deliver_due(self) -> int:
        """Claim what is due now (as much as there are free slots), start the attempts, and
        return how many; `drain` waits for them."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        jobs = await claim_due(self.clock(), self.lease, free)
        for job in jobs:
            task = asyncio.get_running_loop().create_task(self._deliver(job))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(jobs)

    async def drain(self) -> None:
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            pause = self.poll_seconds
            try:
                if await self.deliver_due():
                    pause = 0.0  # there may be more: look again at once
            except Exception:  # the database may be gone for a while: keep trying
                log.exception("webhook delivery: claiming failed")
                pause = RETRY_AFTER_ERROR
            if len(self._inflight) >= self.concurrency:  # until a slot frees
                await asyncio.wait(
                    set(self._inflight),
                    timeout=self.poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            elif pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)

    async def _deliver(self, job: Job) -> None:
        try:
            if not job.active:
                await fail_unsendable(job.claim, "endpoint disabled or deleted")
                return
            sent_at = self.clock()
            result = await attempt(
                self._client,
                job,
                sent_at,
                self.settings.webhook_timeout,
                self.settings.webhook_allow_private,
            )
            schedule = self.settings.webhook_retry_schedule
            await record(job.claim, result, sent_at, self.clock(), schedule, self.rng)
        except Exception:  # its claim lapses and it is tried again
            log.exception("webhook delivery %s failed to record", job.claim.delivery_id)
