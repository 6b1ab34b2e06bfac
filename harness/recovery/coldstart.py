"""Cold start: bring the whole stack back after everything died at once. The BCP's
"Container Orchestration Failure" procedure, `kubectl apply -f deployment/kubernetes/`, is for
the embedded stack `gameday target up`: idempotent, every component started in dependency order
and waited for until healthy.

Bringing the stack back is the stack layer's `embedded.up` (it also clears the stale lock files a
stack killed at once leaves behind, and the fault ledger's cold-start entries: the stack is up
again); this runbook wraps it for experiments and reports what it found and did. The fault's own
undo finds the stack healthy afterwards and does nothing.
"""
from __future__ import annotations

import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness import targets
from harness.targets.embedded import stack as embedded, postgres
from harness.targets.embedded.layout import Layout

__all__ = ["cold_start", "ensure_healthy"]


def cold_start(target: str | None = None) -> dict:
    """Start the whole embedded stack again from its home (idempotent: a running stack is left
    as it is and only checked). Returns how long it took and the health of every component."""
    t = targets.for_activity(target).require("processes", "a cold start").data
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
    adapter = targets.for_activity(target).require(("processes", "docker"), "waiting for a healthy stack")
    t = adapter.data
    started = time.monotonic()
    if adapter.fault_family == "docker":
        # The container target's cold start is its own `up`: it starts what is stopped, unpauses
        # what is frozen and reconnects what was cut off (Target.settle repairs after waiting).
        healthy = adapter.settle(timeout_s, log=lambda m: None)
        return {"healthy": healthy, "waited_s": round(time.monotonic() - started, 3), "cold_start": None}
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

