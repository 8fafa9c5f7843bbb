"""What a charge request carries through its transaction: the reports, each item's state,
the rows locked for it, and the charge records written (app.usage.charging)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from app.catalog import Catalog
from app.errors import Refused
from app.events.watch import Watched

if TYPE_CHECKING:
    from app.usage.topping import Buying
from app.models import Charge
from app.usage.costs import Usage
from app.usage.pricing import Cost
from app.usage.rules import LimitState, RunState, WorkspaceMeters

OPERATION = "recordUsage"
MAX_BATCH = 1000


class ChargeRecord(NamedTuple):
    """A charge just written, as its `charge` row reads; an ORM object per item costs a
    batch about 20 ms for nothing, and a frozen dataclass of 22 fields 3 µs an item to build.
    Replays return the stored `Charge` rows instead."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    workbook_id: uuid.UUID
    table_id: str | None
    kind: str
    provider: str | None
    data_type: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    own_api_key: bool
    results: int
    actions: int
    credits: int
    refunded_results: int
    refunded_credits: int
    spend_epoch: int | None
    idempotency_key: str
    created_at: datetime
    run_id: uuid.UUID | None
    sent_at: datetime | None
    period_start: datetime


Outcome = Charge | ChargeRecord | Refused
# A batch names few workbooks and runs: parse each id once.
parse_uuid = functools.lru_cache(maxsize=1024)(uuid.UUID)


@dataclass(frozen=True)
class UsageReport:
    workbook_id: str
    usage: Usage
    idempotency_key: str
    table_id: str | None = None
    run_id: str | None = None
    sent_at: datetime | None = None


class Seen(NamedTuple):
    """A single charge's workspace and workbook rows as its first read found them, unlocked
    (PostgreSQL), with each row's version (`xmin`): app.usage.optimistic writes the charge
    only if both rows are still those versions when it does."""

    workspace: dict[str, Any]  # app.usage.rows.WORKSPACE_COLUMNS
    workbook: dict[str, Any]  # app.usage.rows.WORKBOOK_COLUMNS
    workspace_version: str
    workbook_version: str


@dataclass
class Item:
    report: UsageReport
    label: str  # how messages name the item: "" for a single report, "items[3]: " in a batch
    fingerprint: str = ""
    cost: Cost | None = None
    charge_id: uuid.UUID = field(default_factory=uuid.uuid4)
    outcome: Outcome | None = None
    first: Item | None = None  # an earlier item of the batch with the same key
    priced_at: datetime | None = None  # the instant `cost` was priced for (R40)
    catalog: Catalog | None = None  # the catalog in force then, as read
    seen: Seen | None = None  # read with the key, for app.usage.optimistic


@dataclass
class Locked:
    meters: WorkspaceMeters
    period_start: datetime
    limits: dict[str, LimitState]
    epochs: dict[str, int]
    runs: dict[str, RunState]
    ttl: dict[str, int]
    watched: Watched  # the state R34's and R35's events were last fired from
    buying: Buying | None  # the workspace's auto top-up (R37), if it has one


def as_datetime(value: Any) -> Any:
    """SQLite hands timestamps back as text."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value
