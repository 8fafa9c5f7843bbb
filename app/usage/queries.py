"""Reading charges for the API: a workspace's own, or, for the operator, any."""

from __future__ import annotations

import uuid

from app import validation
from app.errors import NotFound
from app.models import Charge


async def get_charge(workspace_id: uuid.UUID, charge_id: str) -> Charge:
    """A charge of the workspace; another workspace's is NOT_FOUND like an unknown one."""
    charge = await Charge.get_or_none(
        id=validation.object_id(charge_id, "charge"), workspace_id=workspace_id
    )
    if charge is None:
        raise NotFound(f"charge {charge_id} not found")
    return charge


async def workspace_of_charge(charge_id: str) -> uuid.UUID:
    """The workspace a charge belongs to (the operator's provider-refund integration)."""
    charge = await Charge.get_or_none(id=validation.object_id(charge_id, "charge"))
    if charge is None:
        raise NotFound(f"charge {charge_id} not found")
    return charge.workspace_id
