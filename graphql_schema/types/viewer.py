"""The caller: which API key is asking, and with which role.

A frontend reads it to decide what to offer (an admin may set spend limits, a member may not);
the server still checks the role on every mutation.
"""

from __future__ import annotations

import strawberry

from app.workspaces.auth import Principal
from app.workspaces.service import get_api_key
from graphql_schema.enums import Role
from graphql_schema.types.workspace import ApiKey


@strawberry.type(description="The API key behind this request and its role.")
class Viewer:
    principal: strawberry.Private[Principal]

    @strawberry.field
    def role(self) -> Role:
        assert self.principal.role is not None, "a workspace key always has a role"
        return self.principal.role

    @strawberry.field
    async def api_key(self) -> ApiKey:
        assert self.principal.key_id is not None, "a workspace key, not the operator's"
        return ApiKey(row=await get_api_key(self.principal.key_id))
