"""Pure rules of usage history (R3, R5, R22, R24): deltas, rollup keys, ranges, grouping, CSV."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.errors import InvalidInput
from app.history.rules import (
    UsageDelta,
    UsageDimension,
    UsageRow,
    day_range,
    delta_of_charge,
    delta_of_refund,
    dimensions,
    group_deltas,
    sort_rows,
    sum_deltas,
    to_csv,
    with_names,
)
from app.history.service import charge_usage, charges_usage
from app.usage.charging import ChargeRecord

D = UsageDimension
U = 10_000  # units per credit
WB1 = uuid.UUID("00000000-0000-0000-0000-000000000001")
WB2 = uuid.UUID("00000000-0000-0000-0000-000000000002")
JAN = datetime(2025, 1, 31, 10, tzinfo=UTC)
FEB = datetime(2025, 2, 28, 10, tzinfo=UTC)


def at(y, m, d, hh=10, mm=0, tz=UTC):
    return datetime(y, m, d, hh, mm, tzinfo=tz)


def charge(**overrides):
    values = dict(
        created_at=at(2025, 2, 1),
        period_start=JAN,
        workbook_id=WB1,
        table_id="t1",
        kind="ENRICHMENT",
        provider="linkedin",
        model=None,
        own_api_key=False,
        actions=100,
        credits=50 * U,
        results=100,
    )
    return delta_of_charge(**{**values, **overrides})


def delta(day=date(2025, 2, 1), wb=WB1, table="t1", provider="linkedin", kind="ENRICHMENT",
          actions=1, credits=U, results=1, cycle=JAN):  # fmt: skip
    return UsageDelta(day, cycle, wb, table, provider, kind, actions, credits, results)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, (date(2025, 2, 1), "t1", "linkedin", 100, 50 * U, 100)),
        # The UTC day, whatever offset the instant was written with.
        ({"created_at": at(2025, 2, 1, 1, tz=timezone(timedelta(hours=2)))},
         (date(2025, 1, 31), "t1", "linkedin", 100, 50 * U, 100)),
        # R6/R24: AI usage is shown under its model.
        ({"kind": "AI", "provider": None, "model": "large", "credits": 12_345},
         (date(2025, 2, 1), "t1", "large", 100, 12_345, 100)),
        # R5: own-key usage counts Actions only.
        ({"own_api_key": True, "provider": "hunter", "credits": 0},
         (date(2025, 2, 1), "t1", "hunter", 100, 0, 100)),
        # R3: free operations at zero, still with their results.
        ({"kind": "SOURCING", "provider": None, "actions": 0, "credits": 0},
         (date(2025, 2, 1), "t1", None, 0, 0, 100)),
        # No table and no provider, however they were spelled.
        ({"table_id": "", "provider": ""}, (date(2025, 2, 1), None, None, 100, 50 * U, 100)),
    ],
)  # fmt: skip
def test_r24_delta_of_a_charge(overrides, expected):
    d = charge(**overrides)
    assert (d.day, d.table_id, d.provider, d.actions, d.credits, d.results) == expected
    assert d.period_start == JAN and d.workbook_id == WB1


def test_r05_own_key_charge_never_shows_credits_even_if_recorded():
    assert charge(own_api_key=True).credits == 0


def test_r22_refund_nets_credits_on_its_own_day_and_cycle_under_the_charge_keys():
    d = delta_of_refund(
        created_at=at(2025, 3, 2, 23, 59),
        period_start=FEB,
        workbook_id=WB2,
        table_id="t9",
        kind="AI",
        provider=None,
        model="small",
        credits=5 * U,
    )
    assert d == UsageDelta(date(2025, 3, 2), FEB, WB2, "t9", "small", "AI", 0, -5 * U, 0)


def test_r24_rollup_key_uses_empty_strings_for_none():
    assert delta(table=None, provider=None).key() == (
        date(2025, 2, 1),
        JAN,
        WB1,
        "",
        "",
        "ENRICHMENT",
    )


def test_r24_sum_deltas_merges_duplicates_sorts_by_key_and_drops_nothing_moved():
    a1 = delta(wb=WB2, actions=2, credits=3, results=4)
    a2 = delta(wb=WB2, actions=10, credits=-1, results=0)
    b = delta(day=date(2025, 1, 31))
    zero = delta(kind="SIGNAL", actions=0, credits=0, results=0)  # a refund of nothing
    assert sum_deltas([a1, zero, b, a2]) == [b, delta(wb=WB2, actions=12, credits=2, results=4)]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (at(2025, 1, 1, 0), at(2025, 4, 1, 0), (date(2025, 1, 1), date(2025, 4, 1))),  # 90 days
        (at(2025, 1, 1, 10), at(2025, 1, 1, 15), (date(2025, 1, 1), date(2025, 1, 2))),
        (at(2025, 1, 1, 23, 59), at(2025, 1, 2, 0, 1), (date(2025, 1, 1), date(2025, 1, 3))),
        # Offsets count in UTC: 01:00+02:00 is 23:00 the day before.
        (at(2025, 1, 2, 1, tz=timezone(timedelta(hours=2))), at(2025, 1, 2, 0),
         (date(2025, 1, 1), date(2025, 1, 2))),
        (datetime(2025, 1, 1), datetime(2025, 1, 3), (date(2025, 1, 1), date(2025, 1, 3))),
        (at(2024, 1, 1, 0), at(2025, 2, 4, 0), (date(2024, 1, 1), date(2025, 2, 4))),  # 400
    ],
)  # fmt: skip
def test_r24_day_range_covers_the_utc_days_overlapping_from_to(start, end, expected):
    assert day_range(start, end) == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (at(2025, 1, 2), at(2025, 1, 2), "must be after from"),
        (at(2025, 1, 2), at(2025, 1, 1), "must be after from"),
        (at(2024, 1, 1, 0), at(2025, 2, 4, 0, 1), "covers 401 days; at most 400"),
    ],
)
def test_r24_day_range_refuses_empty_backwards_and_too_long(start, end, message):
    with pytest.raises(InvalidInput, match=message):
        day_range(start, end)


def test_r24_dimensions_refuse_a_repeated_one():
    assert dimensions(["KIND", D.DAY]) == (D.KIND, D.DAY)
    with pytest.raises(InvalidInput, match="groupBy names DAY twice"):
        dimensions([D.DAY, D.KIND, D.DAY])


DELTAS = [
    delta(day=date(2025, 2, 2), wb=WB1, table="t2", provider="hunter", actions=90, credits=45 * U,
          results=90),
    delta(day=date(2025, 2, 1), wb=WB2, table=None, provider=None, kind="SOURCING", actions=0,
          credits=0, results=500),
    delta(day=date(2025, 2, 1), wb=WB1, table="t1", actions=100, credits=50 * U, results=100),
    delta(day=date(2025, 2, 2), wb=WB1, table="t1", actions=0, credits=-5 * U, results=0,
          cycle=FEB),
]  # fmt: skip


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ((), [UsageRow(actions=190, credits=90 * U, results=690)]),
        ((D.DAY,), [
            UsageRow(day=date(2025, 2, 1), actions=100, credits=50 * U, results=600),
            UsageRow(day=date(2025, 2, 2), actions=90, credits=40 * U, results=90),
        ]),
        ((D.CYCLE,), [
            UsageRow(cycle_start=JAN, actions=190, credits=95 * U, results=690),
            UsageRow(cycle_start=FEB, actions=0, credits=-5 * U, results=0),
        ]),
        ((D.WORKBOOK,), [  # by name: "Alpha" (WB2) before "Beta" (WB1)
            UsageRow(workbook_id=WB2, workbook_name="Alpha", actions=0, credits=0, results=500),
            UsageRow(workbook_id=WB1, workbook_name="Beta", actions=190, credits=90 * U,
                     results=190),
        ]),
        ((D.TABLE, D.PROVIDER), [  # "none" first
            UsageRow(actions=0, credits=0, results=500),
            UsageRow(table_id="t1", provider="linkedin", actions=100, credits=45 * U,
                     results=100),
            UsageRow(table_id="t2", provider="hunter", actions=90, credits=45 * U, results=90),
        ]),
        ((D.KIND, D.DAY), [
            UsageRow(kind="ENRICHMENT", day=date(2025, 2, 1), actions=100, credits=50 * U,
                     results=100),
            UsageRow(kind="ENRICHMENT", day=date(2025, 2, 2), actions=90, credits=40 * U,
                     results=90),
            UsageRow(kind="SOURCING", day=date(2025, 2, 1), actions=0, credits=0, results=500),
        ]),
    ],
)  # fmt: skip
def test_r24_group_and_sort_by_the_dimensions_in_order(dims, expected):
    rows = with_names(group_deltas(DELTAS, dims), {WB1: "Beta", WB2: "Alpha"})
    assert sort_rows(rows, dims) == expected


def test_r24_no_dimension_and_no_usage_is_one_row_of_zeros():
    assert group_deltas([], ()) == [UsageRow()]
    assert group_deltas([], (D.DAY,)) == []


def test_r24_csv_columns_follow_group_by_and_quote_formulas():
    rows = [
        UsageRow(kind="AI", day=date(2025, 2, 1), workbook_id=WB1, workbook_name="=SUM(A1)",
                 provider="large", actions=3, credits=12_345, results=3),
        UsageRow(kind="ENRICHMENT", day=date(2025, 2, 2), workbook_id=WB2,
                 workbook_name="Leads, EU", actions=40, credits=-5 * U, results=40,
                 own_key_results=40, own_key_savings=20 * U),
    ]  # fmt: skip
    assert to_csv(rows, (D.KIND, D.DAY, D.WORKBOOK, D.PROVIDER)) == (
        "kind,day,workbookId,workbookName,provider,actions,dataCredits,results,ownKeyResults,"
        "ownKeySavings\r\n"
        f"AI,2025-02-01,{WB1},'=SUM(A1),large,3,1.2345,3,0,0\r\n"
        f'ENRICHMENT,2025-02-02,{WB2},"Leads, EU",,40,-5,40,40,20\r\n'
    )
    assert to_csv([UsageRow(cycle_start=JAN)], (D.CYCLE,)) == (
        "cycleStart,actions,dataCredits,results,ownKeyResults,ownKeySavings\r\n"
        "2025-01-31T10:00:00+00:00,0,0,0,0,0\r\n"
    )


CYCLE = datetime(2025, 2, 15, tzinfo=UTC)


def _record(n: int, **changes: object) -> ChargeRecord:
    """A charge as a batch writes it; `n` keeps ids and keys apart."""
    fields: dict[str, object] = {
        "id": uuid.UUID(int=n),
        "workspace_id": uuid.UUID(int=999),
        "workbook_id": WB1,
        "table_id": "t1",
        "kind": "ENRICHMENT",
        "provider": "linkedin",
        "data_type": "profile",
        "model": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "own_api_key": False,
        "results": 1,
        "actions": 1,
        "credits": 5000,
        "refunded_results": 0,
        "refunded_credits": 0,
        "spend_epoch": None,
        "idempotency_key": f"k-{n}",
        "created_at": datetime(2025, 3, 1, 23, 30, tzinfo=UTC),
        "run_id": None,
        "sent_at": None,
        "period_start": CYCLE,
        **changes,
    }
    return ChargeRecord(**fields)  # type: ignore[arg-type]


BATCH_CHARGES = [
    _record(1),
    _record(2, credits=10_000, results=2, actions=2),  # same key as 1, other amounts
    _record(3, table_id="t2"),
    _record(4, own_api_key=True),  # Actions only (R5)
    _record(5, kind="AI", provider=None, data_type=None, model="small", credits=37),
    _record(6, kind="AI", provider=None, data_type=None, model="large", credits=91),
    _record(7, kind="SOURCING", provider=None, actions=0, credits=0, results=40),  # free
    _record(8, created_at=datetime(2025, 3, 2, 0, 30, tzinfo=UTC)),  # the next UTC day
    _record(9, created_at=datetime(2025, 3, 2, 1, 30, tzinfo=timezone(timedelta(hours=1)))),
    _record(10, period_start=datetime(2025, 3, 1, 12, tzinfo=UTC)),  # another cycle
    _record(11, workbook_id=WB2, table_id=None),
]


@pytest.mark.parametrize("count", [1, 2, 5, len(BATCH_CHARGES)])
def test_r24_a_batch_counts_in_history_as_its_charges_one_by_one(count):
    charges = BATCH_CHARGES[:count]
    one_by_one = sum_deltas(charge_usage(c) for c in charges)
    assert sum_deltas(charges_usage(charges)) == one_by_one
    assert len(charges_usage(charges)) <= count


def test_r24_a_batch_of_alike_charges_is_one_rollup_addition():
    charges = [_record(n) for n in range(1000)]
    assert charges_usage(charges) == [
        delta(day=date(2025, 3, 1), actions=1000, credits=1000 * U // 2, results=1000, cycle=CYCLE)
    ]


def test_r24_charges_either_side_of_a_dst_fold_are_counted_apart():
    new_york = ZoneInfo("America/New_York")
    early = datetime(2025, 11, 2, 1, 30, tzinfo=new_york)  # 05:30 UTC
    late = early.replace(fold=1)  # 06:30 UTC, yet equal in Python
    charges = [_record(1, period_start=early), _record(2, period_start=late)]
    assert sum_deltas(charges_usage(charges)) == sum_deltas(charge_usage(c) for c in charges)
    assert len(charges_usage(charges)) == 2
