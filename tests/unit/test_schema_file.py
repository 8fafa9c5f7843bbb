"""`schema.graphql` is the code's schema, so a frontend can run codegen against it.

CI runs pytest, so the first test is the staleness check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql_schema.export import SCHEMA_FILE, render_sdl

REPO = SCHEMA_FILE.parent


def tally_schema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tally", "schema", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_schema_file_is_the_codes_schema() -> None:
    assert SCHEMA_FILE.is_file(), (
        "schema.graphql is missing: run `tally schema --output schema.graphql`"
    )
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_sdl(), (
        "schema.graphql is stale: run `tally schema --output schema.graphql`"
    )


def test_tally_schema_check_passes_on_the_checked_in_file() -> None:
    result = tally_schema("--check", "schema.graphql")
    assert result.returncode == 0, result.stderr


def test_tally_schema_check_fails_on_a_modified_copy(tmp_path: Path) -> None:
    # given
    copy = tmp_path / "schema.graphql"
    copy.write_text(render_sdl().replace("type ", "type Old", 1), encoding="utf-8")
    # when
    result = tally_schema("--check", str(copy))
    # then
    assert result.returncode == 1
    assert f"{copy} is stale: run `tally schema --output {copy}`" in result.stderr


def test_tally_schema_prints_and_writes_the_sdl(tmp_path: Path) -> None:
    target = tmp_path / "out.graphql"
    assert tally_schema().stdout == render_sdl()
    assert tally_schema("--output", str(target)).returncode == 0
    assert target.read_text(encoding="utf-8") == render_sdl()
