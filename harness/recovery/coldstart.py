"""Cold start: bring the whole stack back after everything died at once. The BCP's
"Container Orchestration Failure" procedure, `kubectl apply -f deployment/kubernetes/`, is for
the embedded stack `gameday target up`: idempotent, every component started in dependency order
and waited for until healthy.

Bringing the stack back is the stack layer's `embedded.up` (it also clears the stale lock files a
stack killed at once leaves behind); this runbook wraps it for experiments: it reports what it
found and did, and clears the undo of the fault that took the stack down.
"""
from __future__ import annotations

import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness import target as target_mod
from harness.faults import clear_undo
from harness.stack import embedded, postgres
from harness.stack.layout import Layout

__all__ = ["cold_start", "ensure_healthy"]


def cold_start(target: str | None = None) -> dict:
    """Start the whole embedded stack again from its home (idempotent: a running stack is left
    as it is and only checked). Returns how long it took and the health of every component."""
    try:
        t = target_mod.load(target)
    except target_mod.TargetError as e:
        raise ActivityFailed(str(e)) from None
    if t.get("kind") != "local":
        raise ActivityFailed(f"cold start needs the embedded stack (kind local), target is {t.get('kind')!r}")
    home, base = t["home"], int(t["port_base"])
    started = time.monotonic()
    # `up` clears them too; cleared here first to report them.
    removed = postgres.remove_stale_locks(Layout(Path(home), base))
    log: list[str] = []
    try:
        new = embedded.up(home, base, log=log.append)
    except Exception as e:
        raise ActivityFailed(f"cold start of {home} failed: {e}") from None
    took = time.monotonic() - started
    clear_undo("lose_whole_stack")
    status = embedded.status(home)
    return {"home": home, "took_s": round(took, 3), "api_url": new["api_url"], "primary": new["primary"]["program"],
            "stale_lock_files_removed": removed, "steps": log, "healthy": status["healthy"],
            "components": {c["name"]: c["state"] for c in status["components"]}}


def ensure_healthy(timeout_s: float = 60.0, target: str | None = None) -> dict:
    """The last rollback of a run: wait until every component of the stack is healthy again (a
    restarted API loading its models, a standby reconnecting), so the next experiment of a suite
    starts from steady state. Whatever is still unhealthy after `timeout_s` seconds is brought
    back by a cold start. Returns how long it waited and whether a cold start was needed."""
    try:
        timeout_s = float(timeout_s)
    except (TypeError, ValueError):
        raise ActivityFailed(f"timeout_s must be a number of seconds, got {timeout_s!r}") from None
    if not 0 <= timeout_s <= 3600:
        raise ActivityFailed(f"timeout_s must be between 0 and 3600 seconds, got {timeout_s!r}")
    try:
        t = target_mod.load(target)
    except target_mod.TargetError as e:
        raise ActivityFailed(str(e)) from None
    started = time.monotonic()
    while True:
        status = embedded.status(t["home"])
        if status["healthy"]:
            return {"healthy": True, "waited_s": round(time.monotonic() - started, 3), "cold_start": None}
        if time.monotonic() - started >= timeout_s:
            break
        time.sleep(0.5)
    unhealthy = {c["name"]: c["detail"] for c in status["components"] if not c["healthy"]}
    started_cold = cold_start(target)
    return {"healthy": started_cold["healthy"], "waited_s": round(time.monotonic() - started, 3),
            "unhealthy_before_cold_start": unhealthy, "cold_start": started_cold}

