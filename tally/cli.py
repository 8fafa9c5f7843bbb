"""`tally`: serve the API, migrate the database, create workspaces from the shell."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn

from app.clock import utcnow
from app.config import Settings, ensure_operator_key
from app.db import is_postgres
from app.errors import InvalidInput
from app.kinds import BillingInterval
from app.logs import configure_logging
from app.plans.renewals import SweepResult
from app.validation import instant
from tally import metrics_dirs
from tally.catalog_cli import register as register_catalog
from tally.report_cli import register as register_report
from tally.serving import workers as serving_workers

if TYPE_CHECKING:
    from app.verify import Difference

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
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes (one database); default one per CPU on PostgreSQL."),
    ] = None,
) -> None:
    """Serve the GraphQL API (GraphiQL at GET /graphql)."""
    url = Settings.from_env().database_url
    workers = default_workers(url) if workers is None else workers
    if workers > 1 and not is_postgres(url):
        # Processes writing one SQLite file serialize on its lock, and each holds its own
        # in-process state: several of them only add waiting.
        typer.echo(
            f"--workers {workers} needs PostgreSQL (TALLY_DATABASE_URL=postgres://...);"
            f" SQLite ({url}) is served by one process",
            err=True,
        )
        raise typer.Exit(2)
    settings = _settings()
    configure_logging(settings.log_format)
    with metrics_dirs.removed_when_stopped(metrics_dirs.metrics_directory()):
        _serve(settings, host, port, workers)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    typer.echo(
        f"Tally on http://{host}:{port}/graphql  database: {settings.database_url}", err=True
    )
    reuse_port = workers > 1 and serving_workers.supported()
    problem = serving_workers.check_address(host, port) if reuse_port else None
    if problem:
        # Checked here, before migrating: each process binds with SO_REUSEPORT, which would
        # share a port this user's other server holds instead of failing as uvicorn does.
        typer.echo(problem, err=True)
        raise typer.Exit(1)
    if workers > 1:
        asyncio.run(_migrate(settings))  # once, before the workers start
    options: dict[str, Any] = {
        "app": "graphql_schema.asgi:app_from_env",
        "factory": True,
        "host": host,
        "port": port,
        "log_level": "info",
        "log_config": None,  # app.logs formats every line, uvicorn's too (TALLY_LOG_FORMAT)
        "access_log": False,
        # Idle keep-alive connections close after 5 s (uvicorn's default, pinned here because
        # deploy/nginx.conf keeps its upstream connections idle for less than this).
        "timeout_keep_alive": 5,
        # No limit_concurrency: it caps all open connections at once, so slow clients holding
        # sockets would get everyone else's requests refused (503). Per-client caps belong in
        # the proxy (limit_conn in deploy/nginx.conf).
    }
    if reuse_port:
        # A socket a process, so the kernel spreads connections (tally.serving.workers).
        supervisor = serving_workers.Supervisor(options, workers, settings.log_format)
        raise typer.Exit(supervisor.run())
    from tally.serving import http_protocol

    # A deadline for request headers: TALLY_HEADER_TIMEOUT (tally.serving).
    uvicorn.run(**options, workers=workers, http=http_protocol())


def default_workers(url: str) -> int:
    """One server process per CPU on PostgreSQL (a process runs Python on one core at a time,
    and charges spend most of their time there); one on SQLite, whose file lock serializes
    writers anyway."""
    if not is_postgres(url):
        return 1
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on (a container's)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


async def _migrate(settings: Settings) -> None:
    from app.startup import close_database, start_database

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
    from app.errors import DomainError
    from app.requests import OPERATOR, acting_as
    from app.startup import close_database, start_database
    from app.workspaces.service import NewWorkspace, create_workspace

    await start_database(settings)
    try:
        request = NewWorkspace(name, plan, credit_tier, interval, trial)
        with acting_as(OPERATOR):  # the shell is the operator's: audited as such (R39)
            workspace, secret = await create_workspace(request, utcnow())
        return str(workspace.id), secret
    except DomainError as error:
        typer.echo(f"{error.code.value}: {error.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        await close_database()


@cli.command()
def scheduler(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics (job runs, deliveries) on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for /metrics.")] = "127.0.0.1",
) -> None:
    """Run the scheduler alone (set TALLY_SCHEDULER=off on the API processes then), and the
    webhook delivery worker (TALLY_WEBHOOK_DELIVERY=off: not)."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    webhooks = "on" if settings.webhook_delivery else "off"
    typer.echo(
        f"Tally scheduler: ticking every {settings.scheduler_interval:g} s"
        f"  webhook delivery: {webhooks}  database: {settings.database_url}",
        err=True,
    )
    if metrics_port is not None:
        # The API's /metrics cannot show this process's job runs: prometheus-client's
        # multiprocess files are per host and per pid, and this may run in another container.
        from app.metrics import serve_metrics

        serve_metrics(metrics_host, metrics_port)
        typer.echo(f"  metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_scheduler(settings))


async def _run_scheduler(settings: Settings) -> None:
    from app.collector import tune_gc
    from app.metrics import start_sampling
    from app.startup import close_database, start_database
    from app.tracing import configure_tracing, shutdown_tracing
    from app.webhooks.delivery import DeliveryWorker
    from jobs.scheduler import Scheduler

    configure_tracing()  # a span a job run, when an OTLP endpoint is set
    await start_database(settings)
    tune_gc()
    sampler = await start_sampling()  # database up, pool, loop lag
    ticker = Scheduler(settings.scheduler_interval)
    webhooks = DeliveryWorker(settings) if settings.webhook_delivery else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ticker.start()
    if webhooks is not None:
        webhooks.start()
    try:
        await stop.wait()
    finally:
        sampler.cancel()
        if webhooks is not None:
            await webhooks.stop()
        await ticker.stop()
        await close_database()
        shutdown_tracing()  # the spans still buffered are sent


@cli.command()
def verify() -> None:
    """Recompute every balance, hold and spend from the ledger; print each difference and
    exit 1 when there is one."""
    differences = asyncio.run(_verify(Settings.from_env()))
    for difference in differences:
        typer.echo(str(difference))
    typer.echo(f"{len(differences)} differences", err=True)
    if differences:
        raise typer.Exit(1)


async def _verify(settings: Settings) -> list[Difference]:
    from app.startup import close_database, start_database
    from app.verify import verify as recompute

    await start_database(settings)
    try:
        return await recompute()
    finally:
        await close_database()


@cli.command("schema")
def schema_command(
    output: Annotated[Path | None, typer.Option(help="Write the SDL to this file.")] = None,
    check: Annotated[
        Path | None, typer.Option(help="Exit 1 if this file is not the current SDL.")
    ] = None,
) -> None:
    """Print the GraphQL schema as SDL (schema.graphql, for frontend codegen)."""
    from graphql_schema.export import render_sdl, stale_reason, write_sdl

    if output is not None and check is not None:
        raise typer.BadParameter("give --output or --check, not both")
    if check is not None:
        reason = stale_reason(check)
        if reason is not None:
            typer.echo(reason, err=True)
            raise typer.Exit(1)
        typer.echo(f"{check} is up to date")
    elif output is not None:
        write_sdl(output)
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(render_sdl(), nl=False)


jobs_cli = typer.Typer(help="Run the scheduled jobs by hand, against any clock.")
cli.add_typer(jobs_cli, name="jobs")


@jobs_cli.command("list")
def jobs_list() -> None:
    """Name the jobs."""
    from jobs.registry import JOBS

    for job in JOBS.values():
        typer.echo(f"{job.name:18} {job.description}")
    typer.echo(f"{'all':18} Every job above, in this order.")


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:  # a bare timestamp is read as UTC
        moment = moment.replace(tzinfo=UTC)
    try:
        return instant(moment, "--now")
    except InvalidInput as error:
        raise typer.BadParameter(error.message) from None


@jobs_cli.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="A job from `tally jobs list`, or all.")],
    now: Annotated[
        str | None, typer.Option(help="Act as if the clock read this (ISO-8601; UTC if bare).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Workspaces per transaction.")] = 100,
) -> None:
    """Run one job once, catching up period by period, and print what it did."""
    from jobs.registry import JOBS

    names = list(JOBS) if name == "all" else [name]
    if any(n not in JOBS for n in names):
        raise typer.BadParameter(f"no job {name!r}; `tally jobs list` names them")
    moment = _parse_now(now)
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    failed = asyncio.run(_run_jobs(settings, names, moment, batch_size))
    if failed:
        raise typer.Exit(1)


