"""Year-long simulations of cycles, rollover, plan changes and billing (R14-R21, R27-R33).

Every expected figure below was worked out by hand from RULES.md and docs/decisions.md
("Cycles and renewals") and is written down as a literal; nothing is computed by app code.
That makes these tests an independent check of the renewal arithmetic.

Ledger rows are (entryType, meter, amount, balanceAfter): Actions in whole Actions, Data
Credits in units (1 credit = 10,000 units, R1). At a boundary the order is: EXPIRY of the
Actions left, EXPIRY of the Data Credits that do not carry over, GRANT of the month's Actions,
GRANT of the cycle's Data Credits, ROLLOVER_CAP of what passes the cap; a zero writes no row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.helpers import assert_ledger_matches, last_ledger_id, ledger_rows, run_jobs

A, DC = "ACTIONS", "DATA_CREDITS"
EXPIRY, GRANT, CAP, TOP_UP = "EXPIRY", "GRANT", "ROLLOVER_CAP", "TOP_UP"

REFUSALS = {
    "ACTIONS_EXHAUSTED",
    "INSUFFICIENT_DATA_CREDITS",
    "TOP_UP_EXCEEDS_ROLLOVER_LIMIT",
    "PLAN_FEATURE_UNAVAILABLE",
}

# What each usage event reports (R2, R4 and the seeded catalog of API.md).
USES: dict[str, dict[str, str]] = {
    "profile": {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"},  # 0.5
    "email": {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email"},  # 0.5
    "phone": {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"},  # 5
    "company": {"kind": "ENRICHMENT", "provider": "clearbit", "dataType": "company"},  # 1
    "api": {"kind": "HTTP_API_CALL"},  # 1 Action, 0 Data Credits
}


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def view(ws: dict[str, Any]) -> dict[str, Any]:
    """The parts of a workspace the simulations compare, with instants parsed."""
    pending = ws["pendingChange"]
    return {
        "plan": ws["plan"]["code"],
        "tier": ws["creditTier"],
        "interval": ws["billingInterval"],
        "status": ws["status"],
        "anchor": ts(ws["billingAnchor"]),
        "period": (ts(ws["currentPeriod"]["start"]), ts(ws["currentPeriod"]["end"])),
        "resetsAt": ts(ws["actions"]["resetsAt"]),
        "actions": (ws["actions"]["capacity"], ws["actions"]["used"], ws["actions"]["remaining"]),
        "credits": (
            ws["dataCredits"]["balance"],
            ws["dataCredits"]["cap"],
            ws["dataCredits"]["monthlyGrant"],
        ),
        "pending": None
        if pending is None
        else (
            pending["plan"]["code"],
            pending["creditTier"],
            pending["billingInterval"],
            ts(pending["effectiveAt"]),
        ),
    }


class Sim:
    """One workspace driven through time: the wall clock and the scheduler move together."""

    def __init__(self, api, clock, tenant, workbook: str) -> None:
        self.api = api
        self.clock = clock
        self.key: str = tenant.admin_key
        self.id: str = tenant.id
        self.wb = workbook
        self.last: dict[str, Any] = {}  # what the last run_jobs reported, per job

    @classmethod
    async def start(cls, api, clock, plan: str, **fields: Any) -> tuple[Sim, dict[str, Any]]:
        tenant = await api.create_workspace(plan, **fields)
        sim = cls(api, clock, tenant, await api.create_workbook(tenant.admin_key))
        await assert_ledger_matches(tenant.id)
        return sim, view(tenant.workspace)

    async def view(self) -> dict[str, Any]:
        ws = await self.api.workspace(self.key)
        await assert_ledger_matches(self.id)
        return view(ws)

    async def rows(self, since: int = 0) -> list[tuple[str, str, int, int]]:
        return await ledger_rows(self.id, since)

    async def mark(self) -> int:
        return await last_ledger_id(self.id)

    async def events(self, events: list[tuple[datetime, str, Any, str]]) -> None:
        """Usage and top-ups: (when, what, results or credits, credits charged / price / code)."""
        for when, what, amount, expected in events:
            self.clock.move_to(when)
            if what == "topup":
                result = await self.api.top_up(self.key, amount)
                got = result["code"] if result["__typename"] == "Refusal" else result["price"]
                assert got == expected, (when, what, amount, result)
                if expected not in REFUSALS:
                    assert result["credits"] == amount
            else:
                result = await self.api.record_usage(
                    self.key, self.wb, results=amount, **USES[what]
                )
                if expected in REFUSALS:
                    assert result["__typename"] == "Refusal", (when, what, result)
                    assert result["code"] == expected, (when, what, result)
                else:
                    assert result["__typename"] == "Charge", (when, what, result)
                    assert (result["actions"], result["dataCredits"]) == (amount, expected)
            await assert_ledger_matches(self.id)

    async def renew(self, processed: datetime) -> list[tuple[str, str, int, int]]:
        """Run the scheduler's jobs as of `processed`; the ledger rows they wrote."""
        self.clock.move_to(processed)
        since = await self.mark()
        self.last = await run_jobs(processed, self.id)
        await assert_ledger_matches(self.id)
        return await self.rows(since)

    async def charges(self, **args: Any) -> list[tuple[str, str]]:
        return [(c["kind"], c["amount"]) for c in await self.api.billing(self.key, **args)]

    async def charges_between(self, start: datetime, end: datetime) -> list[tuple[str, str]]:
        return await self.charges(start=start.isoformat(), end=end.isoformat())


