"""The operator report (issue 19): per plan and per UTC month."""

from __future__ import annotations

import decimal
from datetime import datetime

import strawberry

from app.reports import rules
from app.units import cents_to_usd, units_to_credits


@strawberry.type(
    description="One plan (its trials on a row of their own): the workspaces whose last"
    " complete cycle at `to` was on it, and the money it billed in [from, to)."
)
class OperatorReportPlan:
    plan: str = strawberry.field(description="The plan's code.")
    trial: bool = strawberry.field(description="The row of the plan's trials.")
    workspaces: int = strawberry.field(
        description="Workspaces whose last complete cycle was on this plan at its end: the"
        " Actions month (Actions renew monthly on every plan) that ended at their latest"
        " renewal at or before `to`, counted when that boundary lies in [from, to]."
    )
    used_up: int = strawberry.field(
        description="Of those, the ones that used up their Actions capacity in that cycle:"
        " Actions used >= capacity at its end (none left when it renewed)."
    )
    used_up_share: decimal.Decimal | None = strawberry.field(
        description="usedUp / workspaces, rounded half-up to 0.0001; null with no workspace."
    )
    plan_revenue: decimal.Decimal = strawberry.field(
        description="USD: plan fees and upgrade prorations billed on this plan in [from, to)."
    )
    top_up_revenue: decimal.Decimal = strawberry.field(
        description="USD: top-ups (auto top-ups included) billed on this plan in [from, to)."
    )

    @classmethod
    def of(cls, row: rules.PlanRow) -> OperatorReportPlan:
        return cls(
            plan=row.plan_code,
            trial=row.trial,
            workspaces=row.workspaces,
            used_up=row.used_up,
            used_up_share=row.used_up_share,
            plan_revenue=cents_to_usd(row.plan_cents),
            top_up_revenue=cents_to_usd(row.top_up_cents),
        )


@strawberry.type(description="One UTC calendar month of [from, to), zeros included.")
class OperatorReportMonth:
    month: str = strawberry.field(description="YYYY-MM, UTC.")
    data_credits_expired: decimal.Decimal = strawberry.field(
        description="Data Credits renewals processed in the month took away: expiry and what"
        " the rollover cap cut (as subscription.renewed's `expired`)."
    )
    data_credits_capped: decimal.Decimal = strawberry.field(
        description="The part of dataCreditsExpired the rollover cap cut."
    )
    plan_revenue: decimal.Decimal = strawberry.field(
        description="USD: plan fees and upgrade prorations billed in the month."
    )
    top_up_revenue: decimal.Decimal = strawberry.field(
        description="USD: top-ups billed in the month."
    )

    @classmethod
    def of(cls, row: rules.MonthRow) -> OperatorReportMonth:
        return cls(
            month=row.month,
            data_credits_expired=units_to_credits(row.credits_expired),
            data_credits_capped=units_to_credits(row.credits_capped),
            plan_revenue=cents_to_usd(row.plan_cents),
            top_up_revenue=cents_to_usd(row.top_up_cents),
        )


@strawberry.type(description="The operator report over [from, to) (operator key).")
class OperatorReport:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    plans: list[OperatorReportPlan]
    months: list[OperatorReportMonth]

    @classmethod
    def of(cls, report: rules.Report) -> OperatorReport:
        return cls(
            from_=report.start,
            to=report.end,
            plans=[OperatorReportPlan.of(p) for p in report.plans],
            months=[OperatorReportMonth.of(m) for m in report.months],
        )
