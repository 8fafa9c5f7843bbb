"""GraphQL enums over the domain's enums: one definition of each value set."""

import strawberry

from app import kinds
from app.errors import ErrorCode as DomainErrorCode

UsageKind = strawberry.enum(kinds.UsageKind, name="UsageKind")
Meter = strawberry.enum(kinds.Meter, name="Meter")
BillingInterval = strawberry.enum(kinds.BillingInterval, name="BillingInterval")
Role = strawberry.enum(kinds.Role, name="Role")
WorkspaceStatus = strawberry.enum(kinds.WorkspaceStatus, name="WorkspaceStatus")
EntryType = strawberry.enum(kinds.EntryType, name="EntryType")
ErrorCode = strawberry.enum(DomainErrorCode, name="ErrorCode")
RunStatus = strawberry.enum(kinds.RunStatus, name="RunStatus")
BillingChargeKind = strawberry.enum(
    kinds.ChargeKind,
    name="BillingChargeKind",
    description="Why a cycle is billed: its plan fee, an upgrade, a top-up.",
)
