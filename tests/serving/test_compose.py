"""docker-compose.yml and the Dockerfile. There is no Docker daemon here, so no image is built
and no container runs: the compose file is validated by `docker compose config` (or Debian's
`docker-compose`) when one is installed, both files are read for what they promise, and the
commands the services run are run here as processes, with compose's environment, against the
test PostgreSQL: migrate, then the API with two workers and the scheduler, checked healthy."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.health import TIMEOUT
from app.metrics import DATABASE_CHECK_EVERY
from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database
from tests.e2e.test_server import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
COMPOSE_DB = "postgres://postgres:tally@db:5432/tally"
ALL_PROFILES = ["proxy", "pgbouncer", "monitoring"]


def compose_tool() -> list[str] | None:
    """`docker compose` (the plugin) when it answers, else Debian's `docker-compose`."""
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def services() -> dict[str, dict]:
    # The environment's anchors are merged by the YAML loader, as compose merges them.
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def environment(service: dict, operator_key: str) -> dict[str, str]:
    """The service's environment as compose interpolates it with nothing else set."""
    values = {}
    for name, value in service.get("environment", {}).items():
        value = str(value).replace("${TALLY_OPERATOR_KEY:?set TALLY_OPERATOR_KEY}", operator_key)
        values[name] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return values


def test_compose_accepts_the_file_with_every_profile():
    tool = compose_tool()
    if tool is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    profiles = [arg for p in ALL_PROFILES for arg in ("--profile", p)]
    env = {**os.environ, "TALLY_OPERATOR_KEY": "tly_op_compose"}
    checked = subprocess.run(
        [*tool, *profiles, "config", "--services"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert sorted(checked.stdout.split()) == sorted(services())
    # Without the operator key, compose refuses to start anything.
    env.pop("TALLY_OPERATOR_KEY")
    refused = subprocess.run([*tool, "config", "-q"], cwd=ROOT, env=env, capture_output=True)
    assert refused.returncode != 0


def test_a_plain_up_starts_postgres_migrations_two_api_workers_and_the_scheduler():
    compose = services()
    default = {name for name, service in compose.items() if "profiles" not in service}
    assert default == {"db", "migrate", "api", "scheduler"}
    assert compose["migrate"]["command"] == ["tally", "migrate"]
    assert compose["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("api", "scheduler"):
        assert compose[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert compose[name]["restart"] == "unless-stopped"
    api = compose["api"]["command"]
    assert api[:2] == ["tally", "serve"] and api[api.index("--workers") + 1] == "2"
    assert environment(compose["api"], "k")["TALLY_SCHEDULER"] == "off"
    assert compose["scheduler"]["command"][:2] == ["tally", "scheduler"]
    for name in ("migrate", "api", "scheduler"):
        env = environment(compose[name], "k")
        assert env["TALLY_DIRECT_DATABASE_URL"] == COMPOSE_DB  # never through pgbouncer
        assert env["TALLY_DATABASE_URL"] == COMPOSE_DB  # pgbouncer only when asked
    assert "/healthz/ready" in " ".join(compose["api"]["healthcheck"]["test"])


def test_prometheus_scrapes_the_ports_the_services_serve_metrics_on():
    compose = services()
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    api = compose["api"]["command"]
    scheduler = compose["scheduler"]["command"]
    assert targets == {
        "tally-api": [f"api:{api[api.index('--port') + 1]}"],
        "tally-scheduler": [f"scheduler:{scheduler[scheduler.index('--metrics-port') + 1]}"],
    }
    assert scheduler[scheduler.index("--metrics-host") + 1] == "0.0.0.0"
    assert "./deploy/prometheus:/etc/prometheus:ro" in compose["prometheus"]["volumes"]


def test_the_pgbouncer_service_runs_the_deployed_config():
    compose = services()
    bouncer = compose["pgbouncer"]
    assert bouncer["profiles"] == ["pgbouncer"]
    assert (ROOT / bouncer["build"] / "Dockerfile").is_file()
    assert "./deploy/pgbouncer/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro" in bouncer["volumes"]
    ini = (ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert re.search(r"^tally = host=db port=5432 dbname=tally$", ini, re.MULTILINE)
    dockerfile = (ROOT / bouncer["build"] / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends pgbouncer" in dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_holds_every_package_and_runs_tally():
    instructions = dockerfile_instructions()
    copied = set()
    for kind, args in instructions:
        if kind == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source)
    # Every package pyproject.toml installs is in the image.
    for package in ("app", "graphql_schema", "jobs", "tally"):
        assert package in copied, package
    assert {"pyproject.toml", "constraints.txt"} <= copied
    runs = [args for kind, args in instructions if kind == "RUN"]
    assert "pip install --no-cache-dir -c constraints.txt -e ." in runs
    assert "npm ci --no-audit --no-fund" in runs  # GraphiQL's assets, never a CDN
    cmd = [args for kind, args in instructions if kind == "CMD"][-1]
    assert yaml.safe_load(cmd)[:2] == ["tally", "serve"]
    # Every service built from it runs the `tally` the image installs.
    for name in ("migrate", "api", "scheduler"):
        assert services()[name]["build"] == "."
        assert services()[name]["command"][0] == "tally"


def local(command: list[str], env: dict[str, str], database: str, ports: dict[str, str]):
    """A compose command and environment, as a process here: `tally` from this checkout,
    the `db` service replaced by the test PostgreSQL, published ports by free ones."""
    args = [sys.executable, "-m", "tally", *command[1:]]
    args = [ports.get(arg, "127.0.0.1" if arg == "0.0.0.0" else arg) for arg in args]
    env = {name: value.replace(COMPOSE_DB, database) for name, value in env.items()}
    return args, {**os.environ, **env}


def worker_count(pid: int) -> int:
    children = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children += 1
    return children


@pytest.fixture
def stack_database() -> Iterator[str]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    name = f"tally_compose_{uuid.uuid4().hex[:10]}"
    yield f"{PG_SERVER}/{name}"
    asyncio.run(drop_postgres_database(name))


def wait_for(url: str, process: subprocess.Popen, log: Path) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 in 60 s: {log.read_text()}")


def test_the_services_commands_start_the_stack_here(stack_database, tmp_path):
    compose = services()
    key = "tly_op_compose_stack"
    api_port, metrics_port = str(free_port()), str(free_port())
    ports = {"8000": api_port, "9464": metrics_port}
    migrate = compose["migrate"]
    args, env = local(migrate["command"], environment(migrate, key), stack_database, ports)
    migrated = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    assert f"database ready: {stack_database}" in migrated.stdout

    processes = {}
    try:
        for name in ("api", "scheduler"):
            service = compose[name]
            args, env = local(service["command"], environment(service, key), stack_database, ports)
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            log = tmp_path / f"{name}.log"
            processes[name] = (
                subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT),
                log,
            )
        api, api_log = processes["api"]
        base = f"http://127.0.0.1:{api_port}"
        assert wait_for(f"{base}/healthz/ready", api, api_log).json()["status"] == "ready"
        # compose's healthcheck, as written, against this port
        probe = [
            part.replace("127.0.0.1:8000", f"127.0.0.1:{api_port}")
            for part in compose["api"]["healthcheck"]["test"][1:]
        ]
        assert probe[0] == "python"
        healthy = subprocess.run([sys.executable, *probe[1:]], capture_output=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
        assert worker_count(api.pid) >= 2  # uvicorn's two workers (and its resource tracker)
        created = httpx.post(
            f"{base}/graphql",
            json={
                "query": 'mutation { createWorkspace(input: {name: "C", plan: "free"}) '
                "{ workspace { id } } }"
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert created.status_code == 200 and "errors" not in created.json(), created.text

        scheduler, scheduler_log = processes["scheduler"]
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        deadline = time.monotonic() + 30
        while True:  # the first tick runs at start
            text = wait_for(metrics_url, scheduler, scheduler_log).text
            if 'tally_job_last_success_timestamp_seconds{job="renewals"}' in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        assert re.search(r"^tally_database_up 1\.0$", text, re.MULTILINE), text
        assert re.search(r'^tally_job_runs_total\{job="renewals",outcome="ok"\} 1\.0$', text, re.M)
        # Each worker checked the database before answering; a check that failed (a loaded
        # machine) is checked again DATABASE_CHECK_EVERY later, and logged with why.
        deadline = time.monotonic() + 2 * DATABASE_CHECK_EVERY + TIMEOUT
        while True:
            api_metrics = httpx.get(f"{base}/metrics", timeout=10).text
            if re.search(r"^tally_database_up 1\.0$", api_metrics, re.MULTILINE):
                break
            assert time.monotonic() < deadline, api_metrics + api_log.read_text()
            time.sleep(0.5)
        # The API runs no job: TALLY_SCHEDULER=off.
        assert "tally_job_runs_total{" not in api_metrics
    finally:
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            process.wait(timeout=30)
