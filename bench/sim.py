"""A seeded randomized simulation of Tally's clients, checking the invariants after every step.

    .venv/bin/python -m bench.sim --seeds 1000 [--start 0] [--steps 40] [--keep-going]
    .venv/bin/python -m bench.sim --seed N          # replays seed N exactly

Each seed is a plan drawn from `random.Random(seed)` before anything is sent: a few workspaces
(free, launch monthly, growth annual, enterprise with workbook spend limits, a trial) and
`--steps` steps. A step moves the wall clock forward (not at all, minutes, hours, days or
months, with `time_machine`, so the API and the jobs agree on the time) and fires its requests
at once with asyncio.gather over GraphQL: charges, bursts of charges on one workspace, batches
with duplicate keys and retries of earlier keys, keys reused for another request, refunds
(whole and partial), top-ups, plan changes, cancellations, runs with budgets and holds, spend
limits, and the scheduler's jobs (sometimes two schedulers at once). The plan never depends on
the answers, so every run of a seed sends the same requests; only the interleaving of a step's
concurrent transactions may differ.

After every step the invariants are read from the database (`INVARIANTS`) and checked against
what the simulation was answered: balance = ledger sum, balance >= 0, available >= 0, workbook
spend <= limit, run spend <= budget, one effect per idempotency key, one renewal per period,
and more. A failing seed prints itself, the broken invariant and the command that replays it,
and the run exits 1. Each run works in a PostgreSQL database of its own, dropped at the end;
seeds share it, each with new workspaces, and each seed's renewals are swept for its own
workspaces only (as `tests/helpers.run_jobs` does), so seeds never renew each other's.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import hashlib
import itertools
import json
import logging
import os
import random
import re
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import time_machine

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, open_database
from app.plans.renewals import sweep
from graphql_schema.asgi import create_app
from jobs.registry import JOBS, run_job

SERVER = (
    os.environ.get("TALLY_SIM_POSTGRES")
    or os.environ.get("TALLY_TEST_POSTGRES")
    or "postgres://postgres@127.0.0.1:5432"
)
OPERATOR_KEY = "tly_op_sim-operator-key"
DEFAULT_STEPS = 40
ANALYZE_EVERY = 25  # seeds between two ANALYZEs of the run's database
# The scheduler reads its clock a second after the API's: renewal ledger rows then never share
# an instant with a plan change's, which `INVARIANTS` relies on to count grants per renewal.
JOB_LAG = timedelta(seconds=1)

# ---------------------------------------------------------------------------------------------
# The seeded catalog (API.md), as the oracle a charge's cost is checked against
# ---------------------------------------------------------------------------------------------

UNITS = 10_000  # Data Credit minor units per credit (R1)
PRICES = {  # units per result (R4)
    ("linkedin", "profile"): 5_000,
    ("hunter", "email"): 5_000,
    ("zerobounce", "email_validation"): 0,
    ("apollo", "phone"): 50_000,
    ("clearbit", "company"): 10_000,
}
AI_MODELS = {"small": (500, 2_000), "large": (5_000, 20_000)}  # units per 1,000 tokens in, out
FREE_KINDS = ("SOURCING", "CRM_IMPORT", "FORMULA", "CSV_EXPORT", "AUDIENCE_CREATE")  # R3
PLAIN_KINDS = ("CRM_EXPORT", "HTTP_API_CALL", "EMAIL_SEND", "SIGNAL", "SEQUENCER_LEAD")  # R2
TIERS = {
    "free": (None,),
    "launch": (2500, 5000, 10000),
    "growth": (6000, 12000, 50000),
    "enterprise": (50000, 100000, 250000),
}
INTERVALS = {
    "free": ("MONTHLY",),
    "launch": ("MONTHLY", "ANNUAL"),
    "growth": ("MONTHLY", "ANNUAL"),
    "enterprise": ("ANNUAL",),
}


# ---------------------------------------------------------------------------------------------
# The plan: what a seed sends, drawn before anything is sent
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    kind: str
    results: int
    provider: str | None = None
    data_type: str | None = None
    own_key: bool = False
    model: str | None = None
    tokens: tuple[int, int] | None = None
    table: str | None = None

    @property
    def cost(self) -> tuple[int, int]:
        """(Actions, Data Credit units) by the catalog: the oracle for every charge."""
        if self.kind in FREE_KINDS:
            return 0, 0
        if self.own_key:
            return self.results, 0
        if self.model is not None and self.tokens is not None:
            (i, o), (tin, tout) = AI_MODELS[self.model], self.tokens
            return self.results, -(-(tin * i + tout * o) // 1000)  # rounded up per charge
        if self.provider is not None and self.data_type is not None:
            return self.results, PRICES[(self.provider, self.data_type)] * self.results
        return self.results, 0


@dataclass(eq=False)  # compared by identity: the same object sent again is a retry
class Item:
    ws: int
    wb: int
    usage: Usage
    key: str
    run: int | None = None  # a run planned earlier in the seed
    sent_frac: float | None = None  # sentAt this far from the run's start to now


@dataclass(eq=False)
class Record:
    ws: int
    items: list[Item]
    batch: bool  # one recordUsageBatch, or one recordUsage per item, all at once


@dataclass(eq=False)
class Refund:
    ws: int
    charge_key: str
    results: int | None  # None: all that remain
    key: str


@dataclass(eq=False)
class TopUp:
    ws: int
    credits: str
    key: str
    meter: str = "DATA_CREDITS"


@dataclass(eq=False)
class ChangePlan:
    ws: int
    plan: str
    tier: int | None
    interval: str | None
    key: str


@dataclass(eq=False)
class Cancel:
    ws: int


@dataclass(eq=False)
class Withdraw:
    ws: int


@dataclass(eq=False)
class StartRun:
    ws: int
    run: int
    wb: int
    budget: str | None
    hold: str | None
    minutes: int
    key: str


@dataclass(eq=False)
class EndRun:
    ws: int
    run: int
    how: str  # stopRun or finishRun


@dataclass(eq=False)
class SetLimit:
    ws: int
    wb: int
    limit: str | None


Op = Record | Refund | TopUp | ChangePlan | Cancel | Withdraw | StartRun | EndRun | SetLimit
Keyed = Record | Refund | TopUp | ChangePlan | StartRun


@dataclass(frozen=True)
class Profile:
    name: str
    plan: str
    interval: str | None
    trial: bool = False


PROFILES = (
    Profile("free", "free", None),
    Profile("launch monthly", "launch", "MONTHLY"),
    Profile("growth annual", "growth", "ANNUAL"),
    Profile("enterprise", "enterprise", "ANNUAL"),
    Profile("trial", "growth", None, trial=True),
)


@dataclass(frozen=True)
class TenantPlan:
    profile: Profile
    tier: int | None
    workbooks: int


@dataclass
class Step:
    at: datetime
    ops: list[Op]
    schedulers: int  # 0: no jobs this step; 2: two schedulers sweep at once


@dataclass
class SeedPlan:
    seed: int
    start: datetime
    tenants: list[TenantPlan]
    steps: list[Step]

    @property
    def digest(self) -> str:
        """The same on every run of the seed: proof that a replay sends the same plan."""
        return hashlib.sha256(repr((self.start, self.tenants, self.steps)).encode()).hexdigest()


class Planner:
    """Draws a seed's whole plan from `random.Random(seed)`; it never sees an answer."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.counter = itertools.count()
        self.tenants: list[TenantPlan] = []
        self.items: list[Item] = []  # items of earlier steps: refunds and reuses name them
        self.runs: list[tuple[int, int, int]] = []  # (ws, run, wb) started in earlier steps
        self.keyed: list[Keyed] = []  # every op with a key so far, this step's too: retries
        self.new_items: list[Item] = []
        self.new_runs: list[tuple[int, int, int]] = []
        self.racing_refund: Item | None = None  # the charge this step's last refund named
        self.makers: list[tuple[Callable[[], Op | None], float]] = [
            (self.single, 24),
            (self.burst, 5),
            (self.batch, 12),
            (self.retry, 10),
            (self.reuse, 3),
            (self.refund, 9),
            (self.top_up, 6),
            (self.change_plan, 5),
            (self.cancel, 1.5),
            (self.withdraw, 1.5),
            (self.start_run, 6),
            (self.end_run, 4),
            (self.set_limit, 4),
        ]

    def plan(self, steps: int) -> SeedPlan:
        start = self.start()
        self.tenants = self.pick_tenants()
        at, planned = start, []
        for _ in range(steps):
            jump = self.jump()
            at += jump
            planned.append(self.step(at, jump))
        return SeedPlan(self.seed, start, self.tenants, planned)

    def key(self, what: str) -> str:
        return f"sim{self.seed}-{what}-{next(self.counter)}"

    def start(self) -> datetime:
        """Somewhere in 2020-2021, so that even a long seed ends before the clock other tests
        use (the hold-expiry job is global); a quarter start on a month's last days (R14)."""
        day = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=self.rng.randrange(730))
        if self.rng.random() < 0.25:
            last = calendar.monthrange(day.year, day.month)[1]
            day = day.replace(day=last - self.rng.randrange(3))
        seconds = self.rng.randrange(86_400)
        return day + timedelta(seconds=seconds, microseconds=self.rng.randrange(1_000_000))

    def jump(self) -> timedelta:
        """Forward only. Never exactly JOB_LAG: an API instant never meets a job's."""
        r, rng = self.rng.random(), self.rng
        if r < 0.30:
            return timedelta(0)
        if r < 0.60:
            return timedelta(minutes=rng.randint(1, 59))
        if r < 0.78:
            return timedelta(hours=rng.randint(1, 23), minutes=rng.randrange(60))
        if r < 0.93:
            return timedelta(days=rng.randint(1, 9), hours=rng.randrange(24))
        if r < 0.985:
            return timedelta(days=rng.randint(10, 40))
        return timedelta(days=rng.randint(60, 400))  # months: an annual renewal now and then

    def pick_tenants(self) -> list[TenantPlan]:
        profiles = list(PROFILES)
        self.rng.shuffle(profiles)
        chosen = profiles[: self.rng.randint(3, 5)]
        return [
            TenantPlan(
                p, None if p.trial else self.rng.choice(TIERS[p.plan]), self.rng.randint(1, 3)
            )
            for p in chosen
        ]

    def step(self, at: datetime, jump: timedelta) -> Step:
        ops: list[Op] = []
        makers, weights = zip(*self.makers, strict=True)
        for _ in range(self.rng.choice((1, 1, 2, 2, 3, 3, 4, 5))):
            op = self.rng.choices(makers, weights=weights)[0]()
            if op is not None:
                ops.append(op)
        # The scheduler runs mostly after the clock moved far; sometimes late, or twice at once.
        r = self.rng.random() * (0.6 if jump >= timedelta(days=1) else 1)
        schedulers = 0 if r > 0.4 else 1 if r > 0.1 else 2
        self.items += self.new_items
        self.runs += self.new_runs
        self.new_items, self.new_runs, self.racing_refund = [], [], None
        return Step(at, ops, schedulers)

    # -- usage -----------------------------------------------------------------------------

    def results(self) -> int:
        r, rng = self.rng.random(), self.rng
        if r < 0.6:
            return rng.randint(1, 10)
        if r < 0.85:
            return rng.randint(11, 100)
        if r < 0.97:
            return rng.randint(101, 600)
        return rng.randint(1000, 5000)

    def usage(self) -> Usage:
        rng, r = self.rng, self.rng.random()
        table = rng.choice((None, "t1", "t2"))
        if r < 0.55:
            provider, data_type = rng.choice(sorted(PRICES))
            own = rng.random() < 0.15
            return Usage("ENRICHMENT", self.results(), provider, data_type, own, table=table)
        if r < 0.72:
            tokens = (rng.randint(0, 5000), rng.randint(1, 2000))
            own = rng.random() < 0.25
            model = rng.choice(sorted(AI_MODELS))
            return Usage("AI", rng.randint(1, 20), own_key=own, model=model, tokens=tokens)
        kind = rng.choice(PLAIN_KINDS if r < 0.87 else FREE_KINDS)
        return Usage(kind, self.results(), table=table)

    def item(self, ws: int, wb: int | None = None, usage: Usage | None = None) -> Item:
        usage = usage or self.usage()
        runs = [r for r in self.runs if r[0] == ws]
        run = frac = None
        if runs and self.rng.random() < 0.3:
            _, run, wb = self.rng.choice(runs)
            frac = self.rng.random() if self.rng.random() < 0.5 else None
        elif wb is None:
            wb = self.rng.randrange(self.tenants[ws].workbooks)
        item = Item(ws, wb, usage, self.key("c"), run, frac)
        self.new_items.append(item)
        return item

    def ws(self) -> int:
        return self.rng.randrange(len(self.tenants))

    # -- ops ---------------------------------------------------------------------------------

    def keep(self, op: Keyed) -> Keyed:
        self.keyed.append(op)
        return op

    def single(self) -> Op:
        return self.keep(Record(ws := self.ws(), [self.item(ws)], batch=False))

    def burst(self) -> Op:
        """Many concurrent charges on one workspace and workbook: contention on its rows."""
        ws = self.ws()
        wb = self.rng.randrange(self.tenants[ws].workbooks)
        usage = replace(self.usage(), results=self.rng.choice((1, 1, 2, 5, 20)))
        items = [self.item(ws, wb, usage) for _ in range(self.rng.randint(3, 10))]
        return self.keep(Record(ws, items, batch=False))

    def batch(self) -> Op:
        ws = self.ws()
        items = [self.item(ws) for _ in range(self.rng.randint(2, 20))]
        if self.rng.random() < 0.3:  # a key twice in one batch
            for _ in range(self.rng.randint(1, 3)):
                items.insert(self.rng.randrange(len(items) + 1), self.rng.choice(items))
        earlier = [i for i in self.items if i.ws == ws]
        if earlier and self.rng.random() < 0.3:  # a batch retried in part
            items += self.rng.sample(earlier, min(len(earlier), self.rng.randint(1, 5)))
        racing = [i for i in self.new_items if i.ws == ws and i not in items]
        if racing and self.rng.random() < 0.3:  # keys shared with requests sent at once
            items += reversed(self.rng.sample(racing, min(len(racing), self.rng.randint(1, 8))))
        return self.keep(Record(ws, items, batch=True))

    def retry(self) -> Op | None:
        """An op sent again with the same keys: a replay, never a second effect (R13)."""
        return self.rng.choice(self.keyed) if self.keyed else None

    def reuse(self) -> Op | None:
        """An earlier charge's key with another request: IDEMPOTENCY_KEY_REUSED once it took."""
        if not self.items:
            return None
        first = self.rng.choice(self.items)
        if self.rng.random() < 0.3:
            return self.keep(TopUp(first.ws, "10", first.key))
        usage = replace(first.usage, results=first.usage.results + 1)
        item = Item(first.ws, first.wb, usage, first.key, first.run, first.sent_frac)
        return self.keep(Record(first.ws, [item], batch=False))

    def refund(self) -> Op | None:
        if not self.items:
            return None
        item = self.rng.choice(self.items)
        if self.racing_refund is not None and self.rng.random() < 0.4:  # two refunds at once
            item = self.racing_refund
        self.racing_refund = item
        whole = self.rng.random() < 0.4
        results = None if whole else self.rng.randint(1, item.usage.results)
        return self.keep(Refund(item.ws, item.key, results, self.key("r")))

    def top_up(self) -> Op:
        credits = self.rng.choice(("0.5", "10", "100", "250.25", "1000", "5000", "40000"))
        meter = "ACTIONS" if self.rng.random() < 0.05 else "DATA_CREDITS"
        return self.keep(TopUp(self.ws(), credits, self.key("t"), meter))

    def change_plan(self) -> Op:
        plan = self.rng.choices(("free", "launch", "growth", "enterprise"), (1, 3, 3, 2))[0]
        tier = self.rng.choice(TIERS[plan]) if self.rng.random() < 0.8 else None
        interval = self.rng.choice(INTERVALS[plan]) if self.rng.random() < 0.5 else None
        return self.keep(ChangePlan(self.ws(), plan, tier, interval, self.key("p")))

    def cancel(self) -> Op:
        return Cancel(self.ws())

    def withdraw(self) -> Op:
        return Withdraw(self.ws())

    def start_run(self) -> Op:
        ws, rng = self.ws(), self.rng
        wb = rng.randrange(self.tenants[ws].workbooks)
        budget = rng.choice((None, "0", "5", "25", "100", "500", "2500"))
        hold = None
        if rng.random() < 0.6:
            hold = rng.choice(("1", "5", "20", "100", "400")) if budget is None else budget
            if budget is not None and rng.random() < 0.5:
                hold = str(Decimal(budget) / 2)
        run = len(self.runs) + len(self.new_runs)
        self.new_runs.append((ws, run, wb))
        minutes = rng.choice((1, 5, 30, 60, 240, 1440))
        return self.keep(StartRun(ws, run, wb, budget, hold, minutes, self.key("run")))

    def end_run(self) -> Op | None:
        if not self.runs:
            return None
        ws, run, _ = self.rng.choice(self.runs)
        return EndRun(ws, run, self.rng.choice(("stopRun", "finishRun")))

    def set_limit(self) -> Op:
        enterprise = [i for i, t in enumerate(self.tenants) if t.profile.plan == "enterprise"]
        ws = self.rng.choice(enterprise) if enterprise and self.rng.random() < 0.75 else self.ws()
        wb = self.rng.randrange(self.tenants[ws].workbooks)
        limit = self.rng.choice((None, "0", "10", "50", "250", "1000", "5000", "20000"))
        return SetLimit(ws, wb, limit)


