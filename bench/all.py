"""Every figure of issue 20 in one run, each with its raw baseline, ratio, target and verdict.

    .venv/bin/python bench/all.py [--quick] [--json FILE] [--workspaces 100000]
                                  [--charges 2000] [--memory-minutes 10]

Runs, one after another, each as its own process with its own fresh PostgreSQL database:
bench/charge.py (single charges: many:1, many:10, hot:10, hot:50), bench/batch.py
(recordUsageBatch, 1,000 a batch, 1 and 4 clients), bench/renewals.py (the renewal sweep of
`--workspaces` due workspaces, with one scheduler process and with two) and bench/memory.py (each
API process's resident memory through `--memory-minutes` of mixed load). Each script prints its
own detail as it goes; at the end one table gives every figure, the raw asyncpg baseline of the
same run, the ratio, the issue's target and PASS or FAIL. `--quick` is a smoke run of a couple
of minutes (fewer charges and batches, 2,000 workspaces, 30 s of load): its figures are not the
issue's. The servers run with `tally serve`'s default workers (one per CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
# The targets for single charges: ratio to the raw transaction (None: measured only).
CHARGE_TARGETS = {"many/1c": 0.5, "many/10c": 0.5, "hot/10c": None, "hot/50c": 1.0}
BATCH_TARGET = 20_000  # results/s at 1,000 a batch, in every run
RENEWAL_SECONDS = 60  # for 100,000 due workspaces
RENEWAL_RATIO = 0.8
MEMORY_MB = 200


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    raw: float | None  # the baseline of the same run, in the same unit
    target: str
    passed: bool | None  # None: no target

    @property
    def ratio(self) -> float | None:
        return self.value / self.raw if self.raw else None


def run(script: str, *args: str) -> Any:
    """Runs bench/`script` with `args` and --json; returns what it wrote (None on failure)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    command = [sys.executable, str(BENCH / script), *args, "--json", path]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    code = subprocess.call(command, cwd=BENCH.parent)
    print(f"({script}: exit {code}, {time.monotonic() - started:.0f} s)", flush=True)
    try:
        text = Path(path).read_text()
        return json.loads(text) if code == 0 and text else None
    finally:
        os.unlink(path)


def charge_figures(figures: Any) -> list[Figure]:
    rows = []
    for mode, target in CHARGE_TARGETS.items():
        found = (figures or {}).get("modes", {}).get(mode)
        if found is None:
            rows.append(Figure(f"recordUsage {mode}", 0, "charges/s", None, "not run", False))
            continue
        ratio = found["tally"] / found["raw"]
        rows.append(
            Figure(
                f"recordUsage {mode.replace('/', ', ').replace('c', ' clients')}",
                found["tally"],
                "charges/s",
                found["raw"],
                f">= {target}x raw" if target else "(measured)",
                None if target is None else ratio >= target,
            )
        )
        if "empty" in found:  # the same requests without a charge: what HTTP leaves for one
            rows.append(
                Figure(
                    f"  {{ __typename }}, {mode.replace('/', ', ').replace('c', ' clients')}",
                    found["empty"],
                    "requests/s",
                    found["raw"],
                    "(ceiling)",
                    None,
                )
            )
    return rows


def batch_figures(figures: Any) -> list[Figure]:
    runs = [r for r in (figures or {}).get("runs", []) if r["size"] == 1000]
    if not runs:
        return [Figure("recordUsageBatch 1,000", 0, "results/s", None, "not run", False)]
    return [
        Figure(
            f"recordUsageBatch 1,000 x {r['clients']} client{'s' if r['clients'] > 1 else ''}",
            r["tally"],
            "results/s",
            r["raw"],
            f">= {BATCH_TARGET:,}/s",
            r["tally"] >= BATCH_TARGET,
        )
        for r in runs
    ]


def renewal_figures(figures: Any, workspaces: int, schedulers: int) -> list[Figure]:
    label = f"renewal sweep, {schedulers} scheduler{'s' if schedulers > 1 else ''}"
    if not figures:
        return [Figure(label, 0, "workspaces/s", None, "not run", False)]
    # The bound is 60 s for 100,000: scaled to the population of this run.
    seconds = RENEWAL_SECONDS * workspaces / 100_000
    within = figures["seconds"] <= seconds
    ratio_ok = figures["ratio"] >= RENEWAL_RATIO
    return [
        Figure(
            f"{label} ({workspaces:,} in {figures['seconds']:.1f} s)",
            figures["per_second"],
            "workspaces/s",
            figures["raw_per_second"],
            f"<= {seconds:g} s and >= {RENEWAL_RATIO}x raw",
            within and ratio_ok and not figures.get("not_renewed") and not figures.get("not_once"),
        )
    ]


def memory_figures(figures: Any, minutes: float) -> list[Figure]:
    label = f"API process RSS, {minutes:g} min of mixed load"
    if not figures:
        return [Figure(label, 0, "MB", None, "not run", False)]
    return [
        Figure(
            label,
            figures["largest_mb"],
            "MB",
            None,
            f"< {MEMORY_MB} MB each",
            figures["largest_mb"] < MEMORY_MB,
        )
    ]


def show(rows: list[Figure]) -> None:
    print(
        f"\n{'figure':<50}{'Tally':>12}{'raw':>12}{'ratio':>8}  {'unit':<14}{'target':<28}verdict"
    )
    for f in rows:
        raw = f"{f.raw:>12,.0f}" if f.raw else f"{'':>12}"
        ratio = f"{f.ratio:>7.2f}x" if f.ratio else f"{'':>8}"
        verdict = "-" if f.passed is None else "PASS" if f.passed else "FAIL"
        print(f"{f.name:<50}{f.value:>12,.1f}{raw}{ratio}  {f.unit:<14}{f.target:<28}{verdict}")


def main(args: argparse.Namespace) -> list[Figure]:
    quick = args.quick
    charges = "200" if quick else str(args.charges)
    workspaces = 2_000 if quick else args.workspaces
    minutes = 0.5 if quick else args.memory_minutes
    batch_args = ["--sizes", "1000", "--no-profile"] + (["--batches", "8"] if quick else [])
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    rows = charge_figures(run("charge.py", "--charges", charges))
    rows += batch_figures(run("batch.py", *batch_args))
    for schedulers in (1, 2):
        found = run("renewals.py", "--workspaces", str(workspaces), "--schedulers", str(schedulers))
        rows += renewal_figures(found, workspaces, schedulers)
    if minutes > 0:
        rows += memory_figures(run("memory.py", "--minutes", str(minutes)), minutes)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(
        "PostgreSQL; ratio = Tally over the raw asyncpg baseline measured in the same run"
        + (" (--quick: a smoke run, not the issue's figures)" if quick else "")
    )
    show(rows)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--charges", type=int, default=2000, help="bench/charge.py --charges")
    parser.add_argument("--workspaces", type=int, default=100_000, help="due, for renewals")
    parser.add_argument("--memory-minutes", type=float, default=10, help="0: no memory run")
    arguments = parser.parse_args()
    results = main(arguments)
    if arguments.json:
        payload = [{**asdict(f), "ratio": f.ratio} for f in results]
        Path(arguments.json).write_text(json.dumps(payload, indent=1))
    sys.exit(0 if all(f.passed is not False for f in results) else 1)
