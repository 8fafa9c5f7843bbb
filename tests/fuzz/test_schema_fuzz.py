"""Fuzzing the GraphQL schema (hypothesis-graphql) as four callers, on both databases.

Every answer must have an allowed status and a JSON body, every error a code from API.md, and
nothing of workspace B may reach workspace A's keys or change (tests/fuzz/harness.py). Each
test sends fixed cases first (hostile envelopes, B's rows, hostile scalars), then a
derandomized draw, so CI sends the same cases every run; `bench/fuzz.py --cases N` sends more.
Failures are collected, not raised one by one: a failing test lists every distinct failure.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fuzz.harness import (
    Caller,
    World,
    build_world,
    cases,
    compare_states,
    explicit_cases,
    run_cases,
    schema_of_app,
    tenant_state,
)
from tests.helpers import Api

# Drawn cases a database leg (a few hundred), most for the key that reaches the most code, on
# top of the fixed ones (harness.explicit_cases).
CASES = {Caller.ADMIN_A: 120, Caller.MEMBER_A: 60, Caller.OPERATOR: 40, Caller.NO_KEY: 40}


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await build_world(api.client, api.operator_key)


async def fuzz(api: Api, world: World, caller: Caller) -> None:
    before = await tenant_state(api.client, world.b)
    strategy = cases(world, [caller], schema_of_app())
    loop = asyncio.get_running_loop()
    explicit = explicit_cases(world, [caller])
    report = await asyncio.to_thread(
        run_cases, loop, api.client, world, strategy, CASES[caller], None, explicit
    )
    changed = compare_states(before, await tenant_state(api.client, world.b))
    if report.failures or changed:
        pytest.fail("\n".join([report.summary(), *changed]), pytrace=False)


async def test_fuzz_as_admin_of_workspace_a(api: Api, world: World) -> None:
    await fuzz(api, world, Caller.ADMIN_A)


async def test_fuzz_as_member_of_workspace_a(api: Api, world: World) -> None:
    await fuzz(api, world, Caller.MEMBER_A)


async def test_fuzz_as_operator(api: Api, world: World) -> None:
    await fuzz(api, world, Caller.OPERATOR)


async def test_fuzz_without_a_key(api: Api, world: World) -> None:
    await fuzz(api, world, Caller.NO_KEY)
