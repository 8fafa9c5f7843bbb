"""Large documents from one anonymous client: the server's memory and its event loop.

Starts `tally serve` on a fresh SQLite file, sends large GraphQL documents without a key and
measures the server's resident memory after each, while another client pings /healthz every
50 ms and records how long each answer took. With `--baseline DIR` (a checkout of an older
commit, e.g. made with `git worktree add`), the same run is made against that code first, so
the two lines compare in one run.

    python -m bench.hostile --baseline /tmp/tally-baseline --requests 6
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    label: str
    size: int
    statuses: list[int] = field(default_factory=list)
    rss_mb: list[int] = field(default_factory=list)
    rss_before: int = 0
    pings: list[float] = field(default_factory=list)
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def serve(checkout: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "TALLY_OPERATOR_KEY": "tly_op_bench",
        "TALLY_SCHEDULER": "off",
    }
    env.pop("TALLY_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "tally", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{checkout}: the server did not start")


def document(size: int, n: int) -> str:
    """About `size` characters of valid GraphQL: many aliased fields."""
    field = "a{}: plans {{ code }} "
    count = size // len(field.format(99999))
    return "{ " + "".join(field.format(i) for i in range(count)) + " }" + " " * n


def measure(label: str, checkout: Path, size: int, requests: int) -> Run:
    run = Run(label, size)
    with tempfile.TemporaryDirectory() as workdir:
        process, base = serve(checkout, Path(workdir))
        stop = threading.Event()

        def ping() -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                while not stop.is_set():
                    start = time.perf_counter()
                    client.get("/healthz")
                    run.pings.append(time.perf_counter() - start)
                    time.sleep(0.05)

        try:
            run.rss_before = rss_mb(process.pid)
            pinger = threading.Thread(target=ping)
            pinger.start()
            started = time.perf_counter()
            with httpx.Client(base_url=base, timeout=120) as client:
                for n in range(requests):
                    body = {"query": document(size, n)}
                    run.statuses.append(client.post("/graphql", json=body).status_code)
                    run.rss_mb.append(rss_mb(process.pid))
            run.seconds = time.perf_counter() - started
            stop.set()
            pinger.join()
        finally:
            stop.set()
            process.terminate()
            process.wait(timeout=20)
    return run


def report(run: Run) -> str:
    pings = sorted(run.pings) or [0.0]
    p99 = pings[min(len(pings) - 1, int(len(pings) * 0.99))]
    return (
        f"{run.label:10} {run.size / 1e6:5.1f} MB x {len(run.statuses)}"
        f"  statuses {sorted(set(run.statuses))}"
        f"  RSS {run.rss_before} -> {run.rss_mb[-1]} MB (peak {max(run.rss_mb)})"
        f"  /healthz p99 {p99 * 1000:.0f} ms, max {pings[-1] * 1000:.0f} ms"
        f" over {len(run.pings)} pings, {run.seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare with")
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--sizes", default="2.2,0.9", help="document sizes in MB, comma separated")
    args = parser.parse_args()
    sizes = [int(float(s) * 1e6) for s in args.sizes.split(",")]
    checkouts = [("this", ROOT)]
    if args.baseline is not None:
        checkouts.insert(0, ("baseline", args.baseline.resolve()))
    for size in sizes:
        for label, checkout in checkouts:
            print(report(measure(label, checkout, size, args.requests)), flush=True)


if __name__ == "__main__":
    main()