def total(charges: list[tuple[str, str]]) -> Decimal:
    return sum((Decimal(amount) for _, amount in charges), Decimal(0))


# ---------------------------------------------------------------------------------------------
# 1. Launch (2,500 a month) for a year, anchored on the 31st (R14, R15, R16, R19)
# ---------------------------------------------------------------------------------------------

# Anchor 2025-01-31 10:00 UTC. Cap 2 x 2,500 = 5,000 (R16). Actions 15,000 a month (R15).
# Each row: usage during the cycle, the boundary that ends it, when the scheduler ran, the rows
# the renewal writes, the balance after, the end of the new cycle.
LAUNCH_YEAR: list[tuple] = [
    (  # 2,500 - 500 - 300.5 = 1,699.5 left; 1,601 Actions used -> 13,399 expire
        [
            (at(2025, 2, 10, 12), "profile", 1000, "500"),
            (at(2025, 2, 20, 9), "email", 601, "300.5"),
        ],
        at(2025, 2, 28),
        at(2025, 2, 28),
        [
            (EXPIRY, A, -13399, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 41_995_000),  # 1,699.5 + 2,500 = 4,199.5 < 5,000
        ],
        "4199.5",
        at(2025, 3, 31),
    ),
    (  # 4,199.5 - 1.5 = 4,198; a top-up to 4,999.25 (R19); 5 hours late (R14)
        [
            (at(2025, 3, 5, 8), "profile", 3, "1.5"),
            (at(2025, 3, 6), "topup", "802.0001", "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"),  # 5,000.0001
            (at(2025, 3, 6), "topup", "801.25", "41.67"),  # 801.25 x 0.052 = 41.665 -> 41.67
        ],
        at(2025, 3, 31),
        at(2025, 3, 31, 15),
        [
            (EXPIRY, A, -14997, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 74_992_500),  # 4,999.25 + 2,500 = 7,499.25
            (CAP, DC, -24_992_500, 50_000_000),  # cut to 5,000
        ],
        "5000",
        at(2025, 4, 30),
    ),
    (  # everything spent, then refused (R10); nothing left to expire of the credits
        [
            (at(2025, 4, 15), "profile", 10000, "5000"),
            (at(2025, 4, 16), "email", 1, "INSUFFICIENT_DATA_CREDITS"),
        ],
        at(2025, 4, 30),
        at(2025, 4, 30),
        [(EXPIRY, A, -5000, 0), (GRANT, A, 15000, 15000), (GRANT, DC, 25_000_000, 25_000_000)],
        "2500",
        at(2025, 5, 31),
    ),
    (  # idle: 2,500 + 2,500 = 5,000, exactly the cap, nothing cut; 30 minutes late
        [],
        at(2025, 5, 31),
        at(2025, 5, 31, 10, 30),
        [(EXPIRY, A, -15000, 0), (GRANT, A, 15000, 15000), (GRANT, DC, 25_000_000, 50_000_000)],
        "5000",
        at(2025, 6, 30),
    ),
    (  # idle at the cap: the whole grant is cut
        [],
        at(2025, 6, 30),
        at(2025, 6, 30),
        [
            (EXPIRY, A, -15000, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 75_000_000),
            (CAP, DC, -25_000_000, 50_000_000),
        ],
        "5000",
        at(2025, 7, 31),
    ),
    (  # 5,000 - 2,499.5 = 2,500.5; + 2,500 = 5,000.5 -> 0.5 cut
        [(at(2025, 7, 1), "email", 4999, "2499.5")],
        at(2025, 7, 31),
        at(2025, 7, 31),
        [
            (EXPIRY, A, -10001, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 50_005_000),
            (CAP, DC, -5_000, 50_000_000),
        ],
        "5000",
        at(2025, 8, 31),
    ),
    (  # 4,996.5 + 2,500 = 7,496.5; processed 23 hours late, on Sep 1 (R14)
        [(at(2025, 8, 15), "profile", 7, "3.5")],
        at(2025, 8, 31),
        at(2025, 9, 1, 9),
        [
            (EXPIRY, A, -14993, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 74_965_000),
            (CAP, DC, -24_965_000, 50_000_000),
        ],
        "5000",
        at(2025, 9, 30),
    ),
    (  # every Action used (R9): refused with 500 credits left; no Actions to expire
        [
            (at(2025, 9, 10), "email", 9000, "4500"),
            (at(2025, 9, 12), "api", 6000, "0"),
            (at(2025, 9, 13), "email", 1, "ACTIONS_EXHAUSTED"),
        ],
        at(2025, 9, 30),
        at(2025, 9, 30),
        [(GRANT, A, 15000, 15000), (GRANT, DC, 25_000_000, 30_000_000)],
        "3000",
        at(2025, 10, 31),
    ),
    (  # 3,000 + 2,500 = 5,500 -> 500 cut
        [],
        at(2025, 10, 31),
        at(2025, 10, 31),
        [
            (EXPIRY, A, -15000, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 55_000_000),
            (CAP, DC, -5_000_000, 50_000_000),
        ],
        "5000",
        at(2025, 11, 30),
    ),
    (  # 4,999 + 2,500 = 7,499 -> 2,499 cut
        [(at(2025, 11, 2), "profile", 2, "1")],
        at(2025, 11, 30),
        at(2025, 11, 30),
        [
            (EXPIRY, A, -14998, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 74_990_000),
            (CAP, DC, -24_990_000, 50_000_000),
        ],
        "5000",
        at(2025, 12, 31),
    ),
    (  # processed 16 hours late, in the next year
        [],
        at(2025, 12, 31),
        at(2026, 1, 1, 2),
        [
            (EXPIRY, A, -15000, 0),
            (GRANT, A, 15000, 15000),
            (GRANT, DC, 25_000_000, 75_000_000),
            (CAP, DC, -25_000_000, 50_000_000),
        ],
        "5000",
        at(2026, 1, 31),
    ),
    (  # 5,000 - 2,500 = 2,500; + 2,500 = 5,000
        [(at(2026, 1, 15), "profile", 5000, "2500")],
        at(2026, 1, 31),
        at(2026, 1, 31),
        [(EXPIRY, A, -10000, 0), (GRANT, A, 15000, 15000), (GRANT, DC, 25_000_000, 50_000_000)],
        "5000",
        at(2026, 2, 28),
    ),
]

