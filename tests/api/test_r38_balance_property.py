"""R38, a property: on random histories built through the API (charges, runs with holds,
refunds, top-ups, plan changes, renewals and trial ends, with the clock moving between them by
nothing, a microsecond, or days), `balanceAt` at random instants equals a replay computed here
independently: each meter summed from the ledger's amounts up to the instant (not read from
`balance_after`), and the plan and capacity the API showed after the last change at or before it.

Histories are drawn by hypothesis, derandomized (the same ones on every run), then played.
"""

from __future__ import annotations

import bisect
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from app.db import connection, fetch
from app.runs.service import expire_holds
from app.units import CREDIT_SCALE
from tests.helpers import Api, GraphQLErrors, run_jobs

EXAMPLES = 40
US = timedelta(microseconds=1)
STARTS = [
    ("launch", {}),
    ("launch", {"billingInterval": "ANNUAL"}),
    ("growth", {"creditTier": 6000}),
    ("growth", {"trial": True}),
    ("free", {}),
]
TARGETS = [  # plan changes: upgrades, downgrades, interval changes, leaving or going to free
    ("launch", {"creditTier": 5000}),
    ("growth", {"creditTier": 12000}),
    ("enterprise", {"creditTier": 50000}),
    ("launch", {"creditTier": 2500, "billingInterval": "ANNUAL"}),
    ("free", {}),
]
OPS = ["charge", "charge", "run_charge", "hold", "end_run", "refund", "top_up", "change_plan",
       "jobs", "jobs", "expire_holds"]  # fmt: skip
STATE = "plan { code } actions { capacity used } dataCredits { balance held available }"


@dataclass(frozen=True)
class Step:
    wait: timedelta
    op: str
    amount: int


@dataclass(frozen=True)
class History:
    start: int
    steps: tuple[Step, ...]
    probes: tuple[float, ...]  # instants between the creation and the end, as fractions


waits = st.one_of(
    st.just(timedelta(0)),
    st.just(US),
    st.integers(1, 10**6).map(lambda n: timedelta(microseconds=n)),
    st.integers(1, 72).map(lambda n: timedelta(hours=n)),
    st.integers(1, 40).map(lambda n: timedelta(days=n)),
)
steps = st.builds(Step, waits, st.sampled_from(OPS), st.integers(1, 4000))
histories = st.builds(
    History,
    st.integers(0, len(STARTS) - 1),
    st.lists(steps, min_size=5, max_size=16).map(tuple),
    st.lists(st.floats(0, 1), max_size=6).map(tuple),
)


def _steps(*steps: tuple[timedelta, str, int]) -> tuple[Step, ...]:
    return tuple(Step(*s) for s in steps)


H, D = timedelta(hours=1), timedelta(days=1)
# Played first, so every path is covered whatever is drawn: a hold settled at its own
# microsecond then released by the run's end, by its expiry and by a renewal; a refund and a
# top-up; a trial's end, leaving free, an upgrade, a move to free at an annual cycle's end.
EXPLICIT = [
    History(0, _steps(
        (H, "hold", 300), (timedelta(0), "run_charge", 41), (US, "end_run", 0),
        (2 * D, "charge", 100), (H, "refund", 7), (D, "top_up", 200), (H, "hold", 100),
        (timedelta(0), "run_charge", 3), (2 * H, "expire_holds", 0), (30 * D, "jobs", 0),
        (D, "change_plan", 1), (40 * D, "jobs", 0),
    ), (0.25, 0.5)),
    History(3, _steps(
        (H, "charge", 200), (H, "hold", 500), (15 * D, "jobs", 0), (US, "change_plan", 0),
        (timedelta(0), "charge", 999), (31 * D, "jobs", 0),
    ), (0.1,)),
    History(1, _steps(
        (5 * D, "charge", 1499), (31 * D, "jobs", 0), (H, "change_plan", 2),
        (2 * H, "change_plan", 4), (370 * D, "jobs", 0),
    ), (0.3, 0.6, 0.9)),
]  # fmt: skip


def drawn_histories() -> list[History]:
    """hypothesis's @given is synchronous: draw the histories here, play them in the test."""
    drawn: list[History] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(histories)
    def collect(history: History) -> None:
        drawn.append(history)

    for history in EXPLICIT:
        collect = example(history)(collect)
    collect()
    return drawn


