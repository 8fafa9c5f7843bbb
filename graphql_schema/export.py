"""The schema as SDL: what `schema.graphql` holds for a frontend's codegen."""

from __future__ import annotations

from pathlib import Path

from strawberry.printer import print_schema

from graphql_schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def render_sdl() -> str:
    """The code's schema in SDL, ending with exactly one newline."""
    return print_schema(schema).rstrip("\n") + "\n"


def write_sdl(path: Path) -> None:
    """Write the code's schema to `path`."""
    path.write_text(render_sdl(), encoding="utf-8", newline="\n")


def stale_reason(path: Path) -> str | None:
    """Why the file at `path` is not the code's schema, or None when it is."""
    regenerate = f"run `tally schema --output {path}`"
    if not path.is_file():
        return f"{path} is missing: {regenerate}"
    if path.read_text(encoding="utf-8") != render_sdl():
        return f"{path} is stale: {regenerate}"
    return None