# Money over the year [2025-01-31 10:00, 2026-01-31 10:00): twelve plan fees of 85 + 2,500 x
# 0.04 = 185.00 (creation, then Feb 28 ... Dec 31) and the top-up of Mar 6, in order.
LAUNCH_YEAR_CHARGES = [("PLAN_FEE", "185.00")] * 2 + [("TOP_UP", "41.67")]
LAUNCH_YEAR_CHARGES += [("PLAN_FEE", "185.00")] * 10
LAUNCH_YEAR_TOTAL = Decimal("2261.67")  # 12 x 185.00 + 41.67


async def test_r14_r15_r16_r19_launch_monthly_for_a_year_anchored_on_the_31st(api, clock):
    anchor = at(2025, 1, 31)
    sim, ws = await Sim.start(api, clock, "launch")
    assert ws == {
        "plan": "launch",
        "tier": 2500,
        "interval": "MONTHLY",
        "status": "ACTIVE",
        "anchor": anchor,
        "period": (anchor, at(2025, 2, 28)),
        "resetsAt": at(2025, 2, 28),
        "actions": (15000, 0, 15000),
        "credits": ("2500", "5000", "2500"),
        "pending": None,
    }
    assert await sim.rows() == [(GRANT, A, 15000, 15000), (GRANT, DC, 25_000_000, 25_000_000)]
    assert await sim.charges() == [("PLAN_FEE", "185.00")]

    start = anchor
    for month, (usage, boundary, processed, rows, balance, end) in enumerate(LAUNCH_YEAR):
        since = await sim.mark()
        await sim.events(usage)
        if month == 0:  # nothing is due a second before the first boundary
            assert await sim.renew(datetime(2025, 2, 28, 9, 59, 59, tzinfo=UTC)) == []
        if month == 1:  # the top-up is a ledger entry and a charge on the cycle (R19)
            assert (await sim.rows(since))[-1] == (TOP_UP, DC, 8_012_500, 49_992_500)
            assert await sim.charges() == [("PLAN_FEE", "185.00"), ("TOP_UP", "41.67")]
        before = await sim.view()
        assert before["period"] == (start, boundary), month

        assert await sim.renew(processed) == rows, month
        ws = await sim.view()
        assert ws == {
            **before,
            "period": (boundary, end),  # the boundary, not the processing time (R14)
            "resetsAt": end,
            "actions": (15000, 0, 15000),
            "credits": (balance, "5000", "2500"),
        }, month
        assert await sim.charges() == [("PLAN_FEE", "185.00")], month
        start = boundary

    year = await sim.charges_between(anchor, at(2026, 1, 31))
    assert year == LAUNCH_YEAR_CHARGES
    assert total(year) == LAUNCH_YEAR_TOTAL
    assert await sim.charges_between(at(2026, 1, 31), at(2026, 2, 1)) == [("PLAN_FEE", "185.00")]


# ---------------------------------------------------------------------------------------------
# 2. Enterprise annual (50,000 a month): a year's grant, Actions monthly, 15% rollover (R17)
# ---------------------------------------------------------------------------------------------

