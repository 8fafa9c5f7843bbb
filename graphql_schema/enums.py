"""GraphQL enums over the domain's enums: one definition of each value set.

`strawberry.enum` marks the class it is given and returns that same class, so each name below
is the domain enum itself (a type to mypy), registered under its GraphQL name.
"""

import strawberry

from app import kinds
from app.errors import ErrorCode as DomainErrorCode

strawberry.enum(kinds.UsageKind, name="UsageKind")
strawberry.enum(kinds.Meter, name="Meter")
strawberry.enum(kinds.BillingInterval, name="BillingInterval")
strawberry.enum(kinds.Role, name="Role")
strawberry.enum(kinds.WorkspaceStatus, name="WorkspaceStatus")
strawberry.enum(kinds.EntryType, name="EntryType")
strawberry.enum(DomainErrorCode, name="ErrorCode")
strawberry.enum(kinds.RunStatus, name="RunStatus")
strawberry.enum(
    kinds.ChargeKind,
    name="BillingChargeKind",
    description="Why a cycle is billed: its plan fee, an upgrade, a top-up.",
)

UsageKind = kinds.UsageKind
Meter = kinds.Meter
BillingInterval = kinds.BillingInterval
Role = kinds.Role
WorkspaceStatus = kinds.WorkspaceStatus
EntryType = kinds.EntryType
ErrorCode = DomainErrorCode
RunStatus = kinds.RunStatus
BillingChargeKind = kinds.ChargeKind
