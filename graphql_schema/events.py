"""Events, alerts and the audit log (R34, R35, R39): the queries and mutations, composed into
the schema."""

from __future__ import annotations

import strawberry

from app.audit import audit_page
from app.events.alerts import delete_alert, list_alerts, set_alert
from app.events.store import events_page
from app.kinds import Meter
from graphql_schema.context import Info
from graphql_schema.types.audit import AuditConnection
from graphql_schema.types.events import Alert, AlertInput, EventConnection


@strawberry.type
class EventQueries:
    @strawberry.field(description="R34: the workspace's events, newest first; any key.")
    async def events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        types: list[str] | None = None,
    ) -> EventConnection:
        workspace_id = await info.context.workspace_id()
        page = await events_page(workspace_id, first, after, types)
        return EventConnection.of(page.events, page.has_next_page)

    @strawberry.field(description="R35: the workspace's alerts.")
    async def alerts(self, info: Info) -> list[Alert]:
        return [Alert(row=a) for a in await list_alerts(await info.context.workspace_id())]

    @strawberry.field(
        description="R39, admin: changes made with admin and operator keys, newest first."
    )
    async def audit_log(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> AuditConnection:
        page = await audit_page(await info.context.admin_workspace_id(), first, after)
        return AuditConnection.of(page.entries, page.has_next_page)


@strawberry.type
class EventMutations:
    @strawberry.mutation(description="R35, admin: the same (meter, threshold) twice is one alert.")
    async def set_alert(self, info: Info, input: AlertInput) -> Alert:
        workspace_id = await info.context.admin_workspace_id()
        meter = Meter(input.meter.value)
        return Alert(row=await set_alert(workspace_id, meter, input.threshold, info.context.now))

    @strawberry.mutation(description="R35, admin.")
    async def delete_alert(self, info: Info, id: strawberry.ID) -> Alert:
        workspace_id = await info.context.admin_workspace_id()
        return Alert(row=await delete_alert(workspace_id, id, info.context.now))