# Anchor 2025-03-31 12:00 UTC. Year grant 12 x 50,000 = 600,000; cap 1,200,000 (R19).
# Actions 100,000 renewed every month (R15): inside the year a step writes Actions rows only.
# Each row: usage before the step, the scheduler's run, the rows written, resetsAt after.
ENTERPRISE_MONTHS: list[tuple] = [
    (  # 600,000 - 100,005 = 499,995
        [(at(2025, 4, 10, 12), "phone", 20001, "100005")],
        at(2025, 4, 30, 12),
        [(EXPIRY, A, -79999, 0), (GRANT, A, 100000, 100000)],
        at(2025, 5, 31, 12),
    ),
    (  # a top-up past 1,200,000 is refused; 12.3457 x 0.052 = 0.6419764 -> 0.64
        [
            (at(2025, 5, 20), "topup", "700005.0001", "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"),
            (at(2025, 5, 20), "topup", "12.3457", "0.64"),
        ],
        at(2025, 5, 31, 12),
        [(EXPIRY, A, -100000, 0), (GRANT, A, 100000, 100000)],
        at(2025, 6, 30, 12),
    ),
    (  # Jun 30, Jul 31 and Aug 31 caught up by one run on Sep 2: three steps, oldest first
        [(at(2025, 6, 5), "company", 7, "7")],
        at(2025, 9, 2, 8),
        [
            (EXPIRY, A, -99993, 0),
            (GRANT, A, 100000, 100000),
            (EXPIRY, A, -100000, 0),
            (GRANT, A, 100000, 100000),
            (EXPIRY, A, -100000, 0),
            (GRANT, A, 100000, 100000),
        ],
        at(2025, 9, 30, 12),
    ),
    (
        [],
        at(2025, 9, 30, 12),
        [(EXPIRY, A, -100000, 0), (GRANT, A, 100000, 100000)],
        at(2025, 10, 31, 12),
    ),
    (
        [],
        at(2025, 10, 31, 12),
        [(EXPIRY, A, -100000, 0), (GRANT, A, 100000, 100000)],
        at(2025, 11, 30, 12),
    ),
    (
        [],
        at(2025, 11, 30, 12),
        [(EXPIRY, A, -100000, 0), (GRANT, A, 100000, 100000)],
        at(2025, 12, 31, 12),
    ),
    (
        [],
        at(2025, 12, 31, 12),
        [(EXPIRY, A, -100000, 0), (GRANT, A, 100000, 100000)],
        at(2026, 1, 31, 12),
    ),
    (  # 500,000.3457 - 0.5 = 499,999.8457
        [(at(2026, 1, 10), "profile", 1, "0.5")],
        at(2026, 1, 31, 12),
        [(EXPIRY, A, -99999, 0), (GRANT, A, 100000, 100000)],
        at(2026, 2, 28, 12),
    ),
    (
        [],
        at(2026, 2, 28, 12),
        [(EXPIRY, A, -100000, 0), (GRANT, A, 100000, 100000)],
        at(2026, 3, 31, 12),
    ),
]

# The annual renewal, due 2026-03-31 12:00 and processed 6.5 hours late. Balance 499,999.8457
# = 4,999,998,457 units; 15% = 749,999,768.55 -> rounded down 749,999,768 (74,999.9768, R32);
# expired 4,999,998,457 - 749,999,768 = 4,249,998,689; + the year's 6,000,000,000 =
# 6,749,999,768 (674,999.9768) < cap 12,000,000,000. 250 Actions used that month -> 99,750 expire.
ENTERPRISE_ANNUAL_RENEWAL = [
    (EXPIRY, A, -99750, 0),
    (EXPIRY, DC, -4_249_998_689, 749_999_768),
    (GRANT, A, 100000, 100000),
    (GRANT, DC, 6_000_000_000, 6_749_999_768),
]
# (2,000 + 50,000 x 0.04) x 12 = 48,000.00 a year, billed when the year opens.
ENTERPRISE_YEAR_CHARGES = [("PLAN_FEE", "48000.00"), ("TOP_UP", "0.64")]
ENTERPRISE_YEAR_TOTAL = Decimal("48000.64")


