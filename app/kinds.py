"""What each kind of usage costs in Actions (R2, R3)."""

from __future__ import annotations

from enum import StrEnum


class UsageKind(StrEnum):
    # Billable: one Action per successful result (R2).
    ENRICHMENT = "ENRICHMENT"
    AI = "AI"
    SIGNAL = "SIGNAL"
    EMAIL_SEND = "EMAIL_SEND"
    SLACK_POST = "SLACK_POST"
    NOTION_BRIEF = "NOTION_BRIEF"
    SEQUENCER_LEAD = "SEQUENCER_LEAD"
    SEQUENCER_EXPORT = "SEQUENCER_EXPORT"
    CRM_EXPORT = "CRM_EXPORT"
    WAREHOUSE_EXPORT = "WAREHOUSE_EXPORT"
    HTTP_API_CALL = "HTTP_API_CALL"
    ADS_AUDIENCE_EXPORT = "ADS_AUDIENCE_EXPORT"
    # Free: no Actions, no Data Credits, still recorded in history (R3).
    SOURCING = "SOURCING"
    CRM_IMPORT = "CRM_IMPORT"
    WAREHOUSE_IMPORT = "WAREHOUSE_IMPORT"
    WEBHOOK_IMPORT = "WEBHOOK_IMPORT"
    FORMULA = "FORMULA"
    MANUAL_ENTRY = "MANUAL_ENTRY"
    SCULPTOR = "SCULPTOR"
    AUDIENCE_CREATE = "AUDIENCE_CREATE"
    CSV_EXPORT = "CSV_EXPORT"


FREE_KINDS = frozenset(
    {
        UsageKind.SOURCING,
        UsageKind.CRM_IMPORT,
        UsageKind.WAREHOUSE_IMPORT,
        UsageKind.WEBHOOK_IMPORT,
        UsageKind.FORMULA,
        UsageKind.MANUAL_ENTRY,
        UsageKind.SCULPTOR,
        UsageKind.AUDIENCE_CREATE,
        UsageKind.CSV_EXPORT,
    }
)


def is_billable(kind: UsageKind) -> bool:
    return kind not in FREE_KINDS


class Meter(StrEnum):
    ACTIONS = "ACTIONS"
    DATA_CREDITS = "DATA_CREDITS"
    # Credits set aside for runs: part of the balance that other work cannot spend. Its ledger
    # entries (HOLD, SETTLE, RELEASE) sum to the held total; available = balance - held.
    HELD_CREDITS = "HELD_CREDITS"


class BillingInterval(StrEnum):
    MONTHLY = "MONTHLY"
    ANNUAL = "ANNUAL"


class Role(StrEnum):
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"


class WorkspaceStatus(StrEnum):
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    CANCELED = "CANCELED"


class EntryType(StrEnum):
    """Ledger entry types (R24)."""

    GRANT = "GRANT"
    CHARGE = "CHARGE"
    REFUND = "REFUND"
    TOP_UP = "TOP_UP"
    ROLLOVER_CAP = "ROLLOVER_CAP"
    EXPIRY = "EXPIRY"
    ADJUSTMENT = "ADJUSTMENT"
    HOLD = "HOLD"  # a run sets credits aside
    SETTLE = "SETTLE"  # a run's charge consumes its hold
    RELEASE = "RELEASE"  # the unused hold returns to the available balance


class ChargeKind(StrEnum):
    """Why a cycle is billed money."""

    PLAN_FEE = "PLAN_FEE"  # a cycle's price, billed when the cycle opens
    PRORATION = "PRORATION"  # an upgrade's price difference for the rest of the cycle (R20)
    TOP_UP = "TOP_UP"  # Data Credits bought at the base price plus 30% (R19)


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"  # by the client: no new work, results sent before still count (R23)
    FINISHED = "FINISHED"
