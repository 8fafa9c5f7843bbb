"""Settings from the environment (API.md "Command line")."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite://tally.sqlite3"
OPERATOR_KEY_FILE = ".tally-operator-key"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    operator_key: str | None = None
    catalog_path: str | None = None
    scheduler: bool = True  # run the scheduler in the API process (TALLY_SCHEDULER=off: not)
    scheduler_interval: float = 60.0  # seconds between ticks

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("TALLY_DATABASE_URL") or DEFAULT_DATABASE_URL,
            operator_key=os.environ.get("TALLY_OPERATOR_KEY") or None,
            catalog_path=os.environ.get("TALLY_CATALOG") or None,
            scheduler=_switch(os.environ.get("TALLY_SCHEDULER", "on")),
            scheduler_interval=float(os.environ.get("TALLY_SCHEDULER_INTERVAL") or 60),
        )


def _switch(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"on", "true", "1", "yes"}:
        return True
    if lowered in {"off", "false", "0", "no"}:
        return False
    raise ValueError(f"TALLY_SCHEDULER must be on or off; got {value!r}")


def ensure_operator_key(
    settings: Settings, directory: Path | None = None
) -> tuple[Settings, Path | None]:
    """Without TALLY_OPERATOR_KEY, use (or create) a key in a private file beside the database.

    A fresh `tally serve` must be usable at once; a generated key kept in a 0600 file is safer
    than a well-known default. Returns the settings and the file used, if any.
    """
    if settings.operator_key:
        return settings, None
    path = (directory or Path.cwd()) / OPERATOR_KEY_FILE
    if path.exists():
        key = path.read_text("utf-8").strip()
    else:
        key = "tly_op_" + secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    return replace(settings, operator_key=key), path