# ---------------------------------------------------------------------------------------------
# Talking to Tally the way its clients do
# ---------------------------------------------------------------------------------------------

CHARGE = "__typename ... on Charge { id actions dataCredits } ... on Refusal { code message }"
RECORD = f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE} }} }}"
BATCH = f"""mutation($i: RecordUsageBatchInput!) {{ recordUsageBatch(input: $i) {{
  charged refused results {{ {CHARGE} }} }} }}"""
REFUND = """mutation($i: RefundInput!) { refundCharge(input: $i) { __typename
  ... on Refund { id chargeId results dataCredits } ... on Refusal { code message } } }"""
TOP_UP = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) { __typename
  ... on TopUp { id credits } ... on Refusal { code message } } }"""
PLAN_RESULT = "__typename ... on Workspace { id plan { code } status } ... on Refusal { code }"
CHANGE_PLAN = f"mutation($i: ChangePlanInput!) {{ changePlan(input: $i) {{ {PLAN_RESULT} }} }}"
CANCEL = f"mutation {{ cancelSubscription {{ {PLAN_RESULT} }} }}"
WITHDRAW = "mutation { withdrawPendingChange { id } }"
START_RUN = "mutation($i: StartRunInput!) { startRun(input: $i) { id createdAt } }"
END_RUN = "mutation($id: ID!) {{ {how}(runId: $id) {{ id status held }} }}"
SET_LIMIT = """mutation($w: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $w, limit: $l) {
  __typename ... on Workbook { id spendLimit spent } ... on Refusal { code message } } }"""
CREATE_WORKSPACE = """mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) {
  adminKey workspace { id } } }"""
CREATE_WORKBOOK = "mutation($n: String!) { createWorkbook(name: $n) { id } }"

RULE_CODES = {  # what a charge may be refused with, by what it costs (R3, R25, R23, R13)
    "free": {"RUN_STOPPED", "IDEMPOTENCY_KEY_REUSED"},
    "no credits": {
        "ACTIONS_EXHAUSTED",
        "WORKBOOK_SPEND_LIMIT_REACHED",
        "RUN_STOPPED",
        "IDEMPOTENCY_KEY_REUSED",
    },
    "credits": {
        "ACTIONS_EXHAUSTED",
        "INSUFFICIENT_DATA_CREDITS",
        "WORKBOOK_SPEND_LIMIT_REACHED",
        "RUN_BUDGET_EXCEEDED",
        "RUN_STOPPED",
        "IDEMPOTENCY_KEY_REUSED",
    },
}


class Violation(Exception):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


@dataclass
class Stats:
    seeds: int = 0
    steps: int = 0
    requests: int = 0
    items: int = 0  # usage reports sent, retries included
    effects: Counter[str] = field(default_factory=Counter)  # first effects, by operation
    replays: int = 0  # retries answered with the first result
    refused: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # requests naming what never came to be (a refund of a refused charge)
    renewals: Counter[str] = field(default_factory=Counter)  # renewal steps, by kind
    sweeps: int = 0
    checks: int = 0
    failures: list[Failure] = field(default_factory=list)


class Client:
    """GraphQL over the in-process ASGI app; any 500 or unexpected error code is a finding."""

    def __init__(self, http: httpx.AsyncClient, operator_key: str, stats: Stats) -> None:
        self.http = http
        self.operator_key = operator_key
        self.stats = stats

    async def call(
        self, query: str, variables: dict[str, Any], key: str, allowed: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The data, or None when the request failed with one of the `allowed` codes."""
        self.stats.requests += 1
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        field_ = re.search(r"{\s*(\w+)", query)
        asked = f"{field_.group(1) if field_ else 'query'} {_short(variables)}"
        if response.status_code != 200:
            raise Violation("no HTTP 500", f"HTTP {response.status_code} for {asked}")
        body = response.json()
        errors = body.get("errors")
        if not errors:
            return body["data"]
        codes = {(e.get("extensions") or {}).get("code") for e in errors}
        if codes <= set(allowed):
            return None
        message = errors[0].get("message")
        raise Violation("no unexpected errors", f"{sorted(map(str, codes))} {message!r}: {asked}")


