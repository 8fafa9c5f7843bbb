"""Live updates in process, on both databases: what tells a workspace's subscribers, and when.

A change tells them once it commits (PostgreSQL: NOTIFY, through this process's listener;
SQLite: the transaction wrapper after its commit); a rollback tells nobody; another workspace
hears nothing. The sockets themselves are tested against real servers (tests/e2e).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from app import locks
from app.clock import utcnow
from app.db import asyncpg_dsn, connection, fetch
from app.events import bus
from app.events.bus import EVERYTHING, Change, hub
from app.events.listener import APP_NAME, PostgresListener, SqliteWatcher
from app.events.rules import NewEvent
from app.events.store import emit, events_after
from app.events.types import TEST_PING
from app.plans.renewals import Scope, sweep

PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5 credits each
CAP = 10
ENDPOINT = """mutation { createWebhookEndpoint(input: {url: "https://example.com/hook"}) {
  endpoint { id } } }"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id } }"
PING = "mutation($e: ID!) { sendTestEvent(endpointId: $e) { id } }"


class Boom(Exception):
    pass


@pytest.fixture
async def listening(database) -> AsyncIterator[PostgresListener | None]:
    """On PostgreSQL this process's listener (the served app starts it in its lifespan); on
    SQLite the process's own commits publish directly."""
    if not database.is_postgres:
        yield None
        return
    listener = PostgresListener(database.url)
    await listener.start()
    assert listener.connected.is_set()
    yield listener
    await listener.stop()


async def test_live_a_charge_tells_its_workspace_after_commit_and_no_other(api, listening):
    # given
    a = await api.create_workspace("launch")
    b = await api.create_workspace("launch")
    wb = await api.create_workbook(a.admin_key)
    with (
        hub.subscribe(uuid.UUID(a.id), None, Change.STATE | Change.EVENTS, CAP) as mine,
        hub.subscribe(uuid.UUID(b.id), None, Change.STATE | Change.EVENTS, CAP) as other,
    ):
        await bus.keep_live([uuid.UUID(a.id), uuid.UUID(b.id)])  # as a subscription does
        # when
        charge = await api.record_usage(a.admin_key, wb, results=2, **PHONE)

        # then
        assert charge["__typename"] == "Charge"
        assert await mine.wait(1) is Change.STATE
        assert await other.wait(0.3) is Change.NONE


async def test_live_a_refused_charge_changes_nothing_and_tells_nobody(api, listening):
    t = await api.create_workspace("free")  # no Data Credits for an enrichment
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(t.admin_key, wb, results=20, **PHONE)  # depletes: its event
    with hub.subscribe(uuid.UUID(t.id), None, Change.STATE | Change.EVENTS, CAP) as mine:
        await bus.keep_live([uuid.UUID(t.id)])  # as a subscription does
        await asyncio.sleep(0.3)  # what that charge told arrives (PostgreSQL: asynchronously)
        mine.take()
        refused = await api.record_usage(t.admin_key, wb, results=1, **PHONE)
        assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"
        assert await mine.wait(0.3) is Change.NONE  # fired once already (R34): nothing new


async def test_live_events_and_the_state_both_tell(api, listening):
    t = await api.create_workspace("launch")
    with hub.subscribe(uuid.UUID(t.id), None, Change.STATE | Change.EVENTS, CAP) as mine:
        bought = await api.top_up(t.admin_key, "10")
        assert bought["__typename"] == "TopUp"
        await asyncio.sleep(0.2)  # both notifications of the transaction
        assert await mine.wait(1) == Change.STATE | Change.EVENTS


async def test_live_a_rolled_back_change_tells_nobody(api, listening):
    # given
    t = await api.create_workspace("launch")
    workspace = uuid.UUID(t.id)
    with hub.subscribe(workspace, None, bus.EVERYTHING, CAP) as mine:
        # when: a transaction says it changed the workspace, then rolls back
        with pytest.raises(Boom):
            async with in_transaction() as conn:
                await bus.notify(conn, workspace, Change.STATE)
                await emit(conn, workspace, [NewEvent(TEST_PING, {})], utcnow())
                raise Boom

        # then
        assert await mine.wait(0.4) is Change.NONE
        assert await events_after(workspace, 0, [TEST_PING], 10) == []


