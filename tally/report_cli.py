"""`tally report`: the operator report (issue 19) in the shell, as the operatorReport query
answers it (`--json` prints the same object, field for field)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from app.clock import utcnow
from app.config import Settings
from app.errors import InvalidInput
from app.plans.cycles import add_months
from app.reports.rules import MonthRow, PlanRow, Report
from app.units import cents_to_usd, units_to_credits
from app.validation import instant


def register(cli: typer.Typer) -> None:
    cli.command("report")(report)


def report(
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", help="Start (ISO-8601; UTC if bare). Default: 11 months before this one."
        ),
    ] = None,
    to: Annotated[str | None, typer.Option(help="End, excluded (ISO-8601). Default: now.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON object.")] = False,
) -> None:
    """Per plan, the share of workspaces that used up their Actions in their last complete
    cycle; per month, Data Credits expired at renewals and revenue (default: the last 12
    months, this one included)."""
    end = _instant(to, "--to") if to is not None else utcnow()
    if from_ is not None:
        start = _instant(from_, "--from")
    else:
        start = add_months(end.replace(day=1, hour=0, minute=0, second=0, microsecond=0), -11)
    settings = Settings.from_env()
    result = asyncio.run(_read(settings, start, end))
    if as_json:
        typer.echo(json.dumps(as_graphql(result), indent=2))
    else:
        _print(result)


def _instant(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option}: not an ISO-8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:  # a bare timestamp is read as UTC, as `jobs run --now` does
        moment = moment.replace(tzinfo=UTC)
    try:
        return instant(moment, option)
    except InvalidInput as error:
        raise typer.BadParameter(error.message) from None


async def _read(settings: Settings, start: datetime, end: datetime) -> Report:
    from app.reports.service import operator_report
    from app.startup import close_database, start_database

    await start_database(settings)
    try:
        return await operator_report(start, end)
    except InvalidInput as error:
        typer.echo(f"{error.code.value}: {error.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        await close_database()


def _share(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _plan(row: PlanRow) -> dict[str, Any]:
    return {
        "plan": row.plan_code,
        "trial": row.trial,
        "workspaces": row.workspaces,
        "usedUp": row.used_up,
        "usedUpShare": _share(row.used_up_share),
        "planRevenue": str(cents_to_usd(row.plan_cents)),
        "topUpRevenue": str(cents_to_usd(row.top_up_cents)),
    }


def _month(row: MonthRow) -> dict[str, Any]:
    return {
        "month": row.month,
        "dataCreditsExpired": str(units_to_credits(row.credits_expired)),
        "dataCreditsCapped": str(units_to_credits(row.credits_capped)),
        "planRevenue": str(cents_to_usd(row.plan_cents)),
        "topUpRevenue": str(cents_to_usd(row.top_up_cents)),
    }


def as_graphql(result: Report) -> dict[str, Any]:
    """The object operatorReport answers with every field selected."""
    return {
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "plans": [_plan(p) for p in result.plans],
        "months": [_month(m) for m in result.months],
    }


def _print(result: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    span = f"{result.start.isoformat()} to {result.end.isoformat()}"
    plans = Table(title=f"Plans: last complete cycle by {result.end.isoformat()}")
    for name in ("plan", "workspaces", "used up", "share", "plan revenue", "top-up revenue"):
        plans.add_column(name, justify="left" if name == "plan" else "right")
    for p in result.plans:
        share = "-" if p.used_up_share is None else f"{p.used_up_share * 100:.2f}%"
        plans.add_row(
            p.plan_code + (" (trial)" if p.trial else ""),
            str(p.workspaces),
            str(p.used_up),
            share,
            f"${cents_to_usd(p.plan_cents):,}",
            f"${cents_to_usd(p.top_up_cents):,}",
        )
    months = Table(title=f"Months (UTC), {span}")
    for name in ("month", "credits expired", "of which capped", "plan revenue", "top-ups"):
        months.add_column(name, justify="left" if name == "month" else "right")
    for m in result.months:
        months.add_row(
            m.month,
            f"{units_to_credits(m.credits_expired):,}",
            f"{units_to_credits(m.credits_capped):,}",
            f"${cents_to_usd(m.plan_cents):,}",
            f"${cents_to_usd(m.top_up_cents):,}",
        )
    total = sum(m.plan_cents + m.top_up_cents for m in result.months)
    months.caption = f"revenue in the range: ${cents_to_usd(total):,}"
    console.print(plans)
    console.print(months)