async def test_r15_r17_r32_enterprise_annual_year_with_15_percent_rollover(api, clock):
    anchor = at(2025, 3, 31, 12)
    year_end = at(2026, 3, 31, 12)
    clock.move_to(anchor)
    sim, ws = await Sim.start(api, clock, "enterprise")
    assert ws == {
        "plan": "enterprise",
        "tier": 50000,
        "interval": "ANNUAL",
        "status": "ACTIVE",
        "anchor": anchor,
        "period": (anchor, year_end),
        "resetsAt": at(2025, 4, 30, 12),
        "actions": (100000, 0, 100000),
        "credits": ("600000", "1200000", "50000"),
        "pending": None,
    }
    assert await sim.rows() == [
        (GRANT, A, 100000, 100000),
        (GRANT, DC, 6_000_000_000, 6_000_000_000),
    ]
    assert await sim.charges() == [("PLAN_FEE", "48000.00")]

    balances = [
        "499995",
        "500007.3457",
        "500000.3457",
        "500000.3457",
        "500000.3457",
        "500000.3457",
        "500000.3457",
        "499999.8457",
        "499999.8457",
    ]
    for month, ((usage, processed, rows, resets), balance) in enumerate(
        zip(ENTERPRISE_MONTHS, balances, strict=True)
    ):
        since = await sim.mark()
        await sim.events(usage)
        if month == 1:
            assert await sim.rows(since) == [(TOP_UP, DC, 123_457, 5_000_073_457)]
        before = await sim.view()
        assert await sim.renew(processed) == rows, month
        steps = {"ACTIONS": 3} if month == 2 else {"ACTIONS": 1}  # one run, three months
        assert sim.last["renewals"].steps == steps, month
        assert await sim.view() == {
            **before,
            "period": (anchor, year_end),  # the year goes on
            "resetsAt": resets,
            "actions": (100000, 0, 100000),
            "credits": (balance, "1200000", "50000"),
        }, month
        # Inside the year no plan fee: only the year's fee and (from May 20) the top-up.
        assert await sim.charges() == ENTERPRISE_YEAR_CHARGES[: 1 if month == 0 else 2], month

    # The annual renewal, 6.5 hours late: one CYCLE step.
    await sim.events([(at(2026, 3, 3), "api", 250, "0")])
    assert await sim.renew(at(2026, 3, 31, 18, 30)) == ENTERPRISE_ANNUAL_RENEWAL
    assert sim.last["renewals"].steps == {"CYCLE": 1}
    assert await sim.view() == {
        **ws,
        "period": (year_end, at(2027, 3, 31, 12)),
        "resetsAt": at(2026, 4, 30, 12),
        "credits": ("674999.9768", "1200000", "50000"),
    }
    assert await sim.charges() == [("PLAN_FEE", "48000.00")]
    year = await sim.charges_between(anchor, year_end)
    assert year == ENTERPRISE_YEAR_CHARGES
    assert total(year) == ENTERPRISE_YEAR_TOTAL

    # The next year: Actions still renew monthly, the credits stay.
    assert await sim.renew(at(2026, 4, 30, 12)) == [
        (EXPIRY, A, -100000, 0),
        (GRANT, A, 100000, 100000),
    ]
    assert (await sim.view())["credits"] == ("674999.9768", "1200000", "50000")


# ---------------------------------------------------------------------------------------------
# 3. Growth trial, then free for a year (R18, R28, R31)
# ---------------------------------------------------------------------------------------------

# Trial from 2025-01-31 10:00 to 2025-02-14 10:00: 1,000 credits, 40,000 Actions (R31).
# 800 left at its end -> keep 100, expire 700, + free's 100 = 200 (R18). The anchor becomes
# 2025-02-14 10:00. On free (cap 200) a month keeps everything and the cap cuts (decisions).
TRIAL_END = [
    (EXPIRY, A, -39600, 0),
    (EXPIRY, DC, -7_000_000, 1_000_000),
    (GRANT, A, 500, 500),
    (GRANT, DC, 1_000_000, 2_000_000),
]
IDLE_FREE_MONTH = [
    (EXPIRY, A, -500, 0),
    (GRANT, A, 500, 500),
    (GRANT, DC, 1_000_000, 3_000_000),  # 200 + 100 = 300
    (CAP, DC, -1_000_000, 2_000_000),  # cut to 200
]
FREE_YEAR: list[tuple] = [
    (  # 200 - 50 = 150; + 100 = 250 -> 50 cut
        [(at(2025, 2, 20), "email", 100, "50")],
        at(2025, 3, 14),
        at(2025, 3, 14),
        [
            (EXPIRY, A, -400, 0),
            (GRANT, A, 500, 500),
            (GRANT, DC, 1_000_000, 2_500_000),
            (CAP, DC, -500_000, 2_000_000),
        ],
        "200",
    ),
    (  # 200 - 199.5 = 0.5; + 100 = 100.5
        [(at(2025, 3, 20), "profile", 399, "199.5")],
        at(2025, 4, 14),
        at(2025, 4, 14),
        [(EXPIRY, A, -101, 0), (GRANT, A, 500, 500), (GRANT, DC, 1_000_000, 1_005_000)],
        "100.5",
    ),
    (  # 100.5 - 0.5 = 100; all 500 Actions used (R9): nothing of them expires
        [
            (at(2025, 4, 20), "email", 1, "0.5"),
            (at(2025, 4, 21), "api", 499, "0"),
            (at(2025, 4, 22), "profile", 1, "ACTIONS_EXHAUSTED"),
        ],
        at(2025, 5, 14),
        at(2025, 5, 14),
        [(GRANT, A, 500, 500), (GRANT, DC, 1_000_000, 2_000_000)],
        "200",
    ),
    ([], at(2025, 6, 14), at(2025, 6, 15, 9, 59), IDLE_FREE_MONTH, "200"),  # a day late
    ([], at(2025, 7, 14), at(2025, 7, 14), IDLE_FREE_MONTH, "200"),
    ([], at(2025, 8, 14), at(2025, 8, 14), IDLE_FREE_MONTH, "200"),
    (  # 200 - 150 = 50; + 100 = 150
        [(at(2025, 9, 1), "profile", 300, "150")],
        at(2025, 9, 14),
        at(2025, 9, 14),
        [(EXPIRY, A, -200, 0), (GRANT, A, 500, 500), (GRANT, DC, 1_000_000, 1_500_000)],
        "150",
    ),
    (  # 150 + 100 = 250 -> 50 cut
        [],
        at(2025, 10, 14),
        at(2025, 10, 14),
        [
            (EXPIRY, A, -500, 0),
            (GRANT, A, 500, 500),
            (GRANT, DC, 1_000_000, 2_500_000),
            (CAP, DC, -500_000, 2_000_000),
        ],
        "200",
    ),
    ([], at(2025, 11, 14), at(2025, 11, 14), IDLE_FREE_MONTH, "200"),
    ([], at(2025, 12, 14), at(2025, 12, 14, 20), IDLE_FREE_MONTH, "200"),
    ([], at(2026, 1, 14), at(2026, 1, 14), IDLE_FREE_MONTH, "200"),
    ([], at(2026, 2, 14), at(2026, 2, 14), IDLE_FREE_MONTH, "200"),
]
NEXT_FREE_END = {
    at(2025, 3, 14): at(2025, 4, 14),
    at(2025, 4, 14): at(2025, 5, 14),
    at(2025, 5, 14): at(2025, 6, 14),
    at(2025, 6, 14): at(2025, 7, 14),
    at(2025, 7, 14): at(2025, 8, 14),
    at(2025, 8, 14): at(2025, 9, 14),
    at(2025, 9, 14): at(2025, 10, 14),
    at(2025, 10, 14): at(2025, 11, 14),
    at(2025, 11, 14): at(2025, 12, 14),
    at(2025, 12, 14): at(2026, 1, 14),
    at(2026, 1, 14): at(2026, 2, 14),
    at(2026, 2, 14): at(2026, 3, 14),
}