async def test_live_nothing_is_told_before_the_commit(api, listening):
    # given
    t = await api.create_workspace("launch")
    workspace = uuid.UUID(t.id)
    with hub.subscribe(workspace, None, Change.STATE, CAP) as mine:
        async with in_transaction() as conn:
            await bus.notify(conn, workspace, Change.STATE)
            # then: not while the transaction is open
            assert await mine.wait(0.3) is Change.NONE
        # and once it commits
        assert await mine.wait(1) is Change.STATE


async def test_live_revoking_a_key_tells_its_workspace(api, listening):
    t = await api.create_workspace("launch")
    created = await api.gql(
        'mutation { createApiKey(name: "m", role: MEMBER) { apiKey { id } } }', key=t.admin_key
    )
    key_id = created["createApiKey"]["apiKey"]["id"]
    with hub.subscribe(uuid.UUID(t.id), None, Change.KEYS, CAP) as mine:
        await api.gql(REVOKE, {"id": key_id}, key=t.admin_key)
        assert await mine.wait(1) is Change.KEYS


async def test_live_a_new_workbook_tells_its_workspace(api, listening):
    t = await api.create_workspace("launch")
    with hub.subscribe(uuid.UUID(t.id), None, Change.STATE, CAP) as mine:
        await api.create_workbook(t.admin_key, "new")
        assert await mine.wait(1) is Change.STATE


@pytest.mark.usefixtures("postgres_only")
async def test_live_one_workspaces_events_commit_in_seq_order(api, database):
    """The `events` subscription reads on from the last seq it sent: a test ping (which locks
    nothing else) must not commit a later seq before an open charge's earlier one."""
    # given: a transaction that holds the workspace and wrote an event, still open
    t = await api.create_workspace("launch")
    workspace = uuid.UUID(t.id)
    created = await api.gql(ENDPOINT, key=t.admin_key)
    endpoint_id = created["createWebhookEndpoint"]["endpoint"]["id"]
    release = asyncio.Event()

    async def first() -> None:
        async with in_transaction() as conn:
            await locks.workspace_row(conn, workspace)
            await emit(conn, workspace, [NewEvent(TEST_PING, {"n": 1})], utcnow())
            await release.wait()

    holder = asyncio.create_task(first())
    await asyncio.sleep(0.2)

    # when: a test ping is sent meanwhile
    ping = asyncio.create_task(api.gql(PING, {"e": endpoint_id}, key=t.admin_key))
    await asyncio.sleep(0.3)

    # then: it waits for the open transaction, and its event comes after that one's
    assert not ping.done()
    release.set()
    await holder
    await ping
    pings = await events_after(workspace, 0, [TEST_PING], 10)
    assert [json.loads(row.data) for row in pings] == [
        {"workspaceId": t.id, "n": 1},
        {"workspaceId": t.id},
    ]


@pytest.mark.usefixtures("postgres_only")
async def test_live_the_listener_comes_back_and_wakes_everyone(api, database, listening):
    # given: a subscriber, and the listening connection cut by the server
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    name = database.url.rsplit("/", 1)[1]
    with hub.subscribe(uuid.UUID(t.id), None, Change.STATE, CAP) as mine:
        await bus.keep_live([uuid.UUID(t.id)])  # as a subscription does
        # The notifications of the changes above may still be on their way: let them arrive
        # first, so that the wake awaited below can only be the listener's after reconnecting.
        while await mine.wait(1) is not Change.NONE:
            pass
        admin = await asyncpg.connect(asyncpg_dsn(database.url))
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1 AND datname = $2",
                APP_NAME,
                name,
            )
        finally:
            await admin.close()
        assert cut == 1

        # then: it listens again, and every subscriber re-reads (it may have missed a change)
        assert await mine.wait(5) is Change.STATE
        assert listening.connected.is_set()

        # and changes reach the subscriber as before
        await api.record_usage(t.admin_key, wb, results=1, **PHONE)
        assert await mine.wait(1) is Change.STATE


@pytest.fixture
async def channel(database) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads NOTIFY sends, heard on a connection of the test's own."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(database.url))
    await conn.add_listener(bus.CHANNEL, lambda *args: heard.put_nowait(args[-1]))
    yield heard
    await conn.close()


async def _heard(heard: asyncio.Queue[str], seconds: float) -> list[str]:
    await asyncio.sleep(seconds)
    return [heard.get_nowait() for _ in range(heard.qsize())]


