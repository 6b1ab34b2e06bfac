"""API faults that process.py's timed ones do not cover (BCP "API Service Failure"):

  freeze_api     the API hangs and stays hung: SIGSTOP with no timed resume. Alive to the
                 supervisor, deaf to clients; only the liveness checker can notice and replace it.
  crash_workers  SIGKILL API workers (not the arbiter).
  thaw_api       rollback of freeze_api: SIGCONT whatever it stopped and whatever runs now.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.faults import clear_undo, process, register_undo

__all__ = ["freeze_api", "thaw_api", "crash_workers"]

SCOPES = ("all", "arbiter")
_frozen: list[int] = []


def freeze_api(scope: str = "all", target: str | None = None) -> dict:
    """SIGSTOP API processes and leave them stopped: no timed resume.

    `scope`: 'all' (arbiter and every worker: requests queue and time out, /health stops
    answering; the liveness checker should kill the frozen API after ~5 s and supervision
    replaces it), or 'arbiter' (only gunicorn's arbiter: workers keep serving but a worker that
    dies is never replaced). Registers an undo that resumes them; `thaw_api` is the rollback."""
    if scope not in SCOPES:
        raise ActivityFailed(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    t = process._local_target(target)
    arbiter = process._program_pid(t, "api")
    pids = process._group_members(arbiter) if scope == "all" else [arbiter]
    _frozen.extend(p for p in pids if p not in _frozen)
    register_undo("freeze_api", lambda: _cont(list(_frozen)))
    process._signal_all(pids, signal.SIGSTOP)
    return {"scope": scope, "arbiter": arbiter, "stopped": pids, "at": time.time()}


def thaw_api(target: str | None = None) -> dict:
    """Rollback of freeze_api: SIGCONT every process freeze_api stopped (those the liveness checker
    killed meanwhile are simply gone) and every process of the API running now."""
    pids = list(_frozen)
    try:
        t = process._local_target(target)
        pids += process._group_members(process._program_pid(t, "api"))
    except ActivityFailed:
        pass
    resumed = _cont(sorted(set(pids)))
    _frozen.clear()
    clear_undo("freeze_api")
    return {"resumed": resumed}


def crash_workers(count: int | None = None, target: str | None = None) -> dict:
    """SIGKILL `count` API workers (default: every worker), leaving gunicorn's arbiter alone.
    Zombies (workers already dead that a frozen arbiter did not reap) are skipped."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ActivityFailed(f"count must be a whole number of at least 1, or null for every worker, got {count!r}")
    t = process._local_target(target)
    arbiter = process._program_pid(t, "api")
    workers = [p for p in process._children(arbiter) if _running(p)]
    if not workers:
        raise ActivityFailed(f"the API arbiter (pid {arbiter}) has no live workers to crash")
    chosen = workers if count is None else workers[:count]
    for pid in chosen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"arbiter": arbiter, "killed": chosen, "workers_before": workers, "at": time.time()}


# ---------------------------------------------------------------------------------------------
# Internals

def _running(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] != "Z"


def _cont(pids: list[int]) -> list[int]:
    return process._signal_all(pids, signal.SIGCONT)