class Player:
    """Plays a history through the API, noting what the workspace showed after each step."""

    def __init__(self, api: Api, clock: Any, now: datetime) -> None:
        self.api, self.clock, self.now = api, clock, now
        self.charges: list[dict[str, Any]] = []
        self.runs: list[str] = []
        self.seen: list[tuple[datetime, dict[str, Any]]] = []

    async def start(self, plan: str, fields: dict[str, Any]) -> None:
        tenant = await self.api.create_workspace(plan, **fields)
        self.id, self.key = tenant.id, tenant.admin_key
        self.workbook = await self.api.create_workbook(self.key)
        self.created = self.now
        await self.observe()

    async def observe(self) -> None:
        state = (await self.api.gql(f"{{ workspace {{ {STATE} }} }}", key=self.key))["workspace"]
        self.seen.append((self.now, state))

    async def play(self, step: Step) -> None:
        self.now += step.wait
        self.clock.move_to(self.now)
        with contextlib.suppress(GraphQLErrors):  # a hold refused, a plan not offered so
            await getattr(self, step.op)(step.amount)
        await self.observe()

    async def charge(self, n: int, run_id: str | None = None) -> None:
        provider, data_type = ("linkedin", "profile") if n % 2 else ("clearbit", "company")
        done = await self.api.record_usage(
            self.key, self.workbook, kind="ENRICHMENT", provider=provider, dataType=data_type,
            results=n % 1500 + 1, runId=run_id,
        )  # fmt: skip
        if done["__typename"] == "Charge":
            self.charges.append(done)

    async def run_charge(self, n: int) -> None:
        await self.charge(n, self.runs[n % len(self.runs)] if self.runs else None)

    async def hold(self, n: int) -> None:
        run = await self.api.start_run(self.key, self.workbook, hold=str(n), holdMinutes=n % 90 + 1)
        self.runs.append(run["id"])

    async def end_run(self, n: int) -> None:
        if self.runs:
            await self.api.end_run(self.key, self.runs.pop(n % len(self.runs)))

    async def refund(self, n: int) -> None:
        if self.charges:
            charge = self.charges[n % len(self.charges)]
            await self.api.refund(self.key, charge["id"], results=n % charge["results"] + 1)

    async def top_up(self, n: int) -> None:
        await self.api.top_up(self.key, str(n))

    async def change_plan(self, n: int) -> None:
        plan, fields = TARGETS[n % len(TARGETS)]
        await self.api.change_plan(self.key, plan, **fields)

    async def jobs(self, n: int) -> None:
        await run_jobs(self.now, self.id)

    async def expire_holds(self, n: int) -> None:
        await expire_holds(self.now)


async def replay(player: Player, instants: list[datetime]) -> list[tuple]:
    """What each instant should answer, computed from the ledger's amounts and what was seen."""
    rows = await fetch(
        connection(),
        "SELECT meter, amount, created_at FROM ledger_entry WHERE workspace_id = $1",
        player.id,
    )
    entries = [(_instant(r["created_at"]), r["meter"], int(r["amount"])) for r in rows]
    seen_at = [at for at, _ in player.seen]
    expected = []
    for t in instants:
        total = {"DATA_CREDITS": 0, "HELD_CREDITS": 0, "ACTIONS": 0}
        for created, meter, amount in entries:
            if created <= t:
                total[meter] += amount
        state = player.seen[bisect.bisect_right(seen_at, t) - 1][1]
        capacity = state["actions"]["capacity"]
        credits, held = (Decimal(total[m]) / CREDIT_SCALE for m in ("DATA_CREDITS", "HELD_CREDITS"))
        used = capacity - total["ACTIONS"]
        seen = state["dataCredits"]
        assert (used, credits, held) == (
            state["actions"]["used"], Decimal(seen["balance"]), Decimal(seen["held"])
        ), f"the replay disagrees with what the API showed at {t}"  # fmt: skip
        expected.append((t.isoformat(), state["plan"]["code"], used, capacity, credits, held,
                         credits - held))  # fmt: skip
    return expected


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC)


async def answered(api: Api, key: str, instants: list[datetime]) -> list[tuple]:
    """balanceAt at each instant, 20 aliases a request."""
    fields = "at plan { code } actionsUsed actionsCapacity dataCredits held available"
    found = []
    for start in range(0, len(instants), 20):
        chunk = instants[start : start + 20]
        aliases = " ".join(
            f'a{i}: balanceAt(at: "{t.isoformat()}") {{ {fields} }}' for i, t in enumerate(chunk)
        )
        data = await api.gql(f"{{ {aliases} }}", key=key)
        for i in range(len(chunk)):
            s = data[f"a{i}"]
            found.append((s["at"], s["plan"]["code"], s["actionsUsed"], s["actionsCapacity"],
                          Decimal(s["dataCredits"]), Decimal(s["held"]),
                          Decimal(s["available"])))  # fmt: skip
    return found


def instants_of(player: Player, history: History) -> list[datetime]:
    """Every change's instant and the microsecond before it, and the drawn ones."""
    start, end = player.created, player.now
    moments = {start, end}
    for at, _ in player.seen:
        moments |= {at, at - US}
    span = (end - start) / timedelta(microseconds=1)
    moments |= {start + timedelta(microseconds=int(span * f)) for f in history.probes}
    return sorted(m for m in moments if start <= m <= end)


async def test_r38_balance_at_equals_a_replay_of_the_ledger(api: Api, clock):
    histories = drawn_histories()
    assert len(histories) >= EXAMPLES
    played = {op: 0 for op in OPS}
    for n, history in enumerate(histories):
        player = Player(api, clock, datetime(2025, 1, 31, 10, tzinfo=UTC) + n * timedelta(days=1))
        clock.move_to(player.now)
        await player.start(*STARTS[history.start])
        for step in history.steps:
            await player.play(step)
            played[step.op] += 1
        instants = instants_of(player, history)
        expected = await replay(player, instants)
        assert await answered(api, player.key, instants) == expected, history
    assert all(played.values()), played  # every kind of step was played somewhere
