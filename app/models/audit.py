"""The audit log (R39): every change made with an admin or operator key, append-only."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """Who changed what, with the values before and after, in the transaction of the change."""

    id = fields.BigIntField(primary_key=True)
    workspace_id = fields.UUIDField(null=True)  # None: the operator changed the catalog
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=200)  # the key's name, or "operator"
    api_key_id = fields.UUIDField(null=True)
    action = fields.CharField(max_length=64)
    target = fields.CharField(max_length=200, null=True)
    before = fields.TextField(null=True)  # JSON
    after = fields.TextField(null=True)  # JSON
    request_id = fields.CharField(max_length=128, null=True)

    class Meta:
        table = "audit_entry"
        indexes = (("workspace_id", "id"),)
