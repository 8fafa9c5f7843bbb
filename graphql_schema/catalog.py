"""Catalog changes (R40), operator key only: apply a catalog from an instant on, read the
history and the catalog at any instant. `tally catalog apply` and `show` do the same."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.catalog.changes import CatalogVersionRow, apply_catalog, catalog_versions, show_catalog
from app.clock import utcnow
from graphql_schema.context import Info


@strawberry.type(description="A catalog in force from `effectiveAt` on, until a later one.")
class CatalogVersion:
    id: strawberry.ID
    effective_at: datetime
    applied_at: datetime
    applied_by: str = strawberry.field(description='"operator", or "seed" for the first.')
    catalog: str = strawberry.field(
        description="The catalog in the file format (TOML) that applyCatalog takes."
    )

    @classmethod
    def of(cls, row: CatalogVersionRow) -> CatalogVersion:
        return cls(
            id=strawberry.ID(str(row.id)),
            effective_at=row.effective_at,
            applied_at=row.applied_at,
            applied_by=row.actor,
            catalog=row.body,
        )


@strawberry.type
class CatalogQueries:
    @strawberry.field(
        description="Operator key: every catalog version, in the order they take effect."
    )
    async def catalog_versions(self, info: Info) -> list[CatalogVersion]:
        (await info.context.principal()).require_operator()
        return [CatalogVersion.of(row) for row in await catalog_versions()]

    @strawberry.field(
        description="Operator key: the catalog in force at `at` (default now), in the file"
        " format applyCatalog takes."
    )
    async def catalog_at(self, info: Info, at: datetime | None = None) -> str:
        (await info.context.principal()).require_operator()
        return await show_catalog(at or info.context.now)


@strawberry.type
class CatalogMutations:
    @strawberry.mutation(
        description="Operator key: check `catalog` (TOML, app/catalog/default.toml's format)"
        " and make it the catalog from `at` on (default now; never before now). Charges from"
        " then on are priced by it; earlier ones and their refunds keep their prices; plan"
        " fees and grants follow it at each workspace's next renewal. A wrong catalog is"
        " INVALID_INPUT with the reason, and nothing changes."
    )
    async def apply_catalog(
        self, info: Info, catalog: str, at: datetime | None = None
    ) -> CatalogVersion:
        (await info.context.principal()).require_operator()
        # The clock is read under the catalog's lock, not at the request's start (R40).
        return CatalogVersion.of(await apply_catalog(catalog, at, utcnow))
