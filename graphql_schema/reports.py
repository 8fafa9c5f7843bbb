"""The operator report (issue 19), composed into the schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.reports.service import operator_report
from graphql_schema.context import Info
from graphql_schema.types.report import OperatorReport


@strawberry.type
class ReportQueries:
    @strawberry.field(
        description="Operator key: per plan, the workspaces whose last complete cycle at `to`"
        " was on it and the share that used up their Actions capacity in it (plans are"
        " designed so that about 90% never do); per UTC month of [from, to), Data Credits"
        " expired at renewals and plan and top-up revenue in USD. At most 1,830 days;"
        " `to` after `from`, else INVALID_INPUT."
    )
    async def operator_report(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> OperatorReport:
        (await info.context.principal()).require_operator()
        return OperatorReport.of(await operator_report(from_, to))