def _short(value: Any, limit: int = 600) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


# ---------------------------------------------------------------------------------------------
# Running a seed: its requests, the answers it may get, and the invariants after each step
# ---------------------------------------------------------------------------------------------


@dataclass
class Tenant:
    plan: TenantPlan
    id: str
    key: str
    workbooks: list[str]


@dataclass(frozen=True)
class RunState:
    id: str
    started: datetime


@dataclass(frozen=True)
class Effect:
    what: str
    fingerprint: str
    result: str | None
    step: int


@dataclass(frozen=True)
class Outcome:
    """A keyed request's answer, judged once the whole step has been answered."""

    what: str  # charge, refund, top_up, plan_change, run
    ws: int
    key: str
    fingerprint: str
    result: str | None = None
    code: str | None = None  # a refusal's; None: it took effect (or replayed one)


def fingerprint(operation: str, payload: dict[str, Any]) -> str:
    body = {k: v for k, v in payload.items() if k != "idempotencyKey"}
    return operation + json.dumps(body, sort_keys=True)


def units(amount: str) -> int:
    return int(Decimal(amount) * UNITS)


class SeedRun:
    def __init__(self, client: Client, checker: Checker, plan: SeedPlan, stats: Stats) -> None:
        self.client = client
        self.checker = checker
        self.plan = plan
        self.stats = stats
        self.tenants: list[Tenant] = []
        self.runs: dict[tuple[int, int], RunState] = {}
        self.effects: dict[tuple[int, str], Effect] = {}
        self.payloads: dict[Item | Refund, dict[str, Any]] = {}  # resolved once, resent as is
        self.limited: set[tuple[int, int]] = set()  # workbooks a limit was ever sent for
        # R11: a limit may be set below what is spent; charges then add nothing until refunds
        # bring it under. Per workbook: (step, spent when its limit was last set).
        self.ceilings: dict[str, tuple[int, int]] = {}
        self.outcomes: list[Outcome] = []
        self.index = 0  # the step being run: 0 sets up, len(steps) + 1 cleans up
        self.now = plan.start

    # -- the seed's life ---------------------------------------------------------------------

    async def run(self, clock: time_machine.Traveller, errors: list[logging.LogRecord]) -> None:
        await self.setup()
        await self.check(errors, None)
        for index, step in enumerate(self.plan.steps, 1):
            self.index, self.now = index, step.at
            clock.move_to(step.at)
            swept = step.at + JOB_LAG if step.schedulers else None
            tasks = [self.send(op) for op in step.ops]
            if swept is not None:
                tasks.append(self.jobs(swept, step.schedulers))
            await gather(tasks)
            self.judge()
            await self.check(errors, swept)
            self.stats.steps += 1
        self.index += 1
        await self.cleanup()
        await self.check(errors, None)

    async def setup(self) -> None:
        async def create(plan: TenantPlan) -> Tenant:
            p = plan.profile
            new: dict[str, Any] = {"name": f"sim {self.plan.seed} {p.name}", "plan": p.plan}
            if p.trial:
                new["trial"] = True
            else:
                new |= {"creditTier": plan.tier, "billingInterval": p.interval}
            data = await self.client.call(CREATE_WORKSPACE, {"i": new}, self.client.operator_key)
            assert data is not None
            made = data["createWorkspace"]
            key = made["adminKey"]
            books = [
                self.client.call(CREATE_WORKBOOK, {"n": f"book {n}"}, key)
                for n in range(plan.workbooks)
            ]
            ids = [d["createWorkbook"]["id"] for d in await asyncio.gather(*books) if d]
            return Tenant(plan, made["workspace"]["id"], key, ids)

        self.tenants = list(await asyncio.gather(*(create(t) for t in self.plan.tenants)))

    async def cleanup(self) -> None:
        """Finish every run, so no hold outlives its seed (the hold-expiry job is global)."""
        await gather([self.end_run(EndRun(ws, run, "finishRun")) for ws, run in self.runs])

    async def jobs(self, now: datetime, schedulers: int) -> None:
        """What `tally jobs run all --now` does, each renewal sweep scoped to this seed."""
        ids = [uuid.UUID(t.id) for t in self.tenants]

        async def scheduler() -> None:
            for name, job in JOBS.items():
                if job.scope is None:
                    await run_job(name, now)
                    continue
                result = await sweep(now, replace(job.scope, workspace_ids=ids))
                if result.failed:
                    raise Violation("jobs never fail", f"{name} failed for {result.failed}")
                self.stats.renewals.update(result.steps)

        self.stats.sweeps += schedulers
        await gather([scheduler() for _ in range(schedulers)])

    # -- requests ----------------------------------------------------------------------------

    async def send(self, op: Op) -> None:
        match op:
            case Record():
                await self.record(op)
            case Refund():
                await self.refund(op)
            case TopUp():
                await self.top_up(op)
            case ChangePlan():
                await self.change_plan(op)
            case Cancel() | Withdraw():
                await self.cancel_or_withdraw(op)
            case StartRun():
                await self.start_run(op)
            case EndRun():
                await self.end_run(op)
            case SetLimit():
                await self.set_limit(op)

    def key_of(self, ws: int) -> str:
        return self.tenants[ws].key

    def label(self, ws: int) -> str:
        return f"ws{ws} ({self.plan.tenants[ws].profile.name})"

    def payload(self, item: Item) -> dict[str, Any] | None:
        """The request an item stands for, fixed the first time it is sent (a retry resends it
        unchanged); None while its run has not started (it was refused, or not yet sent)."""
        if item in self.payloads:
            return self.payloads[item]
        u, tenant = item.usage, self.tenants[item.ws]
        body: dict[str, Any] = {
            "workbookId": tenant.workbooks[item.wb],
            "kind": u.kind,
            "results": u.results,
            "idempotencyKey": item.key,
            "ownApiKey": u.own_key,
        }
        for name, value in (("provider", u.provider), ("dataType", u.data_type)):
            if value is not None:
                body[name] = value
        if u.table is not None:
            body["tableId"] = u.table
        if u.model is not None and u.tokens is not None:
            body |= {"model": u.model, "inputTokens": u.tokens[0], "outputTokens": u.tokens[1]}
        if item.run is not None:
            run = self.runs.get((item.ws, item.run))
            if run is None:
                return None
            body["runId"] = run.id
            if item.sent_frac is not None:  # R23: an aware instant between its start and now
                body["sentAt"] = (
                    run.started + (self.now - run.started) * item.sent_frac
                ).isoformat()
        self.payloads[item] = body
        return body

    async def record(self, op: Record) -> None:
        sent = [(item, body) for item in op.items if (body := self.payload(item)) is not None]
        self.stats.skipped += len(op.items) - len(sent)
        self.stats.items += len(sent)
        if not sent:
            return
        key = self.key_of(op.ws)
        if op.batch:
            data = await self.client.call(BATCH, {"i": {"items": [b for _, b in sent]}}, key)
            assert data is not None
            answers = data["recordUsageBatch"]["results"]
            charged = sum(a["__typename"] == "Charge" for a in answers)
            if len(answers) != len(sent) or charged != data["recordUsageBatch"]["charged"]:
                raise Violation("a batch answers each item", f"{len(sent)} items: {_short(data)}")
        else:
            calls = [self.client.call(RECORD, {"i": b}, key) for _, b in sent]
            answers = [d["recordUsage"] for d in await gather(calls) if d]
        for (item, body), answer in zip(sent, answers, strict=True):
            self.charge_answer(item, body, answer)

    def charge_answer(self, item: Item, body: dict[str, Any], answer: dict[str, Any]) -> None:
        print_ = fingerprint("recordUsage", body)
        if answer["__typename"] == "Refusal":
            self.charge_refused(item, body, answer["code"])
            self.outcomes.append(Outcome("charge", item.ws, item.key, print_, code=answer["code"]))
            return
        actions, credits = item.usage.cost
        if (answer["actions"], units(answer["dataCredits"])) != (actions, credits):
            raise Violation(
                "a charge costs the catalog price",
                f"{_short(body)} cost {answer['actions']} Actions and {answer['dataCredits']}"
                f" credits; the catalog says {actions} and {Decimal(credits) / UNITS}",
            )
        self.outcomes.append(Outcome("charge", item.ws, item.key, print_, result=answer["id"]))

    def charge_refused(self, item: Item, body: dict[str, Any], code: str) -> None:
        actions, credits = item.usage.cost
        allowed = set(RULE_CODES["free" if not actions else "credits" if credits else "no credits"])
        if item.run is None:
            allowed -= {"RUN_STOPPED", "RUN_BUDGET_EXCEEDED"}
        if (item.ws, item.wb) not in self.limited:
            allowed.discard("WORKBOOK_SPEND_LIMIT_REACHED")
        if code not in allowed:
            raise Violation(
                "a charge is refused only by a rule that applies", f"{code}: {_short(body)}"
            )

    async def refund(self, op: Refund) -> None:
        body = self.payloads.get(op)
        if body is None:
            first = self.effects.get((op.ws, op.charge_key))
            if first is None or first.what != "charge":
                self.stats.skipped += 1
                return
            body = {"chargeId": first.result, "idempotencyKey": op.key, "reason": "invalid data"}
            if op.results is not None:
                body["results"] = op.results
            self.payloads[op] = body
        data = await self.client.call(REFUND, {"i": body}, self.key_of(op.ws))
        assert data is not None
        answer, print_ = data["refundCharge"], fingerprint("refundCharge", body)
        if answer["__typename"] == "Refusal":
            self.expect_code(answer["code"], {"ALREADY_REFUNDED"}, body)
            self.outcomes.append(Outcome("refund", op.ws, op.key, print_, code=answer["code"]))
            return
        asked = body.get("results")  # None: all that remained
        if answer["chargeId"] != body["chargeId"] or asked not in (None, answer["results"]):
            raise Violation("a refund is of what was asked", f"{_short(answer)} for {_short(body)}")
        self.outcomes.append(Outcome("refund", op.ws, op.key, print_, result=answer["id"]))

    async def top_up(self, op: TopUp) -> None:
        body = {"credits": op.credits, "meter": op.meter, "idempotencyKey": op.key}
        data = await self.client.call(TOP_UP, {"i": body}, self.key_of(op.ws))
        assert data is not None
        answer, print_ = data["purchaseTopUp"], fingerprint("purchaseTopUp", body)
        if op.meter == "ACTIONS":  # R9, R19: refused before anything, whatever the key
            self.expect_code(answer.get("code"), {"ACTIONS_NOT_PURCHASABLE"}, body)
            self.stats.refused[answer["code"]] += 1
            return
        if answer["__typename"] == "Refusal":
            codes = {"PLAN_FEATURE_UNAVAILABLE", "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"}
            self.expect_code(answer["code"], codes, body)
            self.outcomes.append(Outcome("top_up", op.ws, op.key, print_, code=answer["code"]))
            return
        if units(answer["credits"]) != units(op.credits):
            raise Violation("a top-up is of what was asked", f"{_short(answer)} for {_short(body)}")
        self.outcomes.append(Outcome("top_up", op.ws, op.key, print_, result=answer["id"]))

    async def change_plan(self, op: ChangePlan) -> None:
        body: dict[str, Any] = {"plan": op.plan, "idempotencyKey": op.key}
        if op.tier is not None:
            body["creditTier"] = op.tier
        if op.interval is not None:
            body["billingInterval"] = op.interval
        data = await self.client.call(CHANGE_PLAN, {"i": body}, self.key_of(op.ws))
        assert data is not None
        answer, print_ = data["changePlan"], fingerprint("changePlan", body)
        code = answer.get("code")
        if code is not None:
            self.expect_code(code, set(), body)
        self.outcomes.append(Outcome("plan_change", op.ws, op.key, print_, code=code))

    async def cancel_or_withdraw(self, op: Cancel | Withdraw) -> None:
        query = CANCEL if isinstance(op, Cancel) else WITHDRAW
        data = await self.client.call(query, {}, self.key_of(op.ws))
        assert data is not None
        answer = next(iter(data.values()))
        if answer.get("__typename") == "Refusal":
            raise Violation("cancel and withdraw are never refused", _short(answer))

    async def start_run(self, op: StartRun) -> None:
        tenant = self.tenants[op.ws]
        body: dict[str, Any] = {
            "workbookId": tenant.workbooks[op.wb],
            "idempotencyKey": op.key,
            "holdMinutes": op.minutes,
        }
        for name, value in (("budget", op.budget), ("hold", op.hold)):
            if value is not None:
                body[name] = value
        print_ = fingerprint("startRun", body)
        # A hold larger than the available credits is startRun's one refusal (decisions.md).
        data = await self.client.call(
            START_RUN, {"i": body}, tenant.key, allowed=("INSUFFICIENT_DATA_CREDITS",)
        )
        if data is None:
            self.outcomes.append(
                Outcome("run", op.ws, op.key, print_, code="INSUFFICIENT_DATA_CREDITS")
            )
            return
        run = data["startRun"]
        started = datetime.fromisoformat(run["createdAt"])
        self.runs.setdefault((op.ws, op.run), RunState(run["id"], started))
        self.outcomes.append(Outcome("run", op.ws, op.key, print_, result=run["id"]))

    async def end_run(self, op: EndRun) -> None:
        run = self.runs.get((op.ws, op.run))
        if run is None:
            self.stats.skipped += 1
            return
        query = END_RUN.format(how=op.how)
        data = await self.client.call(query, {"id": run.id}, self.key_of(op.ws))
        assert data is not None
        ended = data[op.how]
        if ended["status"] == "RUNNING" or Decimal(ended["held"]) != 0:
            raise Violation("an ended run holds nothing", f"{op.how}: {_short(ended)}")

    async def set_limit(self, op: SetLimit) -> None:
        workbook = self.tenants[op.ws].workbooks[op.wb]
        variables = {"w": workbook, "l": op.limit}
        if op.limit is not None:  # from now on: charges sent at once may meet it first
            self.limited.add((op.ws, op.wb))
        data = await self.client.call(SET_LIMIT, variables, self.key_of(op.ws))
        assert data is not None
        answer = data["setWorkbookSpendLimit"]
        if answer["__typename"] == "Refusal":
            self.expect_code(answer["code"], {"PLAN_FEATURE_UNAVAILABLE"}, variables)
            self.stats.refused[answer["code"]] += 1
        else:
            step, before = self.ceilings.get(workbook, (self.index, 0))
            spent = units(answer["spent"])  # read under the workbook's lock
            self.ceilings[workbook] = (
                self.index,
                max(before, spent) if step == self.index else spent,
            )

    def expect_code(self, code: str | None, allowed: set[str], body: dict[str, Any]) -> None:
        if code not in allowed | {"IDEMPOTENCY_KEY_REUSED"}:
            raise Violation("refused only by a rule that applies", f"{code}: {_short(body)}")

    # -- judging the step's keyed answers (R13) ----------------------------------------------

    def judge(self) -> None:
        """Effects first: a refusal as IDEMPOTENCY_KEY_REUSED needs the effect it lost to."""
        for outcome in sorted(self.outcomes, key=lambda o: o.code is not None):
            if outcome.code is None:
                self.took_effect(outcome)
            else:
                self.refused(outcome)
        self.outcomes.clear()

    def took_effect(self, o: Outcome) -> None:
        first = self.effects.get((o.ws, o.key))
        if first is None:
            self.effects[(o.ws, o.key)] = Effect(o.what, o.fingerprint, o.result, self.index)
            self.stats.effects[o.what] += 1
            return
        if first.fingerprint != o.fingerprint:
            raise Violation(
                "one effect per idempotency key",
                f"{self.label(o.ws)} key {o.key!r} took two requests: {first.fingerprint} at step"
                f" {first.step}, then {o.fingerprint}",
            )
        if first.result != o.result:
            raise Violation(
                "one effect per idempotency key",
                f"{self.label(o.ws)} {o.what} key {o.key!r} answered {o.result}; its first"
                f" answer (step {first.step}) was {first.result}",
            )
        self.stats.replays += 1

    def refused(self, o: Outcome) -> None:
        first = self.effects.get((o.ws, o.key))
        if o.code == "IDEMPOTENCY_KEY_REUSED":
            if first is None or first.fingerprint == o.fingerprint:
                took = "no request" if first is None else "this very request"
                raise Violation(
                    "one effect per idempotency key",
                    f"{self.label(o.ws)} key {o.key!r} refused as reused, but {took} took it",
                )
        elif first is not None and first.fingerprint == o.fingerprint and first.step < self.index:
            raise Violation(
                "a retry returns the first result",
                f"{self.label(o.ws)} {o.what} key {o.key!r} took effect at step {first.step};"
                f" its retry was refused with {o.code}",
            )
        self.stats.refused[o.code or ""] += 1

    # -- invariants --------------------------------------------------------------------------

    async def check(self, errors: list[logging.LogRecord], swept: datetime | None) -> None:
        if errors:
            record = errors[0]
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f": {record.exc_info[1]!r}"
            raise Violation("nothing is logged as an error", f"{record.name}: {text}")
        answered: dict[str, Counter[str]] = {t.id: Counter() for t in self.tenants}
        for (ws, _), effect in self.effects.items():
            answered[self.tenants[ws].id][effect.what] += 1
        books = [b for t in self.tenants for b in t.workbooks]
        ceilings = {book: spent for book, (_, spent) in self.ceilings.items()}
        args = (list(answered), books, swept, json.dumps(answered), json.dumps(ceilings))
        for row in await self.checker.rows(*args):
            self.stats.checks += int(row["checked"])
            if row["failed"]:
                raise Violation(row["inv"], self.named("; ".join(row["details"])))

    def named(self, text: str) -> str:
        """Workspace ids as the seed knows them: `ws2 (trial)`."""
        for n, tenant in enumerate(self.tenants):
            text = text.replace(tenant.id, self.label(n))
        return text