async def test_r18_r31_growth_trial_then_free_for_a_year(api, clock):
    created = at(2025, 1, 31)
    trial_end = at(2025, 2, 14)
    sim, ws = await Sim.start(api, clock, "growth", trial=True)
    assert ws == {
        "plan": "growth",
        "tier": None,
        "interval": "MONTHLY",
        "status": "TRIALING",
        "anchor": created,
        "period": (created, trial_end),
        "resetsAt": trial_end,
        "actions": (40000, 0, 40000),
        "credits": ("1000", "2000", "1000"),
        "pending": None,
    }
    assert await sim.rows() == [(GRANT, A, 40000, 40000), (GRANT, DC, 10_000_000, 10_000_000)]
    await sim.events(
        [
            (at(2025, 2, 1), "topup", "10", "PLAN_FEATURE_UNAVAILABLE"),  # R19, R31
            (at(2025, 2, 3), "profile", 400, "200"),  # 1,000 - 200 = 800
        ]
    )
    # Not yet due a minute before the trial's end.
    assert await sim.renew(at(2025, 2, 14, 9, 59)) == []
    assert (await sim.view())["status"] == "TRIALING"

    assert await sim.renew(at(2025, 2, 14, 13)) == TRIAL_END  # 3 hours late
    ws = await sim.view()
    assert ws == {
        "plan": "free",
        "tier": 100,
        "interval": "MONTHLY",
        "status": "ACTIVE",
        "anchor": trial_end,  # the trial's end re-anchors (R14, R18)
        "period": (trial_end, at(2025, 3, 14)),
        "resetsAt": at(2025, 3, 14),
        "actions": (500, 0, 500),
        "credits": ("200", "200", "100"),
        "pending": None,
    }
    await sim.events([(at(2025, 2, 15), "topup", "10", "PLAN_FEATURE_UNAVAILABLE")])

    start = trial_end
    for month, (usage, boundary, processed, rows, balance) in enumerate(FREE_YEAR):
        await sim.events(usage)
        before = await sim.view()
        assert before["period"] == (start, boundary), month
        assert await sim.renew(processed) == rows, month
        end = NEXT_FREE_END[boundary]
        assert await sim.view() == {
            **before,
            "period": (boundary, end),
            "resetsAt": end,
            "actions": (500, 0, 500),
            "credits": (balance, "200", "100"),
        }, month
        assert await sim.charges() == [], month
        start = boundary

    # Free and trials bill nothing, ever.
    assert await sim.charges_between(at(2025, 1, 1), at(2026, 3, 1)) == []


# ---------------------------------------------------------------------------------------------
# 4. Growth (6,000) downgraded to launch, upgraded back, canceled and withdrawn (R20, R21, R27)
# ---------------------------------------------------------------------------------------------

