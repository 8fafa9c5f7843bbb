"""Events, alerts and webhooks (R34-R36): what happened, who wants to know, what was sent."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.workspace import Workspace


class Event(Model):
    """One change the product of a customer may react to, written with the change itself."""

    seq = fields.BigIntField(primary_key=True)  # the order events were committed in
    id = fields.UUIDField(unique=True)  # the public id, and the webhook-id header
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="events", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    type = fields.CharField(max_length=64)
    data = fields.TextField()  # JSON, with workspaceId; amounts as strings
    created_at = fields.DatetimeField()

    class Meta:
        table = "event"
        indexes = (("workspace_id", "seq"), ("workspace_id", "type", "seq"))


class Alert(Model):
    """A threshold an admin set on a meter (R35). `armed`: it fires at the next crossing."""

    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="alerts", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    meter = fields.CharField(max_length=16)  # DATA_CREDITS or ACTIONS
    threshold = fields.BigIntField()  # Data Credit units, or a percent of Actions capacity
    armed = fields.BooleanField()
    last_fired_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "alert"
        unique_together = (("workspace_id", "meter", "threshold"),)


class WebhookEndpoint(Model):
    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="webhook_endpoints", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    url = fields.CharField(max_length=2048)
    # ",type,type," (matched with LIKE in SQL); "" for every type
    event_types = fields.TextField(default="")
    description = fields.CharField(max_length=500, null=True)
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.CharField(max_length=500, null=True)
    secret = fields.CharField(max_length=128)  # whsec_...
    previous_secret = fields.CharField(max_length=128, null=True)  # signs too, until:
    previous_secret_until = fields.DatetimeField(null=True)
    failing_since = fields.DatetimeField(null=True)  # the first failure of an unbroken run
    created_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)  # kept for its deliveries' log

    class Meta:
        table = "webhook_endpoint"
        indexes = (("workspace_id", "created_at"),)


class WebhookDelivery(Model):
    """One event to one endpoint: tried until it succeeds or its schedule runs out (R36)."""

    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="webhook_deliveries", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    event_id = fields.UUIDField()  # Event.id; events are never deleted
    endpoint: fields.ForeignKeyRelation[WebhookEndpoint] = fields.ForeignKeyField(
        "tally.WebhookEndpoint", related_name="deliveries", on_delete=fields.RESTRICT
    )
    endpoint_id: uuid.UUID
    status = fields.CharField(max_length=16)  # PENDING, SUCCEEDED, FAILED
    attempts = fields.IntField(default=0)
    # When the next attempt is due; while one is in flight, when its claim lapses.
    next_attempt_at = fields.DatetimeField(null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    last_response_status = fields.IntField(null=True)
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "webhook_delivery"
        indexes = (
            ("status", "next_attempt_at"),
            ("workspace_id", "created_at"),
            ("event_id",),
            ("endpoint_id", "created_at"),
        )


class WebhookAttempt(Model):
    id = fields.BigIntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[WebhookDelivery] = fields.ForeignKeyField(
        "tally.WebhookDelivery", related_name="attempt_rows", on_delete=fields.CASCADE
    )
    delivery_id: uuid.UUID
    attempted_at = fields.DatetimeField()
    response_status = fields.IntField(null=True)
    error = fields.CharField(max_length=500, null=True)
    duration_ms = fields.IntField()

    class Meta:
        table = "webhook_attempt"
