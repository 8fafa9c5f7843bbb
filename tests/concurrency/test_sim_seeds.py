"""R12, R13, R14, R24 under random concurrent load: a handful of seeds of `bench/sim.py`.

Each seed drives a few workspaces through GraphQL with concurrent charges, batches, retries,
refunds, top-ups, plan changes, runs and the scheduler's jobs while the clock moves forward, and
checks every invariant after every step. A failure prints the seed, the step, the invariant and
the command that replays it (`.venv/bin/python -m bench.sim --seed N`). The 1,000-seed run is
`python -m bench.sim --seeds 1000`.
"""

from collections.abc import AsyncIterator

import pytest

from app.db import connection, fetch
from bench.sim import DEFAULT_STEPS, Checker, SeedRun, Simulation

pytestmark = pytest.mark.usefixtures("postgres_only")

SEEDS = range(5)
STEPS = DEFAULT_STEPS


@pytest.fixture
async def sim(api, database) -> AsyncIterator[Simulation]:
    checker = await Checker.connect(database.url)
    try:
        yield Simulation(api.client, api.operator_key, checker)
    finally:
        await checker.close()


@pytest.mark.parametrize("seed", SEEDS)
async def test_r12_r13_r14_r24_a_random_seed_keeps_every_invariant(sim, seed):
    failure = await sim.run_seed(seed, STEPS)
    assert failure is None, failure.report()
    assert sim.stats.checks > 0 and sim.stats.requests > 0


async def test_r24_the_simulation_notices_a_balance_moved_outside_the_ledger(sim, monkeypatch):
    """The checks are not vacuous: a balance changed without a ledger entry fails the seed."""
    check = SeedRun.check
    moved: list[str] = []

    async def tampered(self: SeedRun, *args) -> None:
        if self.index == 3 and not moved:
            moved.append(self.tenants[0].id)
            await fetch(connection(), BUMP, moved[0], 1)
        await check(self, *args)

    monkeypatch.setattr(SeedRun, "check", tampered)
    try:
        failure = await sim.run_seed(0, 5)
    finally:
        await fetch(connection(), BUMP, moved[0], -1)
    assert failure is not None
    assert (failure.seed, failure.step, failure.invariant) == (0, 3, "balance = ledger sum")
    assert "--seed 0" in failure.report()


BUMP = "UPDATE workspace SET credit_balance = credit_balance + $2 WHERE id = $1"
