"""Events (R34) and alerts (R35)."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app import models
from app.events.alerts import threshold_value
from app.events.store import data_of, events_cursor
from app.kinds import Meter as DomainMeter
from graphql_schema.enums import Meter
from graphql_schema.types.ledger import PageInfo


@strawberry.type(description="Something that happened to the workspace (R34).")
class Event:
    row: strawberry.Private[models.Event]

    @strawberry.field(description="Also the webhook-id of its deliveries.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def type(self) -> str:
        return self.row.type

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="The payload API.md lists for the type, with workspaceId.")
    def data(self) -> JSON:
        return data_of(self.row)  # type: ignore[return-value]  # JSON is an alias of Any


@strawberry.type
class EventEdge:
    cursor: str
    node: Event


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, events: list[models.Event], has_next_page: bool) -> EventConnection:
        edges = [EventEdge(cursor=events_cursor(e), node=Event(row=e)) for e in events]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end))


@strawberry.input
class AlertInput:
    meter: Meter
    threshold: decimal.Decimal = strawberry.field(
        description="DATA_CREDITS: an amount of credits. ACTIONS: a percent of capacity, 1-100."
    )


@strawberry.type(description="A threshold on a meter; fires once a crossing (R35).")
class Alert:
    row: strawberry.Private[models.Alert]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def meter(self) -> Meter:
        return DomainMeter(self.row.meter)

    @strawberry.field
    def threshold(self) -> decimal.Decimal:
        return threshold_value(self.row.meter, self.row.threshold)

    @strawberry.field(description="It fires at the next crossing; false once it has fired.")
    def armed(self) -> bool:
        return self.row.armed

    @strawberry.field
    def last_fired_at(self) -> datetime | None:
        return self.row.last_fired_at
