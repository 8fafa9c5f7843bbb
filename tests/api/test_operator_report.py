"""The operator report (issue 19): per plan, the share of workspaces that used up their Actions
in their last complete cycle; per UTC month, Data Credits expired at renewals and revenue.

A fleet of eight workspaces lives through January to March 2041 (a year no other test of the
shared database reaches, so the fleet is the whole fleet in these ranges), the clock moved to
each step so that every change is stamped in order, as in production:

    created 2041-01-10 10:00         month 1 (Jan 10-Feb 10)   month 2 (Feb 10-Mar 10)
    A launch 2500                    15,000 Actions (all)      100, upgraded to growth Feb 24
    B launch 2500                    -                         15,000 (all)
    C launch 2500                    -                         14,999, a top-up of 1,000
    D growth 6000                    -                         40,000 (all)
    E free                           -                         500 (all)
    F a growth trial (to Jan 24),    -                         F's free month Jan 24-Feb 24:
      then free                                                500 (all)
    G launch 2500, renewed only      15,000 (all)              -
      on Mar 10 (two months at once)
    H enterprise (annual: its        -                         100,000 (all)
      Actions still renew monthly)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from tests.helpers import run_jobs

QUERY = """query($f: DateTime!, $t: DateTime!) { operatorReport(from: $f, to: $t) {
  from to
  plans { plan trial workspaces usedUp usedUpShare planRevenue topUpRevenue }
  months { month dataCreditsExpired dataCreditsCapped planRevenue topUpRevenue } } }"""


def at(m, d, hh=10):
    return datetime(2041, m, d, hh, tzinfo=UTC)


def plan(name, trial, workspaces, used, share, revenue, top_ups="0.00"):
    return {
        "plan": name,
        "trial": trial,
        "workspaces": workspaces,
        "usedUp": used,
        "usedUpShare": share,
        "planRevenue": revenue,
        "topUpRevenue": top_ups,
    }


def month(name, expired, capped, revenue, top_ups="0.00"):
    return {
        "month": name,
        "dataCreditsExpired": expired,
        "dataCreditsCapped": capped,
        "planRevenue": revenue,
        "topUpRevenue": top_ups,
    }


async def report(api, start, end, key=None):
    data = await api.gql(
        QUERY, {"f": start.isoformat(), "t": end.isoformat()}, key=key or api.operator_key
    )
    return data["operatorReport"]


async def use(api, tenant, actions, **fields):
    """`actions` HTTP API calls: 1 Action each, no Data Credits (R4)."""
    wb = await api.create_workbook(tenant.admin_key)
    charge = await api.record_usage(
        tenant.admin_key, wb, kind="HTTP_API_CALL", results=actions, **fields
    )
    assert charge["__typename"] == "Charge", charge


async def live_through_three_months(api, clock):
    clock.move_to(at(1, 10))
    a, b, c, g = [await api.create_workspace("launch", creditTier=2500) for _ in range(4)]
    d = await api.create_workspace("growth", creditTier=6000)
    h = await api.create_workspace("enterprise")  # annual: 12 x (2,000 + 50,000 x 0.04)
    e = await api.create_workspace("free")
    f = await api.create_workspace("growth", trial=True)
    renewed_monthly = [w.id for w in (a, b, c, d, e, h)]

    clock.move_to(at(1, 20))
    await use(api, a, 15000)
    await use(api, g, 15000)
    clock.move_to(at(1, 24))
    await run_jobs(at(1, 24), f.id)  # the trial ends: 900 of its 1,000 credits expire (R18)

    clock.move_to(at(2, 10))
    await run_jobs(at(2, 10), *renewed_monthly)  # G is left behind
    clock.move_to(at(2, 20))
    await use(api, a, 100)
    await use(api, b, 15000)
    wb = await api.create_workbook(c.admin_key)
    profiles = await api.record_usage(
        c.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=2000
    )  # 2,000 Actions and 1,000 credits, so a top-up of 1,000 fits under the cap of 5,000
    assert profiles["__typename"] == "Charge", profiles
    await use(api, c, 12999)
    assert (await api.top_up(c.admin_key, "1000"))["price"] == "52.00"
    await use(api, d, 40000)
    await use(api, e, 500)
    await use(api, h, 100000)
    await use(api, f, 500)
    clock.move_to(at(2, 24))
    upgraded = await api.change_plan(a.admin_key, "growth", creditTier=6000)  # half the cycle
    assert upgraded["__typename"] == "Workspace", upgraded
    await run_jobs(at(2, 24), f.id)  # F's free month ends: the cap cuts 200 + 100 to 200

    clock.move_to(at(3, 10))
    await run_jobs(at(3, 10), *renewed_monthly, g.id)  # G catches up two months at once


async def test_operator_report_per_plan_and_per_month_exactly(api, clock, settings):
    await live_through_three_months(api, clock)
    clock.move_to(at(3, 20))

    # At March 15 each workspace's last complete cycle is its month to March 10 (F's: to
    # February 24). A ended it on growth with 100 of 40,000 used; B, D, E, F and H used up all
    # theirs; C is one Action short; G's month was empty (renewed in the same sweep as the
    # month before it, which used everything).
    answer = await report(api, at(1, 1, 0), at(3, 15, 0))
    assert answer["from"] == "2041-01-01T00:00:00+00:00"
    assert answer["to"] == "2041-03-15T00:00:00+00:00"
    assert answer["plans"] == [
        plan("enterprise", False, 1, 1, "1", "48000.00"),  # its year's fee, in January
        plan("free", False, 2, 2, "1", "0.00"),
        # fees: D 495 x 3, A 495 in March; A's upgrade: (495 - 185) x 14/28 days = 155
        plan("growth", False, 2, 1, "0.5", "2135.00"),
        # fees: A, B, C x 2 and B, C in March (185 each); G 185 in January, 2 x 185 in March
        plan("launch", False, 3, 1, "0.3333", "2035.00", "52.00"),
    ]
    assert answer["months"] == [
        month("2041-01", "900", "0", "49235.00"),  # the trial's end; six paid fees
        # F's free month: the cap of 2 x 100 cut 100 (R18); fees, the upgrade, a top-up
        month("2041-02", "100", "100", "1205.00", "52.00"),
        # the cap cut A's, B's, C's and G's 2,500, D's 6,000 and E's (free) 100
        month("2041-03", "16100", "16100", "1730.00"),
    ]

    # At February 15 the last complete cycles are the first months, and F's trial.
    early = await report(api, at(1, 1, 0), at(2, 15, 0))
    assert early["plans"] == [
        plan("enterprise", False, 1, 0, "0", "48000.00"),
        plan("free", False, 1, 0, "0", "0.00"),
        plan("growth", False, 1, 0, "0", "990.00"),
        plan("growth", True, 1, 0, "0", "0.00"),
        plan("launch", False, 4, 2, "0.5", "1295.00"),  # A and G used up their first month
    ]
    assert early["months"] == [
        month("2041-01", "900", "0", "49235.00"),
        month("2041-02", "0", "0", "1050.00"),
    ]

    # A cycle ending exactly at `to` counts, and one that ended before `from` does not (F's
    # trial); money and expiries are counted in [from, to): the fees billed at `to` are not.
    edge = await report(api, at(2, 1, 0), at(2, 10))
    assert edge["plans"] == [
        plan("enterprise", False, 1, 0, "0", "0.00"),
        plan("free", False, 1, 0, "0", "0.00"),
        plan("growth", False, 1, 0, "0", "0.00"),
        plan("launch", False, 4, 2, "0.5", "0.00"),
    ]
    assert edge["months"] == [month("2041-02", "0", "0", "0.00")]

    # `tally report --json` prints the same object; the table shows the same figures.
    printed = await tally_report(
        settings, "--from", "2041-01-01T00:00Z", "--to", "2041-03-15", "--json"
    )
    assert json.loads(printed) == answer
    table = await tally_report(settings, "--from", "2041-01-01T00:00Z", "--to", "2041-03-15")
    assert "33.33%" in table and "$1,730.00" in table and "16,100" in table


async def tally_report(settings, *args: str) -> str:
    env = {**os.environ, "TALLY_DATABASE_URL": settings.database_url, "COLUMNS": "160"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tally", "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_operator_report_reads_the_fleet_in_three_statements(api):
    # Set-based: one statement for every workspace's last cycle, one for expiries, one for
    # money, however many workspaces, renewals and charges there are.
    from app.query_budget import query_budget
    from app.reports.service import operator_report

    with query_budget(1000) as budget:
        await operator_report(at(1, 1, 0), at(3, 15, 0))
    assert budget.used == 3


async def test_operator_report_is_the_operators_alone(api):
    t = await api.create_workspace("launch")
    made = await api.gql(
        'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=t.admin_key
    )
    variables = {"f": "2041-01-01T00:00Z", "t": "2041-02-01T00:00Z"}
    for key in (t.admin_key, made["createApiKey"]["secret"]):
        assert await api.error_code(QUERY, variables, key=key) == "FORBIDDEN"
    assert await api.error_code(QUERY, variables, key="tly_nope") == "UNAUTHENTICATED"


async def test_operator_report_refuses_a_bad_range(api):
    for start, end in [
        ("2041-02-01T00:00Z", "2041-02-01T00:00Z"),  # empty
        ("2041-02-01T00:00Z", "2041-01-01T00:00Z"),  # backwards
        ("2030-01-01T00:00Z", "2035-01-06T00:00Z"),  # over 1,830 days
        ("2041-01-01T00:00", "2041-02-01T00:00Z"),  # no zone
        ("2041-01-01T00:00Z", "9999-01-01T00:00Z"),  # past the DateTime bounds
    ]:
        code = await api.error_code(QUERY, {"f": start, "t": end}, key=api.operator_key)
        assert code == "INVALID_INPUT", (start, end)


async def test_tally_report_refuses_a_bad_range_and_defaults_to_twelve_months(settings):
    env = {**os.environ, "TALLY_DATABASE_URL": settings.database_url}
    bad = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tally", "report", "--from", "2041-02-01", "--to", "2041-01-01"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "INVALID_INPUT: to (2041-01-01T00:00:00+00:00)" in bad.stderr
    default = json.loads(await tally_report(settings, "--json"))
    assert len(default["months"]) == 12 and default["from"].endswith("-01T00:00:00+00:00")
