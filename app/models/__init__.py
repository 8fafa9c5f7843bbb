"""Database tables. Amounts are integers of minor units (R1); see app.units."""

from app.models.audit import AuditEntry
from app.models.billing import BillingCharge, Renewal
from app.models.catalog import AiModel, BillingSetting, CatalogVersion, Plan, PlanTier, Price
from app.models.events import Alert, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.history import PlanPeriod, UsageDaily
from app.models.ledger import Charge, IdempotencyRecord, LedgerEntry, Refund, Run
from app.models.workspace import ApiKey, Workbook, Workspace

__all__ = [
    "AiModel",
    "Alert",
    "ApiKey",
    "AuditEntry",
    "BillingCharge",
    "BillingSetting",
    "CatalogVersion",
    "Charge",
    "Event",
    "IdempotencyRecord",
    "LedgerEntry",
    "Plan",
    "PlanPeriod",
    "PlanTier",
    "Price",
    "Refund",
    "Renewal",
    "Run",
    "UsageDaily",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workbook",
    "Workspace",
]