@pytest.mark.usefixtures("postgres_only")
async def test_live_a_charge_notifies_only_while_its_workspace_is_live(api, channel):
    # given: a workspace nobody subscribes to
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    workspace = uuid.UUID(t.id)
    await _heard(channel, 0.3)  # what creating it told

    # when it is charged: no NOTIFY at all
    await api.record_usage(t.admin_key, wb, results=1, **PHONE)
    assert await _heard(channel, 0.4) == []

    # once a subscriber keeps it live, each charge notifies once
    await bus.keep_live([workspace])
    await api.record_usage(t.admin_key, wb, results=1, **PHONE)
    assert await _heard(channel, 0.4) == [bus.payload(workspace, Change.STATE)]

    # and once the lease lapses, no more
    lapse = "UPDATE workspace SET live_until = now() - interval '1 s' WHERE id = $1"
    await fetch(connection(), lapse, t.id)
    await api.record_usage(t.admin_key, wb, results=1, **PHONE)
    assert await _heard(channel, 0.4) == []
    assert (await api.meters(t.admin_key))[1] == Decimal("2485")  # every charge was made


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize("set_based", [True, False], ids=["set", "per-workspace"])
async def test_live_a_renewal_tells_each_workspace_its_state_and_events(api, channel, set_based):
    # given: two workspaces a month from their renewal, the first watched by a subscriber
    made = [await api.create_workspace("launch") for _ in range(2)]
    ids = [uuid.UUID(t.id) for t in made]
    await bus.keep_live(ids[:1])
    await _heard(channel, 0.3)  # what creating them told

    # when the sweep renews both, a month later
    later = utcnow() + timedelta(days=32)
    done = await sweep(later, Scope(workspace_ids=ids), set_based=set_based)
    assert done.workspaces == 2

    # then the watched one is told once of its state and once of its events
    # (subscription.renewed), in the words bus.payload spells, whichever path wrote them; the
    # set-based sweep tells an unwatched workspace nothing, as a charge does
    heard = await _heard(channel, 0.4)
    told = ids if not set_based else ids[:1]
    expected = [bus.payload(w, c) for w in told for c in (Change.STATE, Change.EVENTS)]
    assert sorted(heard) == sorted(expected)


@pytest.mark.usefixtures("postgres_only")
async def test_live_payload_sql_spells_what_payload_spells(api):
    workspace = uuid.uuid4()
    for change in (Change.STATE, Change.EVENTS, Change.KEYS, EVERYTHING):
        sql = f"SELECT {bus.payload_sql('$1::uuid', change)} AS p"
        row = (await fetch(connection(), sql, str(workspace)))[0]
        assert row["p"] == bus.payload(workspace, change)


@pytest.mark.usefixtures("postgres_only")
async def test_live_the_listener_renews_its_subscribers_leases(api, database):
    # given: three workspaces, a subscriber in this process for one, another's subscriber
    # wanting only its events (they notify unleased), every lease run out
    watched = uuid.UUID((await api.create_workspace("launch")).id)
    other = uuid.UUID((await api.create_workspace("launch")).id)
    events_only = uuid.UUID((await api.create_workspace("launch")).id)
    listener = PostgresListener(database.url, renew_every=0.2)
    with (
        hub.subscribe(watched, None, Change.STATE, CAP) as mine,
        hub.subscribe(events_only, None, Change.EVENTS, CAP),
    ):
        lapse = "UPDATE workspace SET live_until = now() - interval '1 s' WHERE id = ANY($1)"
        await fetch(connection(), lapse, [str(watched), str(other), str(events_only)])
        await listener.start()
        try:
            mine.take()  # the listener's wake-up on connecting
            # when the listener renews: the subscriber is told to read again, once
            assert await mine.wait(1) is Change.STATE
            assert await mine.wait(0.6) is Change.NONE  # later renewals: fresh, not written
        finally:
            await listener.stop()

    # then the listener renewed it for LEASE seconds, and only it
    rows = await fetch(
        connection(),
        "SELECT id, live_until > now() + make_interval(secs => $1) AS renewed FROM workspace"
        " WHERE id = ANY($2::uuid[])",
        bus.LEASE - 5,
        [str(watched), str(other), str(events_only)],
    )
    renewed = {str(r["id"]): r["renewed"] for r in rows}
    assert renewed == {str(watched): True, str(other): False, str(events_only): False}


