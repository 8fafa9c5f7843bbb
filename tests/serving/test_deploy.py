"""deploy/nginx.conf and the compose `proxy` service that runs it (no Docker here: parsed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def directive(name: str) -> str:
    found = re.findall(rf"^\s*{name}\s+([^;{{\n]+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert len(found) == 1, (name, found)
    return found[0]


def test_the_proxy_service_mounts_the_config_and_points_at_the_api():
    services = compose()["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"] == ["api"]
    assert proxy["profiles"] == ["proxy"]  # `docker compose up` alone runs what it always did
    api_port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert directive("server") == f"api:{api_port}"
    assert [p.split(":")[-1] for p in proxy["ports"]] == [directive("listen")]


def test_the_proxy_bounds_every_phase_of_a_slow_client():
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert directive(name) == "10s", name
    assert directive("client_max_body_size") == "1m"  # the app's own limit: 1 MiB
    assert directive("limit_conn") == "per_client 32"
    assert directive("proxy_set_header Upgrade") == "$http_upgrade"
    assert directive("proxy_set_header Connection") == "$connection_upgrade"


def test_nginx_keeps_upstream_connections_idle_for_less_than_uvicorn_does():
    uvicorn_keep_alive = 5  # timeout_keep_alive in tally/cli.py
    upstream = re.search(r"upstream tally_api \{(.*?)\}", NGINX_CONF.read_text(), re.DOTALL)
    assert upstream is not None
    idle = re.search(r"keepalive_timeout (\d+)s;", upstream.group(1))
    assert idle is not None and int(idle.group(1)) < uvicorn_keep_alive


def test_nginx_accepts_the_config(tmp_path):
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    # `api` resolves only inside compose's network; nginx -t resolves upstream hosts.
    conf = NGINX_CONF.read_text().replace("server api:8000;", "server 127.0.0.1:8000;")
    (tmp_path / "nginx.conf").write_text(conf)
    command = ["nginx", "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", "nginx.conf"]
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
