"""R36: the delivery worker against a real HTTP receiver on 127.0.0.1 that verifies every
signature with standardwebhooks. Private addresses are allowed (TALLY_WEBHOOK_ALLOW_PRIVATE)
and the retry schedule is short, except where a test says otherwise.

Most tests step the worker by hand (`step`: claim what is due, wait for the attempts); the
latency test runs its loop as `tally serve` does. The clock is the wall clock: a receiver
refuses a webhook-timestamp more than 5 minutes off.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from app.clock import utcnow
from app.config import Settings
from app.db import connection, fetch
from app.webhooks.delivery import DeliveryWorker, claim_due
from graphql_schema.asgi import create_app
from tests.api.test_r36_webhook_endpoints import CREATE, DELIVERIES, RESEND, ROTATE, TEST
from tests.helpers import Api, Tenant
from tests.webhook_receiver import Receiver

SHORT = (0.2, 0.2, 0.2)


@pytest.fixture(scope="module")
async def private_api(settings: Settings) -> AsyncIterator[Api]:
    """The API of a self-hosted network: http and loopback endpoints allowed."""
    app = create_app(replace(settings, webhook_allow_private=True), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
        yield Api(client, settings.operator_key or "")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
async def workers(settings: Settings) -> AsyncIterator[Callable[..., DeliveryWorker]]:
    made: list[DeliveryWorker] = []

    def make(lease: float | None = None, **changes: object) -> DeliveryWorker:
        options = {
            "webhook_allow_private": True,
            "webhook_timeout": 1.0,
            "webhook_retry_schedule": SHORT,
            **changes,
        }
        worker_settings = replace(settings, **options)
        made.append(DeliveryWorker(worker_settings, poll_seconds=0.05, lease=lease))
        return made[-1]

    yield make
    for worker in made:
        await worker.stop(grace=0)


async def step(worker: DeliveryWorker) -> int:
    """Claim what is due now and wait for its attempts and their records."""
    claimed = await worker.deliver_due()
    await worker.drain()
    return claimed


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def received(receiver: Receiver, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(receiver.got()) >= count

    return check


def stepping(worker: DeliveryWorker, check: Callable[[], Awaitable[bool]]):
    async def stepped() -> bool:
        await step(worker)
        return await check()

    return stepped


async def subscribe(api: Api, tenant: Tenant, receiver: Receiver, **fields: object) -> str:
    variables = {"i": {"url": receiver.url, **fields}}
    created = (await api.gql(CREATE, variables, key=tenant.admin_key))["createWebhookEndpoint"]
    receiver.secrets.append(created["secret"])
    return created["endpoint"]["id"]


async def ping(api: Api, tenant: Tenant, endpoint_id: str) -> dict:
    data = await api.gql(TEST, {"id": endpoint_id}, key=tenant.admin_key)
    return data["sendTestEvent"]


async def delivery(api: Api, tenant: Tenant, delivery_id: str) -> dict:
    data = await api.gql(DELIVERIES, {"f": 200}, key=tenant.admin_key)
    [found] = [
        e["node"] for e in data["webhookDeliveries"]["edges"] if e["node"]["id"] == delivery_id
    ]
    return found


async def attempts(delivery_id: str) -> list[tuple[int | None, str | None]]:
    rows = await fetch(
        connection(),
        "SELECT response_status, error FROM webhook_attempt WHERE delivery_id = $1 ORDER BY id",
        delivery_id,
    )
    return [(r["response_status"], r["error"]) for r in rows]


async def endpoint_row(endpoint_id: str) -> dict:
    rows = await fetch(
        connection(),
        "SELECT enabled, disabled_reason, failing_since FROM webhook_endpoint WHERE id = $1",
        endpoint_id,
    )
    return dict(rows[0])


async def test_r36_a_delivery_is_signed_and_starts_within_a_second_of_the_commit(
    private_api, receiver, workers
):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    worker = workers(lease=None, webhook_retry_schedule=(60,))
    worker.start()  # the loop, as `tally serve` runs it
    latencies = []
    for n in range(5):
        committed = time.monotonic()
        sent = await ping(private_api, t, endpoint_id)
        await until(received(receiver, n + 1))
        latencies.append(receiver.got()[n].at - committed)
    assert max(latencies) < 1.0, latencies
    got = receiver.got()[-1]
    assert got.verified_by == receiver.secrets and got.path == "/hooks"
    assert got.webhook_id == sent["eventId"]
    assert int(got.headers["webhook-timestamp"]) == pytest.approx(time.time(), abs=5)
    assert got.headers["content-type"] == "application/json"
    event = await private_api.gql(
        "{ events(first: 1) { edges { node { id type createdAt } } } }", key=t.admin_key
    )
    node = event["events"]["edges"][0]["node"]
    assert json.loads(got.body) == {
        "type": "test.ping",
        "timestamp": node["createdAt"],
        "data": {"workspaceId": t.id},
    }
    await until(lambda: _status(private_api, t, sent["id"], "SUCCEEDED"))
    done = await delivery(private_api, t, sent["id"])
    assert (done["attempts"], done["lastResponseStatus"], done["lastError"]) == (1, 200, None)
    assert done["nextAttemptAt"] is None and done["lastAttemptAt"] is not None
    assert await attempts(sent["id"]) == [(200, None)]


async def _status(api: Api, t: Tenant, delivery_id: str, status: str) -> bool:
    return (await delivery(api, t, delivery_id))["status"] == status


async def test_r36_failures_are_retried_with_the_same_webhook_id_and_every_attempt_recorded(
    private_api, receiver, workers
):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    receiver.answers.extend([500, 503])
    worker = workers()
    sent = await ping(private_api, t, endpoint_id)
    await step(worker)
    pending = await delivery(private_api, t, sent["id"])
    assert (pending["status"], pending["attempts"], pending["lastResponseStatus"]) == (
        "PENDING",
        1,
        500,
    )
    assert pending["lastError"] == "answered 500"
    assert (await endpoint_row(endpoint_id))["failing_since"] is not None
    await until(lambda: _step_until(worker, private_api, t, sent["id"], "SUCCEEDED"))
    got = receiver.got()
    assert [g.webhook_id for g in got] == [sent["eventId"]] * 3
    assert all(g.verified_by == receiver.secrets for g in got)
    assert await attempts(sent["id"]) == [(500, "answered 500"), (503, "answered 503"), (200, None)]
    done = await delivery(private_api, t, sent["id"])
    assert (done["attempts"], done["lastResponseStatus"], done["lastError"]) == (3, 200, None)
    assert (await endpoint_row(endpoint_id))["failing_since"] is None  # a success clears it


async def _step_until(worker, api, t, delivery_id, status) -> bool:
    await step(worker)
    return await _status(api, t, delivery_id, status)


async def test_r36_after_the_last_retry_a_delivery_is_failed(private_api, receiver, workers):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    receiver.default = 500
    worker = workers(webhook_retry_schedule=(0.05, 0.05))
    sent = await ping(private_api, t, endpoint_id)
    await until(lambda: _step_until(worker, private_api, t, sent["id"], "FAILED"))
    failed = await delivery(private_api, t, sent["id"])
    assert (failed["attempts"], failed["nextAttemptAt"], failed["lastError"]) == (
        3,
        None,
        "answered 500",
    )
    assert len(receiver.got()) == 3 and len(await attempts(sent["id"])) == 3
    assert (await endpoint_row(endpoint_id))["enabled"]  # disabled only after 5 days


async def test_r36_410_disables_the_endpoint_at_once_and_says_so(private_api, workers):
    t = await private_api.create_workspace("launch")
    with Receiver(default=410) as gone, Receiver() as watcher:
        gone_id = await subscribe(private_api, t, gone)
        await subscribe(private_api, t, watcher, eventTypes=["webhook.endpoint_disabled"])
        first, second = await ping(private_api, t, gone_id), await ping(private_api, t, gone_id)
        worker = workers()
        await step(worker)
        await until(stepping(worker, received(watcher, 1)))
        [told] = watcher.got()
    assert told.verified_by == watcher.secrets
    assert json.loads(told.body)["type"] == "webhook.endpoint_disabled"
    assert json.loads(told.body)["data"] == {
        "workspaceId": t.id,
        "endpointId": gone_id,
        "reason": "the endpoint answered 410 Gone",
    }
    row = await endpoint_row(gone_id)
    assert (row["enabled"], row["disabled_reason"]) == (False, "the endpoint answered 410 Gone")
    for sent in (first, second):
        done = await delivery(private_api, t, sent["id"])
        assert done["status"] == "FAILED" and done["nextAttemptAt"] is None
        assert done["lastResponseStatus"] in (410, None), done
    listed = await private_api.gql(
        "{ webhookEndpoints { id enabled disabledReason } }", key=t.admin_key
    )
    assert listed["webhookEndpoints"][0] == {
        "id": gone_id,
        "enabled": False,
        "disabledReason": "the endpoint answered 410 Gone",
    }


async def test_r36_no_answer_within_the_timeout_is_a_failure(private_api, workers):
    t = await private_api.create_workspace("launch")
    with Receiver(default="slow", slow_seconds=2.0) as slow:
        endpoint_id = await subscribe(private_api, t, slow)
        worker = workers(webhook_timeout=0.5, webhook_retry_schedule=(60,))
        sent = await ping(private_api, t, endpoint_id)
        started = time.monotonic()
        await step(worker)
        assert time.monotonic() - started < 1.5
    assert await attempts(sent["id"]) == [(None, "no answer within 0.5 s")]
    pending = await delivery(private_api, t, sent["id"])
    assert (pending["status"], pending["attempts"], pending["lastResponseStatus"]) == (
        "PENDING",
        1,
        None,
    )


async def test_r36_a_redirect_is_not_followed(private_api, receiver, workers):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    receiver.answers.append("redirect")
    worker = workers(webhook_retry_schedule=(60,))
    sent = await ping(private_api, t, endpoint_id)
    await step(worker)
    await asyncio.sleep(0.2)
    assert [g.path for g in receiver.got()] == ["/hooks"]  # nothing posted to /moved
    assert await attempts(sent["id"]) == [(302, "answered 302: redirects are not followed")]
    assert (await delivery(private_api, t, sent["id"]))["status"] == "PENDING"


async def test_r36_a_claim_whose_lease_lapses_is_delivered_not_lost(private_api, workers, settings):
    """A process killed mid-delivery leaves its claim: another takes it once the lease ends."""
    t = await private_api.create_workspace("launch")
    with Receiver() as receiver:
        receiver.answers.append("slow")
        receiver.slow_seconds = 3.0
        endpoint_id = await subscribe(private_api, t, receiver)
        sent = await ping(private_api, t, endpoint_id)
        dying = workers(lease=1.0)
        assert await dying.deliver_due() >= 1
        await until(received(receiver, 1))
        await dying.stop(grace=0)  # killed while the endpoint was answering
        assert (await delivery(private_api, t, sent["id"]))["status"] == "PENDING"
        other = workers()
        await step(other)  # the lease still holds
        assert len(receiver.got()) == 1
        await asyncio.sleep(1.0)
        await until(lambda: _step_until(other, private_api, t, sent["id"], "SUCCEEDED"))
        got = receiver.got()
    assert [g.webhook_id for g in got] == [sent["eventId"]] * 2  # at least once
    assert await attempts(sent["id"]) == [(200, None)]  # the killed attempt was never recorded


async def test_r36_claimed_deliveries_are_not_taken_twice(private_api, receiver, workers):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    sent = await ping(private_api, t, endpoint_id)
    claimed = await claim_due(utcnow(), 30, 1000)  # another worker's claim
    assert sent["id"] in {str(job.claim.delivery_id) for job in claimed}
    assert [str(j.claim.delivery_id) for j in await claim_due(utcnow(), 30, 1000)] == []
    await step(workers())
    assert receiver.got() == []


async def test_r36_resend_delivers_again_with_the_same_webhook_id(private_api, receiver, workers):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    sent = await ping(private_api, t, endpoint_id)
    worker = workers()
    await step(worker)
    variables = {"e": sent["eventId"], "p": endpoint_id}
    [again] = (await private_api.gql(RESEND, variables, key=t.admin_key))["resendEvent"]
    assert again["id"] != sent["id"] and again["status"] == "PENDING"
    await step(worker)
    first, second = receiver.got()
    assert first.webhook_id == second.webhook_id == sent["eventId"]
    assert first.body == second.body and second.verified_by == receiver.secrets
    assert (await delivery(private_api, t, again["id"]))["status"] == "SUCCEEDED"


async def test_r36_private_addresses_are_refused_without_the_setting(
    private_api, api, receiver, workers
):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    variables = {"i": {"url": receiver.url}}
    assert await api.error_code(CREATE, variables, key=t.admin_key) == "INVALID_INPUT"
    sent = await ping(private_api, t, endpoint_id)
    await step(workers(webhook_allow_private=False, webhook_retry_schedule=(60,)))
    assert receiver.got() == []
    [(status, error)] = await attempts(sent["id"])
    assert status is None
    assert error == (
        "refused: 127.0.0.1 resolves to 127.0.0.1, not a public address"
        " (TALLY_WEBHOOK_ALLOW_PRIVATE=on allows it)"
    )


async def test_r36_after_a_rotation_both_secrets_sign_for_24_hours(private_api, receiver, workers):
    t = await private_api.create_workspace("launch")
    endpoint_id = await subscribe(private_api, t, receiver)
    old = receiver.secrets[0]
    rotated = await private_api.gql(ROTATE, {"id": endpoint_id}, key=t.admin_key)
    new = rotated["rotateWebhookSecret"]["secret"]
    receiver.secrets.append(new)
    worker = workers()
    await ping(private_api, t, endpoint_id)
    await step(worker)
    got = receiver.got()[-1]
    assert got.verified_by == [old, new]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    await fetch(  # the 24 hours are over
        connection(),
        "UPDATE webhook_endpoint SET previous_secret_until = $2 WHERE id = $1",
        endpoint_id,
        utcnow() - timedelta(seconds=1),
    )
    await ping(private_api, t, endpoint_id)
    await step(worker)
    assert receiver.got()[-1].verified_by == [new]


async def test_r36_an_endpoint_failing_for_5_days_is_disabled(private_api, workers):
    t = await private_api.create_workspace("launch")
    with Receiver(default=500) as failing, Receiver() as watcher:
        endpoint_id = await subscribe(private_api, t, failing)
        await subscribe(private_api, t, watcher)
        since = utcnow() - timedelta(days=5, minutes=1)
        await fetch(
            connection(),
            "UPDATE webhook_endpoint SET failing_since = $2 WHERE id = $1",
            endpoint_id,
            since,
        )
        sent = await ping(private_api, t, endpoint_id)
        worker = workers()
        await step(worker)
        await until(stepping(worker, received(watcher, 1)))
        [told] = watcher.got()
    reason = f"every delivery has failed since {since.isoformat()} (5 days)"
    row = await endpoint_row(endpoint_id)
    assert (row["enabled"], row["disabled_reason"]) == (False, reason)
    assert json.loads(told.body)["data"]["reason"] == reason
    failed = await delivery(private_api, t, sent["id"])
    assert (failed["status"], failed["attempts"], failed["lastResponseStatus"]) == (
        "FAILED",
        1,
        500,
    )
