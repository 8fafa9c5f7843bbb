"""Charges, refunds and estimates, with their inputs."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import get_object_definition
from strawberry.types.arguments import InputContext
from strawberry.utils.str_converters import to_camel_case

from app import kinds, models
from app.units import units_to_credits
from app.usage.items import ChargeRecord
from graphql_schema.enums import ErrorCode, UsageKind


@strawberry.type(description="One recorded usage report and what it cost on both meters.")
class Charge:
    # A plain field, set by `of`: strawberry reads it without a resolver call and an Info per
    # result (about 3% of a 1,000-item batch's instructions).
    id: strawberry.ID
    row: strawberry.Private[models.Charge | ChargeRecord]  # stored, or just written

    @classmethod
    def of(cls, row: models.Charge | ChargeRecord) -> Charge:
        return cls(id=strawberry.ID(str(row.id)), row=row)

    @strawberry.field
    def actions(self) -> int:
        return self.row.actions

    @strawberry.field
    def data_credits(self) -> decimal.Decimal:
        return units_to_credits(self.row.credits)

    @strawberry.field
    def results(self) -> int:
        return self.row.results

    @strawberry.field
    def kind(self) -> UsageKind:
        return self.row.kind  # type: ignore[return-value]  # a str: looked up by value

    @strawberry.field
    def provider(self) -> str | None:
        return self.row.provider

    @strawberry.field
    def data_type(self) -> str | None:
        return self.row.data_type

    @strawberry.field(description="The AI model, for kind AI.")
    def model(self) -> str | None:
        return self.row.model

    @strawberry.field
    def own_api_key(self) -> bool:
        return self.row.own_api_key

    @strawberry.field
    def workbook_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.workbook_id))

    @strawberry.field
    def table_id(self) -> str | None:
        return self.row.table_id

    @strawberry.field
    def refunded_results(self) -> int:
        return self.row.refunded_results

    @strawberry.field
    def refunded_data_credits(self) -> decimal.Decimal:
        return units_to_credits(self.row.refunded_credits)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type
class Refund:
    row: strawberry.Private[models.Refund]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def charge_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.charge_id))

    @strawberry.field
    def results(self) -> int:
        return self.row.results

    @strawberry.field
    def data_credits(self) -> decimal.Decimal:
        return units_to_credits(self.row.credits)

    @strawberry.field
    def reason(self) -> str | None:
        return self.row.reason

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type(description="One option of a planned run: its expected results and cost.")
class EstimateOption:
    kind: UsageKind
    provider: str | None
    data_type: str | None
    model: str | None
    own_api_key: bool
    records: int
    results: int = strawberry.field(description="Expected billable results (records × hitRate).")
    actions: int
    data_credits: decimal.Decimal


@strawberry.type(description="Whether the workspace could take the whole run now (R7, R25).")
class EstimateCoverage:
    covered: bool
    refusal: ErrorCode | None = strawberry.field(
        description="The refusal a charge of the whole run would meet first; null if covered."
    )
    actions_remaining: int
    actions_covered: bool
    data_credits_available: decimal.Decimal
    data_credits_covered: bool
    workbook_limit_remaining: decimal.Decimal | None = strawberry.field(
        description="What the workbook may still spend under its limit; null: no limit."
    )
    workbook_limit_covered: bool


@strawberry.type(description="What a run would cost (R7); estimating costs nothing.")
class Estimate:
    actions: int
    data_credits: decimal.Decimal
    options: list[EstimateOption]
    coverage: EstimateCoverage


@strawberry.input
class RecordUsageInput:
    workbook_id: strawberry.ID
    kind: UsageKind
    results: int
    idempotency_key: str
    table_id: str | None = None
    provider: str | None = None
    data_type: str | None = None
    run_id: strawberry.ID | None = None
    own_api_key: bool | None = False
    sent_at: datetime | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


@strawberry.input
class RefundInput:
    charge_id: strawberry.ID
    idempotency_key: str
    results: int | None = None
    reason: str | None = None


@strawberry.input
class EstimateOptionInput:
    kind: UsageKind
    provider: str | None = None
    data_type: str | None = None
    own_api_key: bool | None = False
    model: str | None = None
    input_tokens: int | None = strawberry.field(default=None, description="AI: per record.")
    output_tokens: int | None = strawberry.field(default=None, description="AI: per record.")
    records: int | None = strawberry.field(
        default=None, description="Defaults to the estimate's records."
    )
    hit_rate: decimal.Decimal | None = strawberry.field(
        default=None, description="Expected share of records with a result, 0 to 1."
    )


@strawberry.input(
    description="A planned run: one option from the top-level fields (kind ...), or several"
    " in `options` (e.g. profile, then email, then validation), not both."
)
class EstimateInput:
    records: int
    kind: UsageKind | None = None
    provider: str | None = None
    data_type: str | None = None
    own_api_key: bool | None = False
    model: str | None = None
    input_tokens: int | None = strawberry.field(default=None, description="AI: per record.")
    output_tokens: int | None = strawberry.field(default=None, description="AI: per record.")
    hit_rate: decimal.Decimal | None = strawberry.field(
        default=None, description="Expected share of records with a result, 0 to 1."
    )
    options: list[EstimateOptionInput] | None = None
    workbook_id: strawberry.ID | None = strawberry.field(
        default=None, description="Check the workbook's spend limit too."
    )


def _fast_input(cls: type) -> None:
    """Build `cls` straight from its GraphQL value (already validated and parsed by
    graphql-core) instead of strawberry converting each field of each item on its own: a
    batch of 1,000 reports spent about 70 ms there. Only enum fields need converting. It reads
    nothing of `context`: RecordUsageBatchInput passes its own for every item."""
    definition = get_object_definition(cls, strict=True)
    names = {to_camel_case(f.python_name): f.python_name for f in definition.fields}
    enums = {"kind": kinds.UsageKind}

    def from_input(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        args = {}
        for name, raw in value.items():
            python_name = names[name]
            convert = enums.get(python_name)
            args[python_name] = convert(raw) if convert is not None and raw is not None else raw
        return target(**args)

    definition.from_input = from_input


_fast_input(RecordUsageInput)
