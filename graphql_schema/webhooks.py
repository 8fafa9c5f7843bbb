"""Webhooks (R36), admin only: endpoints, deliveries, resends and test events."""

from __future__ import annotations

import strawberry

from app.webhooks import deliveries, endpoints
from graphql_schema.context import Info
from graphql_schema.types.webhooks import (
    CreatedWebhookEndpoint,
    WebhookDelivery,
    WebhookDeliveryConnection,
    WebhookEndpoint,
    WebhookEndpointInput,
)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="R36, admin: the workspace's endpoints, deleted ones not.")
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        workspace_id = await info.context.admin_workspace_id()
        return [WebhookEndpoint(row=e) for e in await endpoints.list_endpoints(workspace_id)]

    @strawberry.field(description="R36, admin: deliveries, newest first, every attempt counted.")
    async def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: strawberry.ID | None = None,
        event_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> WebhookDeliveryConnection:
        workspace_id = await info.context.admin_workspace_id()
        page = await deliveries.deliveries_page(
            workspace_id, endpoint_id=endpoint_id, event_id=event_id, first=first, after=after
        )
        return WebhookDeliveryConnection.of(page.deliveries, page.has_next_page)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="R36, admin: the secret is shown once.")
    async def create_webhook_endpoint(
        self, info: Info, input: WebhookEndpointInput
    ) -> CreatedWebhookEndpoint:
        workspace_id = await info.context.admin_workspace_id()
        endpoint, secret = await endpoints.create_endpoint(
            workspace_id, input.to_domain(), info.context.now, _allow_private(info)
        )
        return CreatedWebhookEndpoint(endpoint=WebhookEndpoint(row=endpoint), secret=secret)

    @strawberry.mutation(description="R36, admin: replaces url, types, description; enabled: "
                         "true re-enables.")  # fmt: skip
    async def update_webhook_endpoint(
        self, info: Info, id: strawberry.ID, input: WebhookEndpointInput
    ) -> WebhookEndpoint:
        workspace_id = await info.context.admin_workspace_id()
        endpoint = await endpoints.update_endpoint(
            workspace_id, id, input.to_domain(), info.context.now, _allow_private(info)
        )
        return WebhookEndpoint(row=endpoint)

    @strawberry.mutation(description="R36, admin: its pending deliveries stop; its log stays.")
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> WebhookEndpoint:
        workspace_id = await info.context.admin_workspace_id()
        endpoint = await endpoints.delete_endpoint(workspace_id, id, info.context.now)
        return WebhookEndpoint(row=endpoint)

    @strawberry.mutation(description="R36, admin: a new secret, shown once; the old one signs "
                         "for 24 more hours.")  # fmt: skip
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> CreatedWebhookEndpoint:
        workspace_id = await info.context.admin_workspace_id()
        endpoint, secret = await endpoints.rotate_secret(workspace_id, id, info.context.now)
        return CreatedWebhookEndpoint(endpoint=WebhookEndpoint(row=endpoint), secret=secret)

    @strawberry.mutation(description="R36, admin: a new delivery now (same webhook-id), to the "
                         "endpoint named or every enabled one subscribed.")  # fmt: skip
    async def resend_event(
        self, info: Info, event_id: strawberry.ID, endpoint_id: strawberry.ID | None = None
    ) -> list[WebhookDelivery]:
        workspace_id = await info.context.admin_workspace_id()
        rows = await deliveries.resend_event(workspace_id, event_id, endpoint_id, info.context.now)
        return [WebhookDelivery(row=d) for d in rows]

    @strawberry.mutation(description="R36, admin: a test.ping event to this endpoint only.")
    async def send_test_event(self, info: Info, endpoint_id: strawberry.ID) -> WebhookDelivery:
        workspace_id = await info.context.admin_workspace_id()
        row = await deliveries.send_test_event(workspace_id, endpoint_id, info.context.now)
        return WebhookDelivery(row=row)


def _allow_private(info: Info) -> bool:
    return info.context.settings.webhook_allow_private
