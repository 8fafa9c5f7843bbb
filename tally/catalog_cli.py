"""`tally catalog apply FILE [--at ISO]` and `tally catalog show [--at ISO]` (R40), as the
operator: the applyCatalog mutation and the catalogVersions query do the same over GraphQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.clock import utcnow
from app.config import Settings
from app.errors import InvalidInput
from app.validation import instant

if TYPE_CHECKING:
    from app.catalog.changes import CatalogVersionRow

catalog_cli = typer.Typer(help="Change prices and plans from an instant on; print any catalog.")


def register(cli: typer.Typer) -> None:
    cli.add_typer(catalog_cli, name="catalog")


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:  # a bare timestamp is read as UTC
        moment = moment.replace(tzinfo=UTC)
    try:
        return instant(moment, "--at")
    except InvalidInput as error:
        raise typer.BadParameter(error.message) from None


@catalog_cli.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="A catalog file, as app/catalog/default.toml.")],
    at: Annotated[
        str | None,
        typer.Option(help="From this instant on (ISO-8601; UTC if bare), not before now."),
    ] = None,
) -> None:
    """Check FILE and make it the catalog from --at on: charges from then on are priced by it,
    earlier ones keep their prices, plan fees and grants follow it at each next renewal.
    Exit 2, with nothing changed, when FILE is wrong."""
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        typer.echo(f"INVALID_INPUT: cannot read {file}: {error}", err=True)
        raise typer.Exit(2) from None
    moment = _instant(at)
    version = asyncio.run(_apply(Settings.from_env(), text, moment))
    typer.echo(
        f"catalog version {version.id} in force from {version.effective_at.isoformat()}"
        f" (applied {version.applied_at.isoformat()})"
    )


async def _apply(settings: Settings, text: str, at: datetime | None) -> CatalogVersionRow:
    from app.catalog.changes import apply_catalog
    from app.errors import DomainError
    from app.requests import OPERATOR, acting_as
    from app.startup import close_database, start_database

    await start_database(settings)
    try:
        with acting_as(OPERATOR):  # the shell is the operator's: audited as such (R39)
            return await apply_catalog(text, at, utcnow)
    except DomainError as error:
        typer.echo(f"{error.code.value}: {error.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        await close_database()


@catalog_cli.command("show")
def show(
    at: Annotated[
        str | None, typer.Option(help="The instant (ISO-8601; UTC if bare). Default: now.")
    ] = None,
) -> None:
    """Print the catalog in force at --at, in the file format `apply` reads."""
    moment = _instant(at) or utcnow()
    typer.echo(asyncio.run(_show(Settings.from_env(), moment)), nl=False)


async def _show(settings: Settings, at: datetime) -> str:
    from app.catalog.changes import show_catalog
    from app.startup import close_database, start_database

    await start_database(settings)
    try:
        return await show_catalog(at)
    finally:
        await close_database()
