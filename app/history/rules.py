"""Usage history (R24): what each charge and refund adds to a day, and how rows are grouped.

Pure: values in, values out. A charge or refund becomes a `UsageDelta` (the day and cycle it
counts in, its workbook, table, provider and kind, and what it moved); deltas are summed into
daily rollups, and rollups are grouped by the dimensions a client asks for.

- A day is the UTC date of the charge or refund; a cycle is the stored cycle it counted in
  (R33), so the two are independent.
- For AI usage the provider is the model name (`small`, `large`).
- A refund counts on its own day and cycle, under its charge's workbook, table, provider and
  kind, with negative Data Credits and no Actions or results (R22): past days never change.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from app.errors import InvalidInput
from app.units import units_to_credits

MAX_DAYS = 400  # a year of history and a month either side
AI = "AI"


class UsageDimension(StrEnum):
    DAY = "DAY"
    CYCLE = "CYCLE"
    WORKBOOK = "WORKBOOK"
    TABLE = "TABLE"
    PROVIDER = "PROVIDER"
    KIND = "KIND"


@dataclass(frozen=True)
class UsageDelta:
    """What one charge or refund (or a sum of them) adds to one rollup row."""

    day: date
    period_start: datetime
    workbook_id: uuid.UUID
    table_id: str | None
    provider: str | None
    kind: str
    actions: int
    credits: int  # Data Credit units (R1)
    results: int

    def key(self) -> tuple[date, datetime, uuid.UUID, str, str, str]:
        """The rollup's unique key; no table or provider is '' (NULLs never conflict)."""
        return (
            self.day,
            self.period_start,
            self.workbook_id,
            self.table_id or "",
            self.provider or "",
            self.kind,
        )

    def moves_nothing(self) -> bool:
        return self.actions == 0 and self.credits == 0 and self.results == 0


@dataclass(frozen=True)
class UsageRow:
    """One answer row: the keys it was grouped by (others None) and the sums."""

    day: date | None = None
    cycle_start: datetime | None = None
    workbook_id: uuid.UUID | None = None
    workbook_name: str | None = None
    table_id: str | None = None
    provider: str | None = None
    kind: str | None = None
    actions: int = 0
    credits: int = 0
    results: int = 0
    own_key_results: int = 0  # of `results`, delivered with the customer's own key (R5)
    own_key_savings: int = 0  # Data Credit units those would have cost (app.history.own_keys)


# Which UsageRow field holds each dimension's key (WORKBOOK also fills workbook_name).
KEY_FIELD = {
    UsageDimension.DAY: "day",
    UsageDimension.CYCLE: "cycle_start",
    UsageDimension.WORKBOOK: "workbook_id",
    UsageDimension.TABLE: "table_id",
    UsageDimension.PROVIDER: "provider",
    UsageDimension.KIND: "kind",
}


