"""The plan and price catalogs, seeded from a data file and editable by the operator (R4)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Plan(Model):
    code = fields.CharField(max_length=32, primary_key=True)
    name = fields.CharField(max_length=100)
    rank = fields.IntField()
    intervals = fields.CharField(max_length=64)  # "MONTHLY,ANNUAL"
    monthly_actions = fields.IntField()
    base_fee_cents = fields.BigIntField()
    bill_credits = fields.BooleanField(default=True)
    features = fields.CharField(max_length=255, default="")  # comma separated

    class Meta:
        table = "plan"


class PlanTier(Model):
    id = fields.IntField(primary_key=True)
    plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "tally.Plan", related_name="tiers", on_delete=fields.RESTRICT
    )
    plan_id: str
    monthly_credits = fields.IntField()

    class Meta:
        table = "plan_tier"
        unique_together = (("plan", "monthly_credits"),)


class Price(Model):
    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=64)
    data_type = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=32)
    credits_units = fields.BigIntField()

    class Meta:
        table = "price"
        unique_together = (("provider", "data_type"),)


class AiModel(Model):
    code = fields.CharField(max_length=64, primary_key=True)
    input_units_per_1k = fields.BigIntField()
    output_units_per_1k = fields.BigIntField()

    class Meta:
        table = "ai_model"


class BillingSetting(Model):
    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.CharField(max_length=255)

    class Meta:
        table = "billing_setting"


class CatalogVersion(Model):
    """The whole catalog in force from `effective_at` on (R40)."""

    # Append-only. The catalog in force at an instant is the latest version effective at or
    # before it (the one applied last among those effective at the same instant). `body` is
    # the catalog in the file format (app.catalog.files), as `tally catalog show` prints it.
    # The tables above (plan, plan_tier, price, ai_model, billing_setting) held the catalog
    # before migration 0010, which made their rows the first version; nothing reads them now.
    id = fields.BigIntField(primary_key=True)
    effective_at = fields.DatetimeField()
    applied_at = fields.DatetimeField()
    actor = fields.CharField(max_length=200)  # "operator", or "seed" for the first version
    body = fields.TextField()

    class Meta:
        table = "catalog_version"
        indexes = (("effective_at", "id"),)