@pytest.mark.usefixtures("postgres_only")
async def test_live_a_lease_waits_for_a_charge_holding_the_row_and_is_bounded(
    api, database, channel
):
    """The lease and a charge's notifying UPDATE take the workspace's row lock in turn. Lease
    after the charge: it waits for the commit, so the subscriber's read (after the lease) sees
    the charge. Lease first: the charge notifies. A lock held past LEASE_LOCK_WAIT: no wait."""
    t = await api.create_workspace("launch")
    workspace = uuid.UUID(t.id)
    clause, args = bus.notify_returning(connection(), workspace, Change.STATE, first=2)
    charge = f"UPDATE workspace SET actions_used = actions_used + 1 WHERE id = $1{clause}"
    other = await asyncpg.connect(asyncpg_dsn(database.url))
    try:
        # a charge holds the row, uncommitted, with no lease yet: then a subscriber leases
        tx = other.transaction()
        await tx.start()
        await other.fetch(charge, workspace, *args)
        lease = asyncio.ensure_future(bus.keep_live([workspace]))
        await asyncio.sleep(0.3)
        assert not lease.done()  # it waits for the charge
        await tx.commit()
        assert await lease == [workspace]  # then leases (there was none: "lapsed")
        assert await _heard(channel, 0.3) == []  # that charge was before the lease, unheard
        # the lease first: the next charge notifies
        await other.fetch(charge, workspace, *args)
        assert await _heard(channel, 0.4) == [bus.payload(workspace, Change.STATE)]
        # a lock held longer than LEASE_LOCK_WAIT: the lease gives up, it does not hang
        await fetch(connection(), "UPDATE workspace SET live_until = NULL WHERE id = $1", t.id)
        tx = other.transaction()
        await tx.start()
        await other.fetch("SELECT 1 FROM workspace WHERE id = $1 FOR UPDATE", workspace)
        started = asyncio.get_running_loop().time()
        with pytest.raises(Exception, match="lock"):
            await bus.keep_live([workspace])
        assert asyncio.get_running_loop().time() - started < 4
        await tx.rollback()
    finally:
        await other.close()


@pytest.mark.usefixtures("postgres_only")
async def test_live_a_subscriber_starting_amid_charges_ends_on_the_last_state(api, listening):
    """The lease and a charge write the same row in turn: whichever commits first, the
    subscriber either reads the charge or is told of it. Five rounds of 40 concurrent charges,
    a subscriber joining after the first few."""
    for _ in range(5):
        t = await api.create_workspace("launch")
        wb = await api.create_workbook(t.admin_key)
        workspace = uuid.UUID(t.id)

        async def charge(n: int, key: str = t.admin_key, wb: str = wb) -> None:
            await asyncio.sleep(n * 0.002)
            await api.record_usage(key, wb, results=1, **PHONE)

        async def balance(key: str) -> str:  # what the subscription would send
            return (await api.workspace(key))["dataCredits"]["balance"]

        charges = asyncio.gather(*(charge(n) for n in range(40)))
        await asyncio.sleep(0.02)
        with hub.subscribe(workspace, None, Change.STATE, CAP) as mine:
            await bus.keep_live([workspace])
            seen = await balance(t.admin_key)
            while True:  # as a subscription does: read again after each change told
                if await mine.wait(0.5) is not Change.NONE:
                    seen = await balance(t.admin_key)
                elif charges.done():
                    break
            await charges
        assert seen == "2300"
        assert await api.meters(t.admin_key) == (40, Decimal("2300"))


async def test_live_on_sqlite_another_process_commit_wakes_everyone(api, database):
    if database.is_postgres:
        pytest.skip("SQLite's second process; PostgreSQL notifies every process")
    # given
    t = await api.create_workspace("launch")
    watcher = SqliteWatcher(interval=0.05)
    await watcher.start()
    try:
        with hub.subscribe(uuid.UUID(t.id), None, Change.STATE, CAP) as mine:
            await asyncio.sleep(0.2)  # the watcher has read the version once
            assert await mine.wait(0.1) is Change.NONE

            # when: another connection (another process) commits to the file
            path = database.url.removeprefix("sqlite://")
            other = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                renamed = other.execute(
                    "UPDATE workspace SET name = ? WHERE id = ?", ("renamed elsewhere", t.id)
                )
                assert renamed.rowcount == 1
            finally:
                other.close()

            # then
            assert await mine.wait(1) is Change.STATE
    finally:
        await watcher.stop()