def utc(value: datetime) -> datetime:
    """An instant in UTC; a time without an offset is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def history_provider(kind: str, provider: str | None, model: str | None) -> str | None:
    """AI usage is shown under its model; everything else under its provider, if any."""
    label = model if kind == AI else provider
    return label or None


def delta_of_charge(
    *,
    created_at: datetime,
    period_start: datetime,
    workbook_id: uuid.UUID,
    table_id: str | None,
    kind: str,
    provider: str | None,
    model: str | None,
    own_api_key: bool,
    actions: int,
    credits: int,
    results: int,
) -> UsageDelta:
    """A charge as history sees it: free ones at zero (R3), own-key ones as Actions only (R5)."""
    return UsageDelta(
        day=utc(created_at).date(),
        period_start=utc(period_start),
        workbook_id=workbook_id,
        table_id=table_id or None,
        provider=history_provider(kind, provider, model),
        kind=kind,
        actions=actions,
        credits=0 if own_api_key else credits,
        results=results,
    )


def delta_of_refund(
    *,
    created_at: datetime,
    period_start: datetime,
    workbook_id: uuid.UUID,
    table_id: str | None,
    kind: str,
    provider: str | None,
    model: str | None,
    credits: int,
) -> UsageDelta:
    """A refund nets Data Credits only: Actions are not refunded and results stay as charged
    (R22). It lands on the day and in the cycle it happened, never rewriting a past day."""
    return UsageDelta(
        day=utc(created_at).date(),
        period_start=utc(period_start),
        workbook_id=workbook_id,
        table_id=table_id or None,
        provider=history_provider(kind, provider, model),
        kind=kind,
        actions=0,
        credits=-credits,
        results=0,
    )


class _Amounts(Protocol):
    # Read-only, so frozen dataclasses (UsageDelta) and named tuples (ChargeRecord) qualify.
    @property
    def actions(self) -> int: ...
    @property
    def credits(self) -> int: ...
    @property
    def results(self) -> int: ...


_Amounted = TypeVar("_Amounted", bound=_Amounts)


def sum_amounts(
    items: Iterable[_Amounted], key: Callable[[_Amounted], tuple[Any, ...]]
) -> dict[tuple[Any, ...], tuple[_Amounted, list[int]]]:
    """Items (with actions, credits and results) summed by key: each key's first item and its
    [actions, credits, results] totals, in the order keys first appear. Plain counters: a
    batch of 1,000 charges adds into a few dozen keys, and a frozen copy per addition was most
    of the time this took."""
    sums: dict[tuple[Any, ...], tuple[_Amounted, list[int]]] = {}
    for item in items:
        k = key(item)
        entry = sums.get(k)
        if entry is None:
            sums[k] = (item, [item.actions, item.credits, item.results])
        else:
            total = entry[1]
            total[0] += item.actions
            total[1] += item.credits
            total[2] += item.results
    return sums


def sum_deltas(deltas: Iterable[UsageDelta]) -> list[UsageDelta]:
    """One delta per rollup key, in key order, without those that move nothing.

    One upsert cannot touch a row twice, and writers that lock rows in one order cannot
    deadlock each other.
    """
    sums = sum_amounts(deltas, UsageDelta.key)
    rows = []
    for key in sorted(sums):
        first, (actions, credits, results) = sums[key]
        if actions or credits or results:
            rows.append(replace(first, actions=actions, credits=credits, results=results))
    return rows


_Summed = TypeVar("_Summed", UsageDelta, UsageRow)


def _add(a: _Summed, b: _Summed) -> _Summed:
    return replace(
        a,
        actions=a.actions + b.actions,
        credits=a.credits + b.credits,
        results=a.results + b.results,
    )


def dimensions(group_by: Sequence[UsageDimension]) -> tuple[UsageDimension, ...]:
    dims = tuple(UsageDimension(d) for d in group_by)
    for d in dims:
        if dims.count(d) > 1:
            raise InvalidInput(f"groupBy names {d.value} twice")
    return dims


def day_range(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days that overlap [start, end): (first day, the day after the last).

    `start` rounds down to its day and `end` up, so midnight to midnight is exactly those
    days and a range ending now includes today.
    """
    start, end = utc(start), utc(end)
    if end <= start:
        raise InvalidInput(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    first = start.date()
    after = end.date() if end.timetz() == time(0, tzinfo=UTC) else end.date() + timedelta(1)
    if (after - first).days > MAX_DAYS:
        raise InvalidInput(
            f"the range covers {(after - first).days} days; at most {MAX_DAYS} at a time"
        )
    return first, after


def row_of(delta: UsageDelta, dims: Sequence[UsageDimension]) -> UsageRow:
    """The delta's keys for the chosen dimensions (the others None), with its sums."""
    return UsageRow(
        day=delta.day if UsageDimension.DAY in dims else None,
        cycle_start=delta.period_start if UsageDimension.CYCLE in dims else None,
        workbook_id=delta.workbook_id if UsageDimension.WORKBOOK in dims else None,
        table_id=delta.table_id if UsageDimension.TABLE in dims else None,
        provider=delta.provider if UsageDimension.PROVIDER in dims else None,
        kind=delta.kind if UsageDimension.KIND in dims else None,
        actions=delta.actions,
        credits=delta.credits,
        results=delta.results,
    )


def group_deltas(deltas: Iterable[UsageDelta], dims: Sequence[UsageDimension]) -> list[UsageRow]:
    """Sum deltas by the chosen keys; with no dimension, one total row (zeros if empty)."""
    groups: dict[tuple[Any, ...], UsageRow] = {}
    if not dims:
        groups[()] = UsageRow()
    for delta in deltas:
        row = row_of(delta, dims)
        key = _keys(row, dims)
        seen = groups.get(key)
        groups[key] = row if seen is None else _add(seen, row)
    return list(groups.values())


def row_key(row: UsageRow, dims: Sequence[UsageDimension]) -> tuple[Any, ...]:
    """The row's keys for `dims`, in their order."""
    return _keys(row, dims)


def _keys(row: UsageRow, dims: Sequence[UsageDimension]) -> tuple[Any, ...]:
    return tuple(getattr(row, KEY_FIELD[d]) for d in dims)


def sort_rows(rows: Iterable[UsageRow], dims: Sequence[UsageDimension]) -> list[UsageRow]:
    """By the keys in groupBy order: days and cycles oldest first, workbooks by name then id,
    text by code point with "none" first. Sorted here, not in SQL, so both databases agree."""

    def sort_key(row: UsageRow) -> tuple[Any, ...]:
        parts: list[Any] = []
        for d in dims:
            value = getattr(row, KEY_FIELD[d])
            if d is UsageDimension.WORKBOOK:
                value = (row.workbook_name or "", str(value))
            parts.append((value is not None, value))
        return tuple(parts)

    return sorted(rows, key=sort_key)


def with_names(rows: Iterable[UsageRow], names: dict[uuid.UUID, str]) -> list[UsageRow]:
    return [
        replace(row, workbook_name=names.get(row.workbook_id)) if row.workbook_id else row
        for row in rows
    ]


CSV_KEY_COLUMNS = {
    UsageDimension.DAY: ("day",),
    UsageDimension.CYCLE: ("cycleStart",),
    UsageDimension.WORKBOOK: ("workbookId", "workbookName"),
    UsageDimension.TABLE: ("tableId",),
    UsageDimension.PROVIDER: ("provider",),
    UsageDimension.KIND: ("kind",),
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# After the grouped keys: the figures, then what of them came through the customer's own keys
# (`usageHistory`'s ownKeyResults and ownKeySavings), appended so earlier columns keep their place.
CSV_FIGURES = ("actions", "dataCredits", "results", "ownKeyResults", "ownKeySavings")


def csv_header(dims: Sequence[UsageDimension]) -> list[str]:
    keys = [column for d in dims for column in CSV_KEY_COLUMNS[d]]
    return [*keys, *CSV_FIGURES]


def csv_record(row: UsageRow, dims: Sequence[UsageDimension]) -> list[str]:
    """One row as text: dates and instants in ISO 8601, Data Credits as exact decimals."""
    values = {
        "day": row.day.isoformat() if row.day else "",
        "cycleStart": row.cycle_start.isoformat() if row.cycle_start else "",
        "workbookId": str(row.workbook_id or ""),
        "workbookName": _text_cell(row.workbook_name),
        "tableId": _text_cell(row.table_id),
        "provider": _text_cell(row.provider),
        "kind": row.kind or "",
    }
    keys = [values[column] for d in dims for column in CSV_KEY_COLUMNS[d]]
    figures = (row.actions, _credits(row.credits), row.results, row.own_key_results,
               _credits(row.own_key_savings))  # fmt: skip
    return [*keys, *map(str, figures)]


def _credits(units: int) -> str:
    """Data Credits as an exact decimal, never in exponent form."""
    return format(units_to_credits(units), "f")


def _text_cell(value: str | None) -> str:
    """Client-chosen text that a spreadsheet would run as a formula is quoted with '."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value or ""


def to_csv(rows: Iterable[UsageRow], dims: Sequence[UsageDimension]) -> str:
    """RFC 4180: a header, one line per row, CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(csv_header(dims))
    writer.writerows(csv_record(row, dims) for row in rows)
    return out.getvalue()