PROGRESS_FROM = 100  # workspaces: below this a bar only flickers


async def _run_jobs(settings: Settings, names: list[str], now: datetime, batch: int) -> int:
    from rich.progress import Progress

    from app.collector import tune_gc
    from app.startup import close_database, start_database
    from jobs.registry import due, run_job

    await start_database(settings)
    tune_gc()  # a sweep of 100,000 workspaces spent about 12% of its Python in collections
    failed = 0
    try:
        for name in names:
            count = await due(name, now)
            with Progress(transient=True, disable=count < PROGRESS_FROM) as bar:
                task = bar.add_task(name, total=count)
                result = await run_job(
                    name, now, batch_size=batch, on_progress=partial(bar.advance, task)
                )
            typer.echo(f"{name}: {_summary(name, result)}, as of {now.isoformat()}")
            for workspace_id in result.failed:
                typer.echo(f"  failed: workspace {workspace_id} (see the log)", err=True)
            failed += len(result.failed)
    finally:
        await close_database()
    return failed


def _summary(name: str, result: SweepResult) -> str:
    from jobs.registry import JOBS

    if JOBS[name].done:
        return f"{result.workspaces} {JOBS[name].done}"
    steps = ", ".join(f"{k} {v}" for k, v in sorted(result.steps.items())) or "none"
    return (
        f"{result.workspaces} workspaces, {result.renewals} periods ({steps}),"
        f" {len(result.failed)} failed"
    )


register_report(cli)  # tally report: the operator report (issue 19)
register_catalog(cli)  # tally catalog apply and show (R40)


def main() -> None:
    cli()
