"""Creating workspaces with their first cycle, and managing their API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import audit, locks, validation
from app.billing.charges import bill, plan_fee_description
from app.billing.money import cycle_price_cents
from app.catalog.store import catalog_at
from app.errors import InvalidInput, NotFound
from app.events import bus
from app.history.plan_periods import PlanChange, record_plan
from app.kinds import BillingInterval, ChargeKind, EntryType, Meter, Role, WorkspaceStatus
from app.ledger import Posting, post
from app.models import ApiKey, Workspace
from app.plans.cycles import add_months, months_in
from app.plans.terms import Terms, resolve_terms, trial_terms
from app.workspaces.auth import hash_secret, new_secret


@dataclass(frozen=True)
class NewWorkspace:
    name: str
    plan: str
    credit_tier: int | None = None
    billing_interval: BillingInterval | None = None
    trial: bool = False


@dataclass(frozen=True)
class Cycle:
    terms: Terms
    status: WorkspaceStatus
    period_end: datetime
    actions_period_end: datetime
    trial_ends_at: datetime | None
    fee_cents: int = 0  # the first cycle's price; a trial and the free plan cost nothing
    fee_description: str = ""


async def _first_cycle(request: NewWorkspace, now: datetime) -> Cycle:
    catalog = await catalog_at(now)
    code = validation.label(request.plan, "plan") or ""
    plan = next((p for p in catalog.plans if p.code == code), None)
    if plan is None:
        raise InvalidInput(f"unknown plan {request.plan!r}")
    if not request.trial:
        terms = resolve_terms(plan, request.credit_tier, request.billing_interval)
        period_end = add_months(now, months_in(terms.interval))
        assert terms.credit_tier is not None
        fee = cycle_price_cents(plan, terms.credit_tier, terms.interval, catalog.billing)
        description = plan_fee_description(plan, terms, now)
        return Cycle(
            terms, WorkspaceStatus.ACTIVE, period_end, add_months(now, 1), None, fee, description
        )
    billing = catalog.billing
    if plan.code == billing.free_plan:
        raise InvalidInput(f"a trial is of a paid plan's features, such as {billing.trial_plan!r}")
    if request.credit_tier is not None or request.billing_interval is not None:
        raise InvalidInput(
            "a trial has no credit tier or billing interval; choose the paid plan during the trial"
        )
    ends = now + timedelta(days=billing.trial_days)
    terms = trial_terms(plan, billing.trial_credits_units)
    return Cycle(terms, WorkspaceStatus.TRIALING, ends, ends, ends)


async def create_workspace(request: NewWorkspace, now: datetime) -> tuple[Workspace, str]:
    """A workspace anchored at `now` with its first cycle's grants, and an admin key (R14, R31)."""
    name = validation.name(request.name)
    cycle = await _first_cycle(request, now)
    terms = cycle.terms
    secret = new_secret()
    async with in_transaction() as conn:
        workspace = await Workspace.create(
            using_db=conn,
            id=uuid.uuid4(),
            name=name,
            plan_code=terms.plan_code,
            credit_tier=terms.credit_tier,
            billing_interval=terms.interval.value,
            status=cycle.status.value,
            anchor_at=now,
            period_start=now,
            period_end=cycle.period_end,
            actions_period_end=cycle.actions_period_end,
            trial_ends_at=cycle.trial_ends_at,
            actions_capacity=terms.monthly_actions,
            actions_used=0,
            credit_balance=terms.cycle_grant_units,
            monthly_credits=terms.monthly_credits_units,
            created_at=now,
        )
        key = await _insert_key(conn, workspace.id, "Admin key", Role.ADMIN, secret, now)
        grants = [
            Posting(Meter.ACTIONS, terms.monthly_actions, terms.monthly_actions),
            Posting(Meter.DATA_CREDITS, terms.cycle_grant_units, terms.cycle_grant_units),
        ]
        await post(conn, workspace.id, EntryType.GRANT, grants, now)
        await record_plan(conn, workspace.id, terms, terms.monthly_actions, now, PlanChange.CREATED)
        if cycle.fee_cents > 0:
            await bill(
                conn,
                workspace.id,
                ChargeKind.PLAN_FEE,
                period_start=now,
                terms=terms,
                amount_cents=cycle.fee_cents,
                credits=terms.cycle_grant_units,
                description=cycle.fee_description,
                now=now,
            )
        created = {"name": name, "plan": terms.plan_code, "creditTier": terms.credit_tier,
                   "billingInterval": terms.interval.value, "status": cycle.status.value,
                   "adminKey": _key_state(key)}  # fmt: skip
        await audit.record(conn, workspace.id, "workspace.create", f"workspace:{workspace.id}",
                           None, created, now)  # fmt: skip
    return workspace, secret


async def _insert_key(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    name: str,
    role: Role,
    secret: str,
    now: datetime,
) -> ApiKey:
    return await ApiKey.create(
        using_db=conn,
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=name,
        role=role.value,
        key_hash=hash_secret(secret),
        prefix=secret[:12],
        created_at=now,
    )


def _key_state(key: ApiKey) -> dict[str, object]:
    """What the audit log keeps of a key: never its secret or its hash."""
    return {"name": key.name, "role": key.role, "prefix": key.prefix, "revokedAt": key.revoked_at}


async def create_api_key(
    workspace_id: uuid.UUID, name: str, role: Role, now: datetime
) -> tuple[ApiKey, str]:
    """A new key; its secret is returned once and only its hash is stored."""
    secret = new_secret()
    async with in_transaction() as conn:
        key = await _insert_key(conn, workspace_id, validation.name(name), role, secret, now)
        await audit.record(conn, workspace_id, "api_key.create", f"api_key:{key.id}", None,
                           _key_state(key), now)  # fmt: skip
    return key, secret


async def revoke_api_key(workspace_id: uuid.UUID, key_id: str, now: datetime) -> ApiKey:
    """Revoke a key (idempotent). The last admin key cannot go, or nobody could manage the
    workspace again."""
    kid = validation.object_id(key_id, "API key")
    async with in_transaction() as conn:
        # The workspace row serializes concurrent revocations of its keys.
        await locks.workspace(conn, workspace_id)
        key = await ApiKey.filter(id=kid, workspace_id=workspace_id).using_db(conn).first()
        if key is None:
            raise NotFound(f"API key {key_id} not found")
        if key.revoked_at is not None:
            return key
        if key.role == Role.ADMIN.value:
            admins = (
                await ApiKey.filter(
                    workspace_id=workspace_id, role=Role.ADMIN.value, revoked_at=None
                )
                .using_db(conn)
                .count()
            )
            if admins <= 1:
                raise InvalidInput("this is the workspace's last admin key; create another first")
        before = _key_state(key)
        key.revoked_at = now
        await key.save(using_db=conn, update_fields=["revoked_at"])
        await audit.record(conn, workspace_id, "api_key.revoke", f"api_key:{key.id}", before,
                           _key_state(key), now)  # fmt: skip
        await bus.notify(conn, workspace_id, bus.Change.KEYS)  # its subscriptions end
    return key


async def get_workspace(workspace_id: uuid.UUID) -> Workspace:
    workspace = await Workspace.get_or_none(id=workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


async def list_api_keys(workspace_id: uuid.UUID) -> list[ApiKey]:
    return list(await ApiKey.filter(workspace_id=workspace_id).order_by("created_at"))


async def get_api_key(key_id: uuid.UUID) -> ApiKey:
    """The key a request was authenticated with (it exists: authentication found it)."""
    return await ApiKey.get(id=key_id)
