"""Webhook endpoints and deliveries (R36), named as API.md names them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app import models
from app.webhooks import rules
from app.webhooks.deliveries import delivery_cursor
from app.webhooks.endpoints import EndpointInput
from graphql_schema.context import Info
from graphql_schema.types.events import Event
from graphql_schema.types.ledger import PageInfo

strawberry.enum(rules.DeliveryStatus, name="DeliveryStatus")
DeliveryStatus = rules.DeliveryStatus


@strawberry.input
class WebhookEndpointInput:
    url: str = strawberry.field(description="https (http only on self-hosted networks).")
    event_types: list[str] | None = strawberry.field(
        default=None, description="The types to send; null or empty: every type."
    )
    description: str | None = None
    enabled: bool | None = strawberry.field(
        default=None, description="true re-enables a disabled endpoint; null leaves it as is."
    )

    def to_domain(self) -> EndpointInput:
        return EndpointInput(self.url, self.event_types, self.description, self.enabled)


@strawberry.type(description="Where a workspace's events are posted, signed (R36).")
class WebhookEndpoint:
    row: strawberry.Private[models.WebhookEndpoint]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def url(self) -> str:
        return self.row.url

    @strawberry.field(description="Empty: every type.")
    def event_types(self) -> list[str]:
        return rules.event_type_list(self.row.event_types)

    @strawberry.field
    def description(self) -> str | None:
        return self.row.description

    @strawberry.field
    def enabled(self) -> bool:
        return self.row.enabled

    @strawberry.field(description="Why it was disabled: a 410, 5 days of failures, an admin.")
    def disabled_reason(self) -> str | None:
        return None if self.row.enabled else self.row.disabled_reason

    @strawberry.field(description="Since when every attempt has failed; null while it succeeds.")
    def failing_since(self) -> datetime | None:
        return self.row.failing_since

    @strawberry.field(description="Until when the secret replaced by a rotation still signs.")
    def previous_secret_expires_at(self) -> datetime | None:
        return self.row.previous_secret_until

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type
class CreatedWebhookEndpoint:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="whsec_…: shown this once.")


@strawberry.type(description="One event to one endpoint, tried until it succeeds (R36).")
class WebhookDelivery:
    row: strawberry.Private[models.WebhookDelivery]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The event, and the webhook-id header of every attempt.")
    def event_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.event_id))

    @strawberry.field(description="The event delivered (its type and data).")
    async def event(self, info: Info) -> Event:
        found = await info.context.loaders.events.load(self.row.event_id)
        assert found is not None, "events are never deleted"
        return Event(row=found)

    @strawberry.field
    def endpoint_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.endpoint_id))

    @strawberry.field
    def status(self) -> DeliveryStatus:
        return DeliveryStatus(self.row.status)

    @strawberry.field
    def attempts(self) -> int:
        return self.row.attempts

    @strawberry.field
    def last_response_status(self) -> int | None:
        return self.row.last_response_status

    @strawberry.field
    def last_error(self) -> str | None:
        return self.row.last_error

    @strawberry.field
    def last_attempt_at(self) -> datetime | None:
        return self.row.last_attempt_at

    @strawberry.field(description="While PENDING: when the next attempt is due.")
    def next_attempt_at(self) -> datetime | None:
        return self.row.next_attempt_at

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo

    @classmethod
    def of(
        cls, deliveries: list[models.WebhookDelivery], has_next_page: bool
    ) -> WebhookDeliveryConnection:
        edges = [
            WebhookDeliveryEdge(cursor=delivery_cursor(d), node=WebhookDelivery(row=d))
            for d in deliveries
        ]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end))