# Anchor 2025-01-31 10:00 UTC. Growth 6,000: 255 + 240 = 495.00 a month, cap 12,000, 40,000
# Actions. Launch 2,500: 85 + 100 = 185.00, cap 5,000, 15,000 Actions.
# The upgrade on 2025-04-29 07:00 is 27 hours before the end of the 30-day cycle
# 2025-03-31 10:00 -> 2025-04-30 10:00 (720 hours): 310.00 x 27/720 = 11.625 -> 11.63 (R32).
GROWTH_RENEWAL = [  # a growth month at the cap, nothing used: 12,000 + 6,000 -> 6,000 cut
    (EXPIRY, A, -40000, 0),
    (GRANT, A, 40000, 40000),
    (GRANT, DC, 60_000_000, 180_000_000),
    (CAP, DC, -60_000_000, 120_000_000),
]
GROWTH_MONTHS_AT_CAP = [  # boundary, next boundary
    (at(2025, 5, 31), at(2025, 6, 30)),
    (at(2025, 6, 30), at(2025, 7, 31)),
    (at(2025, 7, 31), at(2025, 8, 31)),
    (at(2025, 8, 31), at(2025, 9, 30)),
    (at(2025, 9, 30), at(2025, 10, 31)),
    (at(2025, 10, 31), at(2025, 11, 30)),
    (at(2025, 11, 30), at(2025, 12, 31)),
]
# Money over [2025-01-31 10:00, 2026-01-31 10:00): growth Jan 31 and Feb 28, launch Mar 31,
# the upgrade's proration, growth Apr 30 ... Nov 30 (eight), then free (nothing).
GROWTH_YEAR_CHARGES = [
    ("PLAN_FEE", "495.00"),
    ("PLAN_FEE", "495.00"),
    ("PLAN_FEE", "185.00"),
    ("PRORATION", "11.63"),
] + [("PLAN_FEE", "495.00")] * 8
GROWTH_YEAR_TOTAL = Decimal("5146.63")  # 10 x 495.00 + 185.00 + 11.63


