"""The emergency stop (`gameday abort`, and the console's abort button): every run in progress
on a stack home records "aborted by operator", rolls its faults back and ends as interrupted.

    send_abort(homes)          -> the runs told to stop: [(home, run entry)]
    wait_ended(runs, wait_s)   -> the pids still rolling back after wait_s (none: all done)
    is_gameday_home(folder)    a folder a stack or a run has used (an abort aimed elsewhere is refused)
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from harness import targets
from harness.core import procs
from harness.run import active_runs

__all__ = ["send_abort", "wait_ended", "is_gameday_home"]


def is_gameday_home(home: Path) -> bool:
    """A folder a stack or a run has used: its description, its marker or its runs."""
    return home.is_dir() and any((home / name).exists() for name in (targets.TARGET_FILE, targets.HOME_MARKER, "runs"))


def send_abort(homes: list[Path]) -> list[tuple[Path, dict]]:
    """Ask every run in progress on `homes` to stop: the request is left in the home (so the run
    records it as the operator's abort), then the run gets SIGTERM and rolls back."""
    runs = [(home, run) for home in homes for run in active_runs.active(home)]
    for home, run in runs:
        active_runs.request_abort(home, run["pid"])
        try:
            os.kill(run["pid"], signal.SIGTERM)
        except ProcessLookupError:  # it ended on its own meanwhile
            pass
    return runs


def wait_ended(runs: list[tuple[Path, dict]], wait_s: float) -> list[int]:
    """Wait up to `wait_s` for the runs to finish their rollbacks; the pids still running."""
    return procs.wait_gone([run["pid"] for _, run in runs], wait_s)
