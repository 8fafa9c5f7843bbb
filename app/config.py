"""Settings from the environment (API.md "Command line")."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeVar

from app.webhooks.rules import RETRY_SCHEDULE

_F = TypeVar("_F", bound=str)

DEFAULT_DATABASE_URL = "sqlite://tally.sqlite3"
OPERATOR_KEY_FILE = ".tally-operator-key"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL itself when database_url goes through a transaction-pooling pgbouncer: the
    # migrations' advisory lock and the live-update LISTEN need a session of their own.
    direct_database_url: str | None = None
    operator_key: str | None = None
    catalog_path: str | None = None
    scheduler: bool = True  # run the scheduler in the API process (TALLY_SCHEDULER=off: not)
    scheduler_interval: float = 60.0  # seconds between ticks
    max_body_bytes: int = 1024 * 1024  # larger request bodies answer 413
    body_timeout: float = 30.0  # seconds to receive a request body, else 408
    max_tokens: int = 2_000  # GraphQL tokens in one document, else 400
    introspection: bool = True  # off for production: the schema is not served to anyone
    graphiql: bool = True  # the explorer at GET /graphql
    max_queries: int = 300  # database statements one request may run, else BAD_REQUEST
    max_workbooks: int = 1_000  # workbooks of one workspace, else QUOTA_EXCEEDED
    fast_paths: Literal["on", "off", "verify"] = "on"  # graphql_schema.perf
    log_format: Literal["text", "json"] = "text"  # json: one JSON object a line (app.logs)
    webhook_delivery: bool = True  # the delivery worker runs in serve and scheduler (R36)
    webhook_allow_private: bool = False  # http and private or loopback addresses allowed
    webhook_timeout: float = 10.0  # seconds for an endpoint to answer
    webhook_retry_schedule: tuple[float, ...] = RETRY_SCHEDULE  # seconds after each failure
    webhook_retention_days: int = 30  # finished deliveries and their attempts are kept this long
    max_subscriptions_per_key: int = 10  # open subscriptions of one API key, in each process
    ws_ping_interval: float = 15.0  # seconds of silence on a WebSocket before the server pings
    # Concurrent single charges of one workspace share a transaction (app.usage.group_commit);
    # PostgreSQL only: SQLite serializes transactions anyway.
    group_commit: bool = True
    # A single charge is written by one statement when its rows have not changed since its
    # first read (app.usage.optimistic); PostgreSQL only.
    optimistic_charges: bool = True
    # Such charges of different workspaces ready while one is being written go together, as
    # one statement (app.usage.coalesced); PostgreSQL only.
    coalesce_charges: bool = True

    @property
    def direct_url(self) -> str:
        """Where migrations run and live updates LISTEN: never through transaction pooling."""
        return self.direct_database_url or self.database_url

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            database_url=env("TALLY_DATABASE_URL") or DEFAULT_DATABASE_URL,
            direct_database_url=env("TALLY_DIRECT_DATABASE_URL") or None,
            operator_key=env("TALLY_OPERATOR_KEY") or None,
            catalog_path=env("TALLY_CATALOG") or None,
            scheduler=_switch("TALLY_SCHEDULER", True),
            scheduler_interval=float(env("TALLY_SCHEDULER_INTERVAL") or 60),
            max_body_bytes=_positive("TALLY_MAX_BODY_BYTES", cls.max_body_bytes),
            body_timeout=float(_positive("TALLY_BODY_TIMEOUT", cls.body_timeout)),
            max_tokens=_positive("TALLY_MAX_TOKENS", cls.max_tokens),
            introspection=_switch("TALLY_INTROSPECTION", True),
            graphiql=_switch("TALLY_GRAPHIQL", True),
            max_queries=_positive("TALLY_MAX_QUERIES", cls.max_queries),
            max_workbooks=_positive("TALLY_MAX_WORKBOOKS", cls.max_workbooks),
            fast_paths=fast_paths_mode(),
            log_format=_choice("TALLY_LOG_FORMAT", ("text", "json"), cls.log_format),
            webhook_delivery=_switch("TALLY_WEBHOOK_DELIVERY", True),
            webhook_allow_private=_switch("TALLY_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_timeout=_seconds("TALLY_WEBHOOK_TIMEOUT", cls.webhook_timeout),
            webhook_retry_schedule=_schedule("TALLY_WEBHOOK_RETRY_SCHEDULE"),
            webhook_retention_days=_positive(
                "TALLY_WEBHOOK_RETENTION_DAYS", cls.webhook_retention_days
            ),
            max_subscriptions_per_key=_positive(
                "TALLY_MAX_SUBSCRIPTIONS_PER_KEY", cls.max_subscriptions_per_key
            ),
            ws_ping_interval=_seconds("TALLY_WS_PING_INTERVAL", cls.ws_ping_interval),
            group_commit=_switch("TALLY_GROUP_COMMIT", True),
            optimistic_charges=_switch("TALLY_OPTIMISTIC_CHARGES", True),
            coalesce_charges=_switch("TALLY_COALESCE_CHARGES", True),
        )


def _switch(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if not value:
        return default
    lowered = value.strip().lower()
    if lowered in {"on", "true", "1", "yes"}:
        return True
    if lowered in {"off", "false", "0", "no"}:
        return False
    raise ValueError(f"{name} must be on or off; got {value!r}")


def fast_paths_mode() -> Literal["on", "off", "verify"]:
    """TALLY_FAST_PATHS, the switch of every shortcut past a library's API, as every reader
    takes it (graphql_schema.perf through Settings, tally.serving per connection)."""
    return _choice("TALLY_FAST_PATHS", ("on", "off", "verify"), "on")


def _choice(name: str, choices: tuple[_F, ...], default: _F) -> _F:
    value = (os.environ.get(name) or default).strip().lower()
    for choice in choices:
        if value == choice:
            return choice
    raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _positive(name: str, default: float) -> int:
    value = os.environ.get(name)
    if not value:
        return int(default)
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ValueError(f"{name} must be a positive whole number; got {value!r}")
    return number


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
    return number


def _schedule(name: str) -> tuple[float, ...]:
    """Seconds, comma separated: the delays before each retry."""
    value = os.environ.get(name)
    if not value:
        return RETRY_SCHEDULE
    try:
        delays = tuple(float(part) for part in value.split(","))
    except ValueError:
        delays = ()
    if not delays or not all(0 <= d < float("inf") for d in delays):
        raise ValueError(f"{name} must be seconds, comma separated (5,300,1800); got {value!r}")
    return delays


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
