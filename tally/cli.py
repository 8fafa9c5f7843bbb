"""`tally`: serve the API, migrate the database, create workspaces from the shell."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
import uvicorn

from app.clock import utcnow
from app.config import Settings, ensure_operator_key
from app.kinds import BillingInterval

cli = typer.Typer(help="Tally: usage-based plans, metered and billed.", no_args_is_help=True)


def _settings() -> Settings:
    settings, key_file = ensure_operator_key(Settings.from_env())
    if key_file is not None:
        typer.echo(f"Operator key (TALLY_OPERATOR_KEY unset): read from {key_file}", err=True)
    # Worker processes read the environment, so they must see the same operator key.
    os.environ["TALLY_OPERATOR_KEY"] = settings.operator_key or ""
    return settings


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (one database).")] = 1,
) -> None:
    """Serve the GraphQL API (GraphiQL at GET /graphql)."""
    settings = _settings()
    typer.echo(
        f"Tally on http://{host}:{port}/graphql  database: {settings.database_url}", err=True
    )
    if workers > 1:
        asyncio.run(_migrate(settings))  # once, before the workers start
    uvicorn.run(
        "graphql_schema.asgi:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


async def _migrate(settings: Settings) -> None:
    from app.db import close_database
    from graphql_schema.asgi import start_database

    await start_database(settings)
    await close_database()


@cli.command()
def migrate() -> None:
    """Apply database migrations and seed the catalogs, then exit."""
    settings = Settings.from_env()
    asyncio.run(_migrate(settings))
    typer.echo(f"database ready: {settings.database_url}")


@cli.command("create-workspace")
def create_workspace_command(
    name: Annotated[str, typer.Option(help="Workspace name.")],
    plan: Annotated[str, typer.Option(help="Plan code: free, launch, growth, enterprise.")],
    credit_tier: Annotated[int | None, typer.Option(help="Monthly Data Credits tier.")] = None,
    interval: Annotated[BillingInterval | None, typer.Option(help="MONTHLY or ANNUAL.")] = None,
    trial: Annotated[bool, typer.Option(help="Start a 14-day trial of the plan.")] = False,
) -> None:
    """Create a workspace (as the operator) and print its admin API key."""
    settings = Settings.from_env()
    workspace_id, secret = asyncio.run(
        _create_workspace(settings, name, plan, credit_tier, interval, trial)
    )
    typer.echo(f"workspace {workspace_id}\nadmin key {secret}")


async def _create_workspace(
    settings: Settings,
    name: str,
    plan: str,
    credit_tier: int | None,
    interval: BillingInterval | None,
    trial: bool,
) -> tuple[str, str]:
    from app.db import close_database
    from app.errors import DomainError
    from app.services.workspaces import NewWorkspace, create_workspace
    from graphql_schema.asgi import start_database

    await start_database(settings)
    try:
        request = NewWorkspace(name, plan, credit_tier, interval, trial)
        workspace, secret = await create_workspace(request, utcnow())
        return str(workspace.id), secret
    except DomainError as error:
        typer.echo(f"{error.code.value}: {error.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        await close_database()


def main() -> None:
    cli()