async def test_r20_r21_r27_growth_downgrade_upgrade_cancel_withdraw_for_a_year(api, clock):
    anchor = at(2025, 1, 31)
    sim, ws = await Sim.start(api, clock, "growth")
    growth = {
        "plan": "growth",
        "tier": 6000,
        "interval": "MONTHLY",
        "status": "ACTIVE",
        "anchor": anchor,
        "pending": None,
    }
    assert ws == {
        **growth,
        "period": (anchor, at(2025, 2, 28)),
        "resetsAt": at(2025, 2, 28),
        "actions": (40000, 0, 40000),
        "credits": ("6000", "12000", "6000"),
    }
    assert await sim.rows() == [(GRANT, A, 40000, 40000), (GRANT, DC, 60_000_000, 60_000_000)]
    assert await sim.charges() == [("PLAN_FEE", "495.00")]

    # Month 1: 6,000 - 1,000 = 5,000; + 6,000 = 11,000 (under the cap of 12,000).
    await sim.events([(at(2025, 2, 5), "profile", 2000, "1000")])
    assert await sim.renew(at(2025, 2, 28)) == [
        (EXPIRY, A, -38000, 0),
        (GRANT, A, 40000, 40000),
        (GRANT, DC, 60_000_000, 110_000_000),
    ]

    # Month 2: a downgrade to launch waits for the cycle end (R21); nothing moves now.
    clock.move_to(at(2025, 3, 10, 12))
    since = await sim.mark()
    result = await api.change_plan(sim.key, "launch")
    assert result["__typename"] == "Workspace"
    pending_launch = {
        **growth,
        "period": (at(2025, 2, 28), at(2025, 3, 31)),
        "resetsAt": at(2025, 3, 31),
        "actions": (40000, 0, 40000),
        "credits": ("11000", "12000", "6000"),
        "pending": ("launch", 2500, "MONTHLY", at(2025, 3, 31)),
    }
    assert view(result) == pending_launch
    assert await sim.view() == pending_launch
    assert await sim.rows(since) == []
    assert await sim.charges() == [("PLAN_FEE", "495.00")]
    # The grace period: growth's capacity and the excess over launch's cap stay spendable.
    await sim.events([(at(2025, 3, 20), "email", 16000, "8000")])  # 11,000 - 8,000 = 3,000
    assert await sim.view() == {
        **pending_launch,
        "actions": (40000, 16000, 24000),
        "credits": ("3000", "12000", "6000"),
    }
    # At the cycle end launch starts: min(3,000 + 2,500, 5,000) = 5,000; 2 hours late.
    assert await sim.renew(at(2025, 3, 31, 12)) == [
        (EXPIRY, A, -24000, 0),
        (GRANT, A, 15000, 15000),
        (GRANT, DC, 25_000_000, 55_000_000),
        (CAP, DC, -5_000_000, 50_000_000),
    ]
    launch = {
        **growth,
        "plan": "launch",
        "tier": 2500,
        "period": (at(2025, 3, 31), at(2025, 4, 30)),
        "resetsAt": at(2025, 4, 30),
        "actions": (15000, 0, 15000),
        "credits": ("5000", "5000", "2500"),
    }
    assert await sim.view() == launch
    assert await sim.charges() == [("PLAN_FEE", "185.00")]

    # Month 3: spend, then upgrade back to growth 27 hours before the cycle end (R20).
    await sim.events([(at(2025, 4, 5), "profile", 1000, "500")])  # 5,000 - 500 = 4,500
    clock.move_to(at(2025, 4, 29, 7))
    since = await sim.mark()
    result = await api.change_plan(sim.key, "growth")
    assert result["__typename"] == "Workspace"
    upgraded = {
        **growth,
        "period": (at(2025, 3, 31), at(2025, 4, 30)),  # the cycle is unchanged
        "resetsAt": at(2025, 4, 30),
        "actions": (40000, 1000, 39000),  # capacity now, used kept
        "credits": ("8000", "12000", "6000"),  # 4,500 + 3,500 at once
    }
    assert view(result) == upgraded
    assert await sim.view() == upgraded
    assert await sim.rows(since) == [(GRANT, A, 25000, 39000), (GRANT, DC, 35_000_000, 80_000_000)]
    assert await sim.charges() == [("PLAN_FEE", "185.00"), ("PRORATION", "11.63")]
    # Growth renews: 8,000 + 6,000 = 14,000 -> 2,000 cut.
    assert await sim.renew(at(2025, 4, 30)) == [
        (EXPIRY, A, -39000, 0),
        (GRANT, A, 40000, 40000),
        (GRANT, DC, 60_000_000, 140_000_000),
        (CAP, DC, -20_000_000, 120_000_000),
    ]
    month4 = {
        **growth,
        "period": (at(2025, 4, 30), at(2025, 5, 31)),
        "resetsAt": at(2025, 5, 31),
        "actions": (40000, 0, 40000),
        "credits": ("12000", "12000", "6000"),
    }
    assert await sim.view() == month4
    assert await sim.charges() == [("PLAN_FEE", "495.00")]

    # Month 4: cancel and withdraw; changes replace each other (R27); none touches a meter.
    clock.move_to(at(2025, 5, 10))
    since = await sim.mark()
    to_free = ("free", 100, "MONTHLY", at(2025, 5, 31))
    to_launch_5000 = ("launch", 5000, "MONTHLY", at(2025, 5, 31))
    canceled = await api.cancel(sim.key)
    assert view(canceled) == {**month4, "status": "CANCELED", "pending": to_free}
    assert await sim.view() == {**month4, "status": "CANCELED", "pending": to_free}
    assert view(await api.withdraw(sim.key)) == month4
    assert await sim.view() == month4
    changed = await api.change_plan(sim.key, "launch", creditTier=5000)
    assert view(changed) == {**month4, "pending": to_launch_5000}
    assert view(await api.cancel(sim.key)) == {**month4, "status": "CANCELED", "pending": to_free}
    assert view(await api.withdraw(sim.key)) == month4
    await api.change_plan(sim.key, "launch", creditTier=5000)
    assert (await sim.view())["pending"] == to_launch_5000
    # changePlan to the current terms withdraws the pending change (decisions, R27).
    assert view(await api.change_plan(sim.key, "growth", creditTier=6000)) == month4
    assert await sim.view() == month4
    assert await sim.rows(since) == []
    assert await sim.charges() == [("PLAN_FEE", "495.00")]

    # Seven growth months at the cap.
    for boundary, end in GROWTH_MONTHS_AT_CAP:
        assert await sim.renew(boundary) == GROWTH_RENEWAL, boundary
        assert await sim.view() == {
            **month4,
            "period": (boundary, end),
            "resetsAt": end,
        }, boundary
        assert await sim.charges() == [("PLAN_FEE", "495.00")], boundary

    # December: a cancellation that takes effect. 12,000 - 500 = 11,500 spent in grace;
    # at the end free starts: min(11,500 + 100, 200) = 200 (R21).
    clock.move_to(at(2025, 12, 5))
    canceled = await api.cancel(sim.key)
    assert canceled["status"] == "CANCELED"
    await sim.events([(at(2025, 12, 10), "profile", 1000, "500")])
    assert await sim.renew(at(2025, 12, 31)) == [
        (EXPIRY, A, -39000, 0),
        (GRANT, A, 500, 500),
        (GRANT, DC, 1_000_000, 116_000_000),
        (CAP, DC, -114_000_000, 2_000_000),
    ]
    free = {
        **growth,
        "plan": "free",
        "tier": 100,
        "period": (at(2025, 12, 31), at(2026, 1, 31)),
        "resetsAt": at(2026, 1, 31),
        "actions": (500, 0, 500),
        "credits": ("200", "200", "100"),
    }
    assert await sim.view() == free
    assert await sim.charges() == []
    assert await sim.renew(at(2026, 1, 31)) == [
        (EXPIRY, A, -500, 0),
        (GRANT, A, 500, 500),
        (GRANT, DC, 1_000_000, 3_000_000),
        (CAP, DC, -1_000_000, 2_000_000),
    ]
    assert await sim.view() == {
        **free,
        "period": (at(2026, 1, 31), at(2026, 2, 28)),
        "resetsAt": at(2026, 2, 28),
    }

    year = await sim.charges_between(anchor, at(2026, 1, 31))
    assert year == GROWTH_YEAR_CHARGES
    assert total(year) == GROWTH_YEAR_TOTAL
