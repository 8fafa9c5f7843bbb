"""Subscriptions end to end: real `tally serve` processes, a real WebSocket client.

The key in connection_init (no key, a wrong one, the operator's, a revoked one: 4403 and no
data), an update within a second of a charge made over HTTP, `events(types)` exactly and in
order, nothing of another workspace, two processes on one PostgreSQL database (charged through
one, seen on the other), the per-key cap, keep-alive pings, and a slow reader.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database
from tests.e2e.test_server import OPERATOR, Server
from tests.live_client import EVENTS, WORKSPACE_UPDATED, Closed, LiveSocket

pytestmark = pytest.mark.e2e
CAP = 3
SETTINGS = {
    "TALLY_SCHEDULER": "off",
    "TALLY_MAX_SUBSCRIPTIONS_PER_KEY": str(CAP),
    "TALLY_WS_PING_INTERVAL": "1",
}
RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Refusal { code } } }"""
LATENCIES: dict[str, list[float]] = {}
TYPES = ["topup.purchased", "credits.depleted"]
STORED = """query($t: [String!]) { events(first: 50, types: $t) { edges { node { id } } } }"""
UPGRADE = """mutation($k: String!) { changePlan(input: {plan: "growth", idempotencyKey: $k}) {
  __typename } }"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id } }"
BATCH = """mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) { charged } }"""


@dataclass
class Served:
    """Where charges are made (`charge_base`) and where subscriptions listen (`live_base`):
    one process on SQLite, two different ones on PostgreSQL."""

    backend: str
    charge_base: str
    live_base: str
    database_url: str = ""  # PostgreSQL's, for what only the database shows


def start(url: str, workdir: Path) -> Server:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SETTINGS.items():
            patch.setenv(name, value)
        return Server(url, workdir)


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Served]:
    if request.param == "sqlite":
        server = start("", tmp_path_factory.mktemp("live-sqlite"))
        yield Served("sqlite", server.base, server.base)
        server.stop()
        return
    name = f"tally_e2e_live_{uuid.uuid4().hex[:8]}"
    url = f"{PG_SERVER}/{name}"
    one = start(url, tmp_path_factory.mktemp("live-pg-1"))
    two = start(url, tmp_path_factory.mktemp("live-pg-2"))
    yield Served("postgres", one.base, two.base, url)
    one.stop()
    two.stop()
    asyncio.run(drop_postgres_database(name))


class Http:
    def __init__(self, base: str) -> None:
        self.client = httpx.AsyncClient(base_url=base, timeout=30)

    async def gql(self, query: str, variables: dict | None = None, key: str = OPERATOR) -> dict:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]

    async def tenant(self, plan: str = "launch") -> tuple[str, str, str]:
        """(admin key, workspace id, workbook id) of a new workspace."""
        created = await self.gql(
            """mutation($p: String!) { createWorkspace(input: {name: "Live", plan: $p}) {
                 adminKey workspace { id } } }""",
            {"p": plan},
        )
        key = created["createWorkspace"]["adminKey"]
        book = await self.gql('mutation { createWorkbook(name: "W") { id } }', key=key)
        return key, created["createWorkspace"]["workspace"]["id"], book["createWorkbook"]["id"]

    async def charge(self, key: str, workbook: str, results: int = 1, **usage: str) -> dict:
        item = {"workbookId": workbook, "kind": "ENRICHMENT", "provider": "linkedin",
                "dataType": "profile", "results": results,
                "idempotencyKey": uuid.uuid4().hex, **usage}  # fmt: skip
        return (await self.gql(RECORD, {"i": item}, key))["recordUsage"]

    async def top_up(self, key: str, credits: str) -> None:
        bought = await self.gql(
            """mutation($c: Decimal!, $k: String!) { purchaseTopUp(input:
                 {credits: $c, idempotencyKey: $k}) { __typename } }""",
            {"c": credits, "k": uuid.uuid4().hex},
            key,
        )
        assert bought["purchaseTopUp"]["__typename"] == "TopUp"

    async def member_key(self, admin: str) -> tuple[str, str]:
        made = await self.gql(
            'mutation { createApiKey(name: "live", role: MEMBER) { secret apiKey { id } } }',
            key=admin,
        )
        return made["createApiKey"]["secret"], made["createApiKey"]["apiKey"]["id"]

    async def close(self) -> None:
        await self.client.aclose()


def run(coroutine_function, served: Served) -> None:
    async def main() -> None:
        http = Http(served.charge_base)
        try:
            await coroutine_function(http, served)
        finally:
            await http.close()

    asyncio.run(main())


def test_live_a_socket_without_an_accepted_key_is_closed_4403_with_no_data(served):
    async def check(http: Http, served: Served) -> None:
        admin, _, _ = await http.tenant()
        member, member_id = await http.member_key(admin)
        await http.gql(REVOKE, {"id": member_id}, admin)
        for params in [
            None,
            {"Authorization": "Bearer tly_not-a-key"},
            {"Authorization": f"Bearer {OPERATOR}"},  # no workspace
            {"Authorization": f"Bearer {member}"},  # revoked
            {"Authorization": admin},  # not a bearer
        ]:
            socket = await LiveSocket.open(served.live_base, params)
            await socket.subscribe("1", WORKSPACE_UPDATED)
            with pytest.raises(Closed) as closed:
                await socket.message(5)
            assert closed.value.code == 4403, params

    run(check, served)


def test_live_an_update_follows_a_charge_within_a_second(served):
    async def check(http: Http, served: Served) -> None:
        # given: a subscription, on the other process where there are two
        key, workspace_id, book = await http.tenant()
        socket = await LiveSocket.with_key(served.live_base, key)
        await socket.subscribe("ws", WORKSPACE_UPDATED)
        first = await socket.data("ws")
        assert first["workspaceUpdated"]["id"] == workspace_id
        assert first["workspaceUpdated"]["actions"]["used"] == 0

        # when / then: each charge made over HTTP arrives, within a second
        latencies = []
        for n in range(1, 21):
            await asyncio.sleep(0.15)
            started = time.monotonic()
            assert (await http.charge(key, book, 2))["__typename"] == "Charge"
            answered = time.monotonic()
            update = (await socket.data("ws", within=1.0))["workspaceUpdated"]
            latencies.append((time.monotonic() - answered, time.monotonic() - started))
            assert update["actions"]["used"] == 2 * n
            assert update["dataCredits"]["balance"] == str(2500 - n)
        LATENCIES[served.backend] = [after for after, _ in latencies]
        print(f"\n{served.backend}: HTTP answer -> update, ms: p50 "
              f"{statistics.median(a for a, _ in latencies) * 1000:.1f}, max "
              f"{max(a for a, _ in latencies) * 1000:.1f}; request sent -> update p50 "
              f"{statistics.median(b for _, b in latencies) * 1000:.1f}")  # fmt: skip
        await socket.close()

    run(check, served)


def test_live_only_a_subscription_to_the_state_leases_its_workspace(served):
    """A charge notifies only while its workspace is leased (app.events.bus.LIVE), and only
    `workspaceUpdated` needs that: `events` are notified whether or not."""
    if served.backend != "postgres":
        pytest.skip("leases are PostgreSQL's; SQLite's commits tell the process itself")

    async def leased(workspace_id: str) -> bool:
        conn = await asyncpg.connect(served.database_url.replace("postgres://", "postgresql://"))
        try:
            query = "SELECT live_until > now() FROM workspace WHERE id = $1"
            return bool(await conn.fetchval(query, uuid.UUID(workspace_id)))
        finally:
            await conn.close()

    async def check(http: Http, served: Served) -> None:
        key, workspace_id, book = await http.tenant()
        socket = await LiveSocket.with_key(served.live_base, key)
        await socket.subscribe("ev", EVENTS, {"t": TYPES})
        await asyncio.sleep(0.3)  # registered, and whatever it reads first, read
        assert not await leased(workspace_id)
        assert (await http.charge(key, book, 5000))["__typename"] == "Charge"  # depleted
        depleted = (await socket.data("ev", within=2))["events"]
        assert (depleted["type"], depleted["data"]["available"]) == ("credits.depleted", "0")
        assert not await leased(workspace_id)
        await socket.subscribe("ws", WORKSPACE_UPDATED)
        assert (await socket.data("ws"))["workspaceUpdated"]["id"] == workspace_id
        assert await leased(workspace_id)
        await socket.close()

    run(check, served)


def test_live_events_arrive_exactly_in_order_and_nothing_of_another_workspace(served):
    async def check(http: Http, served: Served) -> None:
        # given: A's events of two types; B watching its own workspace and events
        a, _, a_book = await http.tenant("launch")  # 2,500 Data Credits
        b, _, _ = await http.tenant("launch")
        on_a = await LiveSocket.with_key(served.live_base, a)
        await on_a.subscribe("ev", EVENTS, {"t": TYPES})
        on_b = await LiveSocket.with_key(served.live_base, b)
        await on_b.subscribe("ws", WORKSPACE_UPDATED)
        await on_b.subscribe("ev", EVENTS)
        await on_b.data("ws")  # its current state
        await asyncio.sleep(0.3)

        # when: A tops up three times, spends everything (depleted), is refused (no second
        # event: once per crossing), upgrades (another type), and tops up again
        for credits in ("1", "2", "3"):
            await http.top_up(a, credits)
        assert (await http.charge(a, a_book, 5012))["__typename"] == "Charge"  # 2,506 credits
        assert (await http.charge(a, a_book, 1))["code"] == "INSUFFICIENT_DATA_CREDITS"
        await http.gql(UPGRADE, {"k": uuid.uuid4().hex}, a)
        await http.top_up(a, "4")

        # then: A's subscription sends exactly the committed events of its types, in order
        got = [(await on_a.data("ev", within=2))["events"] for _ in range(5)]
        stored = await http.gql(STORED, {"t": TYPES}, a)
        assert [e["id"] for e in got] == [e["node"]["id"] for e in stored["events"]["edges"]][::-1]
        assert [
            (e["type"], e["data"].get("credits") or e["data"].get("available")) for e in got
        ] == [
            ("topup.purchased", "1"),
            ("topup.purchased", "2"),
            ("topup.purchased", "3"),
            ("credits.depleted", "0"),
            ("topup.purchased", "4"),
        ]
        assert await on_a.quiet(0.5) == []
        # and B heard nothing of A
        assert await on_b.quiet(0.5) == []

    run(check, served)


def test_live_two_processes_share_every_change(served):
    """On PostgreSQL a charge through one process reaches subscribers of the other, in both
    directions (on SQLite one process does both)."""

    async def check(http: Http, served: Served) -> None:
        key, _, book = await http.tenant()
        there = await LiveSocket.with_key(served.live_base, key)
        here = await LiveSocket.with_key(served.charge_base, key)
        for socket in (there, here):
            await socket.subscribe("ws", WORKSPACE_UPDATED)
            await socket.data("ws")
        other = Http(served.live_base)
        try:
            await http.charge(key, book, 4)  # through the first process
            for socket in (there, here):
                assert (await socket.data("ws", 1))["workspaceUpdated"]["actions"]["used"] == 4
            await other.charge(key, book, 6)  # through the second
            for socket in (there, here):
                assert (await socket.data("ws", 1))["workspaceUpdated"]["actions"]["used"] == 10
        finally:
            await other.close()

    run(check, served)


def test_live_a_revoked_keys_subscriptions_end_with_4403(served):
    async def check(http: Http, served: Served) -> None:
        admin, _, book = await http.tenant()
        member, member_id = await http.member_key(admin)
        socket = await LiveSocket.with_key(served.live_base, member)
        await socket.subscribe("ws", WORKSPACE_UPDATED)
        await socket.subscribe("ev", EVENTS)
        await socket.data("ws")
        await http.charge(member, book)
        assert (await socket.data("ws", 1))["workspaceUpdated"]["actions"]["used"] == 1

        await http.gql(REVOKE, {"id": member_id}, admin)

        with pytest.raises(Closed) as closed:
            await socket.message(2)
        assert closed.value.code == 4403

    run(check, served)


def test_live_a_key_holds_at_most_its_cap_of_subscriptions(served):
    async def check(http: Http, served: Served) -> None:
        key, _, _ = await http.tenant()
        one = await LiveSocket.with_key(served.live_base, key)
        two = await LiveSocket.with_key(served.live_base, key)
        for n in range(CAP):
            await (one if n % 2 else two).subscribe(f"s{n}", WORKSPACE_UPDATED)
            await (one if n % 2 else two).data(f"s{n}")
        await asyncio.sleep(1.2)  # sampled each second
        metrics = (await httpx.AsyncClient(base_url=served.live_base).get("/metrics")).text
        assert float(re.findall(r"^tally_live_subscriptions (\S+)$", metrics, re.M)[0]) >= CAP
        await one.subscribe("over", WORKSPACE_UPDATED)
        refused = await one.message()
        assert refused["id"] == "over" and refused["type"] == "error", refused
        assert refused["payload"][0]["extensions"]["code"] == "QUOTA_EXCEEDED"
        # a subscription completed frees its place
        await one.complete("s1")
        await asyncio.sleep(0.2)
        await one.subscribe("again", WORKSPACE_UPDATED)
        assert "workspaceUpdated" in await one.data("again")

    run(check, served)


def test_live_an_idle_socket_is_pinged_and_queries_go_to_http(served):
    async def check(http: Http, served: Served) -> None:
        key, _, _ = await http.tenant()
        socket = await LiveSocket.with_key(served.live_base, key)
        await socket.subscribe("q", "{ workspace { id } }")
        refused = await socket.message()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert await socket.quiet(2.5) == []
        assert socket.pings >= 2  # TALLY_WS_PING_INTERVAL=1 here
        over_http = await http.client.post(
            "/graphql",
            json={"query": WORKSPACE_UPDATED},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert over_http.status_code == 400
        assert over_http.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    run(check, served)


def test_live_a_slow_reader_gets_every_event_and_the_last_state(served):
    async def check(http: Http, served: Served) -> None:
        # given: a client that reads nothing for a while
        key, _, _ = await http.tenant()
        slow = await LiveSocket.with_key(served.live_base, key, max_queue=1)
        await slow.subscribe("ws", WORKSPACE_UPDATED)
        await slow.subscribe("ev", EVENTS)
        await asyncio.sleep(0.3)

        # when: 60 top-ups commit meanwhile
        for n in range(1, 61):
            await http.top_up(key, str(n))

        # then: every event, in order; the workspace merged, ending on the last state
        got = await slow.quiet(1.5)
        events = [m["payload"]["data"]["events"] for m in got if m["id"] == "ev"]
        states = [m["payload"]["data"]["workspaceUpdated"] for m in got if m["id"] == "ws"]
        assert [e["data"]["credits"] for e in events] == [str(n) for n in range(1, 61)]
        assert states[-1]["dataCredits"]["balance"] == str(2500 + 61 * 30)
        assert len(states) < 60

    run(check, served)


def test_live_a_change_refused_whole_sends_nothing(served):
    async def check(http: Http, served: Served) -> None:
        key, _, book = await http.tenant()
        socket = await LiveSocket.with_key(served.live_base, key)
        await socket.subscribe("ws", WORKSPACE_UPDATED)
        await socket.data("ws")
        bad = {"workbookId": book, "kind": "ENRICHMENT", "provider": "linkedin",
               "dataType": "profile", "results": 0, "idempotencyKey": "bad"}  # fmt: skip
        good = {**bad, "results": 1, "idempotencyKey": "good"}
        response = await http.client.post(
            "/graphql",
            json={"query": BATCH, "variables": {"i": {"items": [good, bad]}}},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        assert await socket.quiet(1.0) == []

    run(check, served)
