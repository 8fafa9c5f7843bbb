"""tally.metrics_dirs: a directory is removed only when no process holds it any more.

Held by real processes (a server and its worker), killed with SIGKILL as the OOM killer would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tally.metrics_dirs import LOCK, PREFIX, hold, remove_abandoned

HOLDER = """
import os, sys, time
from tally import metrics_dirs
{how}
print("held", flush=True)
time.sleep(60)
"""


def _holder(how: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A process that holds a directory, as `how` says, until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(how=how)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def _killed(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait(timeout=10)


def test_a_directory_stays_while_any_of_its_processes_lives(tmp_path):
    made = tmp_path / f"{PREFIX}abc"
    made.mkdir()
    server = _holder(f"metrics_dirs.hold({str(made)!r})")
    assert (made / LOCK).exists() and not list(made.glob(f"{LOCK}.*"))  # renamed into place
    worker = _holder("metrics_dirs.hold_own()", {"PROMETHEUS_MULTIPROC_DIR": str(made)})
    _killed(server)  # the supervisor killed outright: its worker still serves
    assert remove_abandoned(tmp_path) == [] and made.exists()
    _killed(worker)
    assert remove_abandoned(tmp_path) == [made] and not made.exists()


def test_what_is_left_alone(tmp_path):
    mine = tmp_path / f"{PREFIX}mine"  # held by this process
    mine.mkdir()
    hold(str(mine))
    unlocked = tmp_path / f"{PREFIX}old"  # an older server's: no lock file to tell
    unlocked.mkdir()
    (unlocked / "counter_1.db").write_bytes(b"\0" * 16)
    other = tmp_path / f"not-{PREFIX}x"
    other.mkdir()
    (other / LOCK).touch()
    abandoned = tmp_path / f"{PREFIX}gone"
    abandoned.mkdir()
    (abandoned / LOCK).touch()
    link = tmp_path / f"{PREFIX}link"
    link.symlink_to(abandoned)
    stray = tmp_path / f"{PREFIX}file"
    stray.write_text("a file")

    assert remove_abandoned(tmp_path) == [abandoned]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(p.name for p in (mine, unlocked, other, link, stray))
    assert remove_abandoned(tmp_path) == []


def test_an_operators_own_directory_is_not_held_by_workers(tmp_path, monkeypatch):
    named = tmp_path / "metrics"
    named.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(named))
    from tally import metrics_dirs

    metrics_dirs.hold_own()
    assert list(Path(named).iterdir()) == []
