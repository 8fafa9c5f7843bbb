"""The audit log (R39) as a Relay-style connection."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app import models
from app.audit import cursor, values
from graphql_schema.types.ledger import PageInfo


@strawberry.type(description="One change made with an admin or operator key (R39).")
class AuditEntry:
    row: strawberry.Private[models.AuditEntry]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field(description='The name of the key, or "operator".')
    def actor(self) -> str:
        return self.row.actor

    @strawberry.field
    def api_key_id(self) -> strawberry.ID | None:
        key = self.row.api_key_id
        return None if key is None else strawberry.ID(str(key))

    @strawberry.field(description='What was done, e.g. "plan.change" or "alert.set".')
    def action(self) -> str:
        return self.row.action

    @strawberry.field(description='What it was done to, e.g. "workbook:<id>".')
    def target(self) -> str | None:
        return self.row.target

    @strawberry.field
    def before(self) -> JSON | None:
        return values(self.row.before)

    @strawberry.field
    def after(self) -> JSON | None:
        return values(self.row.after)

    @strawberry.field(description="The request's X-Request-Id.")
    def request_id(self) -> str | None:
        return self.row.request_id


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEntry


@strawberry.type
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, entries: list[models.AuditEntry], has_next_page: bool) -> AuditConnection:
        edges = [AuditEdge(cursor=cursor(e), node=AuditEntry(row=e)) for e in entries]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end))