async def gather(tasks: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
    """All at once; every task ends before the first failure is raised (none lingers)."""
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


@dataclass(frozen=True)
class Check:
    """One invariant: `ok` must hold for every row of `rows`; `detail` names a row that
    breaks it (evaluated only for those, through the aggregate's FILTER)."""

    name: str
    rows: str
    ok: str
    detail: str

    def sql(self) -> str:
        broken = f"FILTER (WHERE ({self.ok}) IS NOT TRUE)"
        name = self.name.replace("'", "''")
        return (
            f"SELECT '{name}' AS inv, count(*) AS checked, count(*) {broken} AS failed,"
            f" (array_agg({self.detail}) {broken})[1:3] AS details FROM {self.rows}"
        )


# The seed's rows: its workspaces ($1) and workbooks ($2). $3 is the jobs' clock when they ran
# this step; $4 what the simulation was answered, {workspace id: {what: effects}}; $5 below.
SCOPE = """
WITH ws AS (SELECT * FROM workspace WHERE id = ANY($1::uuid[])),
led AS (SELECT * FROM ledger_entry WHERE workspace_id = ANY($1::uuid[])),
ch AS (SELECT * FROM charge WHERE workspace_id = ANY($1::uuid[])),
rn AS (SELECT * FROM run WHERE workspace_id = ANY($1::uuid[])),
wb AS (SELECT * FROM workbook WHERE id = ANY($2::uuid[])),
ren AS (SELECT * FROM renewal WHERE workspace_id = ANY($1::uuid[])),
bc AS (SELECT * FROM billing_charge WHERE workspace_id = ANY($1::uuid[])),
keys AS (SELECT * FROM idempotency_record WHERE workspace_id = ANY($1::uuid[])),
rf AS (SELECT r.* FROM keys k JOIN refund r ON r.id = k.result_id::uuid
        WHERE k.operation = 'refundCharge'),
sums AS (SELECT workspace_id, meter, SUM(amount) AS total FROM led GROUP BY 1, 2)
"""

CHECKS = (
    # R24, R12: the balances shown always equal the sum of the ledger, and never go below 0.
    Check(
        "balance = ledger sum",
        """ws CROSS JOIN LATERAL (VALUES ('DATA_CREDITS', ws.credit_balance),
                                        ('ACTIONS', ws.actions_capacity - ws.actions_used),
                                        ('HELD_CREDITS', ws.credits_held)) AS s (meter, stored)
           LEFT JOIN sums x ON x.workspace_id = ws.id AND x.meter = s.meter""",
        "s.stored = COALESCE(x.total, 0)",
        "format('%s %s: stored %s, ledger sum %s', ws.id, s.meter, s.stored, x.total)",
    ),
    Check(
        "balance >= 0",
        "ws",
        "ws.credit_balance >= 0",
        "format('%s: balance %s', ws.id, ws.credit_balance)",
    ),
    Check(
        "available >= 0",
        "ws",
        "ws.credits_held >= 0 AND ws.credit_balance - ws.credits_held >= 0",
        "format('%s: balance %s, held %s', ws.id, ws.credit_balance, ws.credits_held)",
    ),
    Check(
        "actions used within capacity",
        "ws",
        "ws.actions_used BETWEEN 0 AND ws.actions_capacity",
        "format('%s: %s of %s', ws.id, ws.actions_used, ws.actions_capacity)",
    ),
    Check(
        "each ledger balance_after follows the one before",
        """(SELECT l.*, lag(l.balance_after) OVER (PARTITION BY l.workspace_id, l.meter
                                                  ORDER BY l.id) AS prev FROM led l) e""",
        "e.balance_after = COALESCE(e.prev, 0) + e.amount",
        """format('%s entry %s %s %s %s: balance_after %s after %s', e.workspace_id, e.id,
                  e.entry_type, e.meter, e.amount, e.balance_after, e.prev)""",
    ),
    # R11: a workbook limit is never passed, and `spent` is its charges since the limit was set.
    Check(
        # ($5: what was spent when a limit was set below it; charges never add to that.)
        "workbook spend <= limit",
        "wb",
        """wb.spent >= 0 AND (wb.spend_limit IS NULL OR wb.spent
             <= GREATEST(wb.spend_limit, COALESCE(($5::jsonb ->> wb.id::text)::bigint, 0)))""",
        """format('workbook %s: spent %s of %s (%s when it was set)', wb.id, wb.spent,
                  wb.spend_limit, $5::jsonb ->> wb.id::text)""",
    ),
    Check(
        "workbook spend = its charges under the limit",
        """wb LEFT JOIN (SELECT workbook_id, spend_epoch, SUM(credits - refunded_credits) AS net
                         FROM ch GROUP BY 1, 2) c
             ON c.workbook_id = wb.id AND c.spend_epoch = wb.spend_epoch""",
        "wb.spent = CASE WHEN wb.spend_limit IS NULL THEN 0 ELSE COALESCE(c.net, 0) END",
        """format('workbook %s: spent %s, charges of epoch %s net %s', wb.id, wb.spent,
                  wb.spend_epoch, c.net)""",
    ),
    # R6: a run's spend never passes its budget; its hold is its own ledger.
    Check(
        "run spend <= budget",
        "rn",
        "rn.spent >= 0 AND (rn.budget IS NULL OR rn.spent <= rn.budget)",
        "format('run %s: spent %s of %s', rn.id, rn.spent, rn.budget)",
    ),
    Check(
        "run hold >= 0, and 0 once ended",
        "rn",
        "rn.hold BETWEEN 0 AND rn.hold_placed AND (rn.status = 'RUNNING' OR rn.hold = 0)",
        "format('run %s %s: hold %s of %s', rn.id, rn.status, rn.hold, rn.hold_placed)",
    ),
    Check(
        "run hold = its ledger",
        """rn LEFT JOIN (SELECT run_id, SUM(amount) AS total FROM led
                         WHERE meter = 'HELD_CREDITS' GROUP BY 1) h ON h.run_id = rn.id""",
        "rn.hold = COALESCE(h.total, 0)",
        "format('run %s: hold %s, ledger %s', rn.id, rn.hold, h.total)",
    ),
    Check(
        "run spend = its charges",
        """rn LEFT JOIN (SELECT run_id, SUM(credits - refunded_credits) AS net, count(*) AS n,
                                SUM(actions) AS actions, SUM(results) AS results
                           FROM ch WHERE run_id IS NOT NULL GROUP BY 1) c ON c.run_id = rn.id""",
        """rn.spent = COALESCE(c.net, 0) AND rn.charge_count = COALESCE(c.n, 0)
           AND rn.actions = COALESCE(c.actions, 0) AND rn.results = COALESCE(c.results, 0)""",
        """format('run %s: spent %s in %s charges (%s Actions, %s results); charges: %s %s %s %s',
                  rn.id, rn.spent, rn.charge_count, rn.actions, rn.results, c.net, c.n,
                  c.actions, c.results)""",
    ),
    # R22, R24: a refund returns at most what is left of its charge, once, in the ledger.
    Check(
        "refunds stay within their charge",
        """ch LEFT JOIN (SELECT charge_id, SUM(results) AS results, SUM(credits) AS credits
                           FROM rf GROUP BY 1) r ON r.charge_id = ch.id""",
        """ch.refunded_results BETWEEN 0 AND ch.results
           AND ch.refunded_credits BETWEEN 0 AND ch.credits
           AND ch.refunded_results = COALESCE(r.results, 0)
           AND ch.refunded_credits = COALESCE(r.credits, 0)""",
        """format('charge %s: %s of %s results, %s of %s units refunded; refunds: %s, %s',
                  ch.id, ch.refunded_results, ch.results, ch.refunded_credits, ch.credits,
                  r.results, r.credits)""",
    ),
    Check(
        "a refund returns its credits once",
        """rf LEFT JOIN (SELECT refund_id, SUM(amount) AS total, count(*) AS n FROM led
                         WHERE entry_type = 'REFUND' GROUP BY 1) x ON x.refund_id = rf.id""",
        "COALESCE(x.total, 0) = rf.credits AND COALESCE(x.n, 0) <= 1",
        "format('refund %s of %s units: ledger %s in %s rows', rf.id, rf.credits, x.total, x.n)",
    ),
    # R10, R13, R24: a charge takes both meters or neither, once.
    Check(
        "a charge moves each meter once",
        """ch LEFT JOIN (
             SELECT charge_id, max(n) AS rows_max,
                    SUM(total) FILTER (WHERE meter = 'ACTIONS' AND entry_type = 'CHARGE') AS a,
                    SUM(total) FILTER (WHERE meter = 'DATA_CREDITS' AND entry_type = 'CHARGE')
                      AS d,
                    SUM(total) FILTER (WHERE entry_type = 'SETTLE') AS settled
               FROM (SELECT charge_id, meter, entry_type, count(*) AS n, SUM(amount) AS total
                       FROM led WHERE entry_type IN ('CHARGE', 'SETTLE') GROUP BY 1, 2, 3) m
              GROUP BY 1) x ON x.charge_id = ch.id""",
        """COALESCE(-x.a, 0) = ch.actions AND COALESCE(-x.d, 0) = ch.credits
           AND COALESCE(x.rows_max, 0) <= 1 AND COALESCE(-x.settled, 0) BETWEEN 0 AND ch.credits""",
        """format('charge %s (%s Actions, %s units): ledger %s Actions, %s units, %s settled',
                  ch.id, ch.actions, ch.credits, x.a, x.d, x.settled)""",
    ),
    # R24: usage history (the daily rollups the charge and refund transactions keep) adds up
    # to the charges, net of refunds.
    Check(
        "usage history = the charges",
        """(SELECT workspace_id, workbook_id, kind, SUM(actions) AS a, SUM(credits) AS d,
                   SUM(results) AS n
              FROM usage_daily WHERE workspace_id = ANY($1::uuid[]) GROUP BY 1, 2, 3) u
           FULL JOIN (SELECT workspace_id, workbook_id, kind, SUM(actions) AS a,
                             SUM(credits - refunded_credits) AS d, SUM(results) AS n
                        FROM ch GROUP BY 1, 2, 3) c USING (workspace_id, workbook_id, kind)""",
        """COALESCE(u.a, 0) = COALESCE(c.a, 0) AND COALESCE(u.d, 0) = COALESCE(c.d, 0)
           AND COALESCE(u.n, 0) = COALESCE(c.n, 0)""",
        """format('%s workbook %s %s: history %s Actions, %s units, %s results; charges %s, %s, %s',
                  workspace_id, workbook_id, kind, u.a, u.d, u.n, c.a, c.d, c.n)""",
    ),
    # R13: one effect per idempotency key, and the key's record names it.
    Check(
        "one charge per idempotency key",
        """(SELECT ch.*, count(*) OVER (PARTITION BY ch.workspace_id, ch.idempotency_key) AS n
              FROM ch) c
           LEFT JOIN keys k ON k.workspace_id = c.workspace_id AND k.key = c.idempotency_key""",
        "c.n = 1 AND k.result_id = c.id::text",
        """format('%s key %s: %s charges, the key names %s', c.workspace_id, c.idempotency_key,
                  c.n, k.result_id)""",
    ),
    Check(
        "one run per idempotency key",
        "(SELECT workspace_id, idempotency_key, count(*) AS n FROM rn GROUP BY 1, 2) g",
        "g.n = 1",
        "format('%s key %s: %s runs', g.workspace_id, g.idempotency_key, g.n)",
    ),
    Check(
        "one top-up per idempotency key",
        """(SELECT workspace_id, idempotency_key, count(*) AS n FROM bc
             WHERE idempotency_key IS NOT NULL GROUP BY 1, 2) g""",
        "g.n = 1",
        "format('%s key %s: %s billing charges', g.workspace_id, g.idempotency_key, g.n)",
    ),
    Check(
        "each key names its one effect",
        """keys k LEFT JOIN ch ON ch.id = k.result_id::uuid
                  LEFT JOIN rf ON rf.id = k.result_id::uuid
                  LEFT JOIN bc ON bc.id = k.result_id::uuid
                  LEFT JOIN rn ON rn.id = k.result_id::uuid""",
        """CASE k.operation
             WHEN 'recordUsage' THEN ch.idempotency_key = k.key
             WHEN 'refundCharge' THEN rf.id IS NOT NULL
             WHEN 'purchaseTopUp' THEN bc.idempotency_key = k.key
             WHEN 'startRun' THEN rn.idempotency_key = k.key
             ELSE k.operation = 'changePlan' END""",
        "format('%s key %s: no %s %s', k.workspace_id, k.key, k.operation, k.result_id)",
    ),
    Check(
        "a refused request leaves no trace",
        """ws CROSS JOIN LATERAL (VALUES
             ('charge', (SELECT count(*) FROM ch WHERE ch.workspace_id = ws.id)),
             ('refund', (SELECT count(*) FROM keys k WHERE k.workspace_id = ws.id
                           AND k.operation = 'refundCharge')),
             ('top_up', (SELECT count(*) FROM bc WHERE bc.workspace_id = ws.id
                           AND bc.kind = 'TOP_UP')),
             ('plan_change', (SELECT count(*) FROM keys k WHERE k.workspace_id = ws.id
                                AND k.operation = 'changePlan')),
             ('run', (SELECT count(*) FROM rn WHERE rn.workspace_id = ws.id))) AS t (what, n)""",
        "t.n = COALESCE(($4::jsonb -> ws.id::text ->> t.what)::bigint, 0)",
        """format('%s: %s %s effects stored, %s answered as taking effect', ws.id, t.n, t.what,
                  COALESCE($4::jsonb -> ws.id::text ->> t.what, '0'))""",
    ),
    # R19: each top-up is one ledger row, and leaves the balance within the cap.
    Check(
        "each top-up is one ledger row",
        "ws",
        """(SELECT count(*) FROM led WHERE led.workspace_id = ws.id AND entry_type = 'TOP_UP')
             = (SELECT count(*) FROM bc WHERE bc.workspace_id = ws.id AND bc.kind = 'TOP_UP')""",
        "format('%s: top-up ledger rows and billing charges differ', ws.id)",
    ),
    Check(
        "a top-up stays within the cap",
        "led l WHERE l.entry_type = 'TOP_UP'",
        """EXISTS (SELECT 1 FROM bc WHERE bc.workspace_id = l.workspace_id AND bc.kind = 'TOP_UP'
                     AND bc.created_at = l.created_at AND bc.credits = l.amount
                     AND l.balance_after <= 2 * bc.credit_tier::bigint * 10000
                          * CASE bc.billing_interval WHEN 'ANNUAL' THEN 12 ELSE 1 END)""",
        "format('%s: a top-up of %s units left %s', l.workspace_id, l.amount, l.balance_after)",
    ),
    # R14: one renewal per period, a month apart, each granting once, none left due.
    Check(
        "one renewal per period",
        """(SELECT workspace_id, period_start, count(*) AS n, max(processed_at) AS processed
              FROM ren GROUP BY 1, 2) g""",
        "g.n = 1 AND g.period_start <= g.processed",
        "format('%s: %s renewals of %s, at %s', g.workspace_id, g.n, g.period_start, g.processed)",
    ),
    Check(
        # A boundary is a month after the last (28 to 31 days), or a trial's 14 days after its
        # start; longer only when the workspace left free in between (R28: a new anchor).
        "renewals a month apart",
        """(SELECT p.*, p.period_start - p.prev AS gap
              FROM (SELECT ren.*, COALESCE(lag(ren.period_start) OVER (PARTITION BY
                             ren.workspace_id ORDER BY ren.period_start), ws.created_at) AS prev
                      FROM ren JOIN ws ON ws.id = ren.workspace_id) p) r""",
        """(r.gap >= interval '28 days' OR (r.kind = 'TRIAL_END' AND r.gap = interval '14 days'))
           AND (r.gap <= interval '31 days' OR r.kind = 'TRIAL_END' OR EXISTS (
                  SELECT 1 FROM bc WHERE bc.workspace_id = r.workspace_id
                     AND bc.kind = 'PLAN_FEE' AND bc.period_start = bc.created_at
                     AND bc.created_at > r.prev AND bc.created_at < r.period_start))""",
        """format('%s: %s renewal of %s, %s after %s', r.workspace_id, r.kind, r.period_start,
                  r.gap, r.prev)""",
    ),
    Check(
        # Jobs run JOB_LAG after the API's instants, so Actions grants at a renewal's instant
        # are that renewal's.
        "each renewal grants Actions once",
        """(SELECT workspace_id, processed_at, count(*) AS n FROM ren GROUP BY 1, 2) r
           LEFT JOIN (SELECT workspace_id, created_at, count(*) AS n FROM led
                       WHERE meter = 'ACTIONS' AND entry_type = 'GRANT' GROUP BY 1, 2) g
             ON g.workspace_id = r.workspace_id AND g.created_at = r.processed_at""",
        "r.n = COALESCE(g.n, 0)",
        """format('%s: %s renewals at %s, %s Actions grants', r.workspace_id, r.n,
                  r.processed_at, g.n)""",
    ),
    Check(
        "renewed up to the jobs' clock",
        "ws WHERE $3::timestamptz IS NOT NULL",
        "ws.actions_period_end > $3::timestamptz",
        "format('%s: due since %s, swept at %s', ws.id, ws.actions_period_end, $3::timestamptz)",
    ),
)
INVARIANTS = SCOPE + "\nUNION ALL\n".join(c.sql() for c in CHECKS)


# ---------------------------------------------------------------------------------------------
# Seeds, the database and the command line
# ---------------------------------------------------------------------------------------------


@dataclass
class Failure:
    seed: int
    step: int
    invariant: str
    detail: str
    plan: SeedPlan

    def report(self) -> str:
        steps = len(self.plan.steps)
        where = "setup" if self.step == 0 else "cleanup" if self.step > steps else "step"
        lines = [
            f"seed={self.seed} step={self.step} ({where}) broke {self.invariant!r}",
            f"  {self.detail}",
            f"  plan sha256 {self.plan.digest[:16]}, {steps} steps, clock from"
            f" {self.plan.start.isoformat()}",
        ]
        if 1 <= self.step <= steps:
            step = self.plan.steps[self.step - 1]
            lines.append(f"  step {self.step} at {step.at.isoformat()}, jobs x{step.schedulers}:")
            lines += [f"    {describe(op)}" for op in step.ops]
        lines.append(f"  replay: .venv/bin/python -m bench.sim --seed {self.seed} --steps {steps}")
        return "\n".join(lines)


def describe(op: Op) -> str:
    if isinstance(op, Record):
        kinds = Counter(i.usage.kind for i in op.items)
        runs = sum(i.run is not None for i in op.items)
        n = len(op.items)
        how = "a batch of" if op.batch else "recordUsage x" if n > 1 else "recordUsage of"
        return f"{how} {n} on ws{op.ws} ({dict(kinds)}, {runs} in runs)"
    return _short(op, 200)


class ErrorLog(logging.Handler):
    """Collects what the app logs as an error (a failed renewal, an internal error)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Checker:
    """Reads the invariants on a connection of its own, outside the app's pool, as one
    prepared statement with a generic plan: planned once a seed, not at every step."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.statement: Any = None

    @classmethod
    async def connect(cls, database_url: str) -> Checker:
        conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        return cls(conn)

    async def prepare(self) -> None:
        """Plan again for the tables as they are now: a plan made while they were nearly
        empty scans them whole once they have grown (the more so without autovacuum)."""
        self.statement = await self.conn.prepare(INVARIANTS)

    async def analyze(self) -> None:
        """What autovacuum would do; it may be off (it is on the test server), and without
        statistics every plan the app caches is one for empty tables."""
        await self.conn.execute("ANALYZE")

    async def rows(self, *args: Any) -> list[Any]:
        return await self.statement.fetch(*args)

    async def close(self) -> None:
        await self.conn.close()


class Simulation:
    """Runs seeds against a Tally app (`http`) whose database `checker` reads."""

    def __init__(self, http: httpx.AsyncClient, operator_key: str, checker: Checker) -> None:
        self.stats = Stats()
        self.client = Client(http, operator_key, self.stats)
        self.checker = checker

    async def run_seed(self, seed: int, steps: int = DEFAULT_STEPS) -> Failure | None:
        plan = Planner(seed).plan(steps)
        run = SeedRun(self.client, self.checker, plan, self.stats)
        await self.checker.prepare()
        errors = ErrorLog()
        root = logging.getLogger()
        root.addHandler(errors)
        try:
            with time_machine.travel(plan.start, tick=False) as clock:
                await run.run(clock, errors.records)
        except Violation as v:
            failure = Failure(seed, run.index, v.invariant, v.detail, plan)
            self.stats.failures.append(failure)
            return failure
        finally:
            root.removeHandler(errors)
        self.stats.seeds += 1
        return None


async def create_database() -> tuple[str, str]:
    name = f"tally_sim_{uuid.uuid4().hex[:10]}"
    url = f"{SERVER}/{name}"
    await open_database(url)  # creates it, then migrates
    await seed_catalog(load_catalog())
    return name, url


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(f"{SERVER.replace('postgres://', 'postgresql://')}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def summary(stats: Stats, seeds: Sequence[int], steps: int, seconds: float) -> str:
    refused = ", ".join(f"{code} {n:,}" for code, n in stats.refused.most_common())
    renewals = ", ".join(f"{kind} {n:,}" for kind, n in stats.renewals.most_common())
    e, run = stats.effects, stats.seeds + len(stats.failures)
    per_seed = seconds / max(1, run)
    return "\n".join(
        [
            f"seeds run          {run:,} ({seeds[0]} to {seeds[0] + run - 1}), {steps} steps each",
            f"steps              {stats.steps:,} (each followed by the invariant checks)",
            f"requests sent      {stats.requests:,}",
            f"usage reports      {stats.items:,} sent, retries and reused keys included",
            f"charges            {e['charge']:,} (first effects of a key)",
            f"replays            {stats.replays:,} (retried keys answered with the first result)",
            f"refusals           {sum(stats.refused.values()):,}: {refused or 'none'}",
            f"other effects      refunds {e['refund']:,}, top-ups {e['top_up']:,},"
            f" plan changes {e['plan_change']:,}, runs {e['run']:,}",
            f"not sent           {stats.skipped:,} (naming a charge or run that never was)",
            f"renewal steps      {stats.renewals.total():,} ({renewals or 'none'})"
            f" in {stats.sweeps:,} scheduler runs",
            f"invariant checks   {stats.checks:,}",
            f"failures           {len(stats.failures)}"
            + "".join(f" seed={f.seed}" for f in stats.failures[:20]),
            f"wall time          {seconds:,.1f} s ({per_seed:.2f} s a seed)",
        ]
    )


async def simulate(seeds: Sequence[int], steps: int, keep_going: bool) -> int:
    name, url = await create_database()
    print(f"bench.sim: {len(seeds)} seeds, {steps} steps each, on PostgreSQL database {name}")
    try:
        stats, seconds = await run_seeds(url, seeds, steps, keep_going)
    finally:
        await close_database()
        await drop_database(name)
    print(summary(stats, seeds, steps, seconds))
    return 1 if stats.failures else 0


async def run_seeds(
    url: str, seeds: Sequence[int], steps: int, keep_going: bool
) -> tuple[Stats, float]:
    settings = Settings(database_url=url, operator_key=OPERATOR_KEY, scheduler=False)
    transport = httpx.ASGITransport(app=create_app(settings, manage_database=False))
    checker = await Checker.connect(url)
    began = last = time.perf_counter()
    every = max(1, len(seeds) // 20)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tally.sim") as http:
            sim = Simulation(http, OPERATOR_KEY, checker)
            for done, seed in enumerate(seeds, 1):
                if done % ANALYZE_EVERY == 0:
                    await checker.analyze()
                failure = await sim.run_seed(seed, steps)
                if failure is not None:
                    print(failure.report(), flush=True)
                    if not keep_going:
                        break
                now = time.perf_counter()
                if done % every == 0 or now - last > 30 or done == len(seeds):
                    last = now
                    print(
                        f"  seed {seed}: {done}/{len(seeds)} seeds, {sim.stats.requests:,}"
                        f" requests, {len(sim.stats.failures)} failures, {now - began:.1f} s",
                        flush=True,
                    )
    finally:
        await checker.close()
    return sim.stats, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="run this one seed (a replay)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="steps a seed")
    parser.add_argument("--keep-going", action="store_true", help="run on after a failure")
    args = parser.parse_args()
    seeds = (
        [args.seed] if args.seed is not None else list(range(args.start, args.start + args.seeds))
    )
    if args.seed is not None:
        print(f"seed {args.seed}: plan sha256 {Planner(args.seed).plan(args.steps).digest[:16]}")
    # A kill ends the run like Ctrl-C does, through the `finally` that drops its database.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = asyncio.run(simulate(seeds, args.steps, args.keep_going))
    except KeyboardInterrupt:
        print("bench.sim: interrupted (its database was dropped)", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
