"""Charges, refunds and estimates, with their inputs."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from app import models
from app.units import units_to_credits
from graphql_schema.enums import UsageKind


@strawberry.type(description="One recorded usage report and what it cost on both meters.")
class Charge:
    row: strawberry.Private[models.Charge]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

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
        return self.row.kind  # type: ignore[return-value]

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
        return strawberry.ID(str(self.row.workbook_id))  # type: ignore[attr-defined]

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
        return strawberry.ID(str(self.row.charge_id))  # type: ignore[attr-defined]

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


@strawberry.type(description="What a run would cost (R7); estimating costs nothing.")
class Estimate:
    actions: int
    data_credits: decimal.Decimal


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
class EstimateInput:
    kind: UsageKind
    records: int
    provider: str | None = None
    data_type: str | None = None
    own_api_key: bool | None = False
    model: str | None = None
    input_tokens: int | None = strawberry.field(default=None, description="AI: per record.")
    output_tokens: int | None = strawberry.field(default=None, description="AI: per record.")
