"""API faults on the embedded stack (BCP "API Service Failure"): the API crashes, or hangs.

  crash_api    SIGKILL API processes: the whole API, or some of its workers (replicas).
  hang_api     SIGSTOP API processes: alive to the supervisor, deaf to clients; for a known number
               of seconds, or until something replaces them (the liveness checker) or resume_api.
  resume_api   rollback of hang_api: SIGCONT whatever it stopped and whatever runs now.

The API is gunicorn: one arbiter (the supervised program's main pid, its process-group leader)
and its workers (the replicas, its children). The arbiter respawns a worker that dies; supervision
restarts the whole API when the arbiter dies.
"""
from __future__ import annotations

import os
import signal
import time

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.faults import clear_undo, containers
from harness.faults._common import (duration, effect, fault_family, freeze, gone_effect, lease, process_target, program_pid,
                                    stop_for, stopped_now)

__all__ = ["crash_api", "hang_api", "resume_api"]

UNDO_KEY = "hang_api"
_hung: list[int] = []  # pids hang_api stopped with no timed resume: resume_api's to resume


def crash_api(replicas: str | int = "all", target: str | None = None) -> dict:
    """SIGKILL API processes (the BCP's "API service crash").

    `replicas`: 'all' (gunicorn's arbiter and every worker: nothing answers until supervision
    restarts the whole API), 'workers' (every worker, the arbiter spared: it respawns them, unless
    it is frozen), or a whole number N (that many workers: the arbiter replaces them at once; with 1
    no downtime is expected). Workers already dead (zombies a frozen arbiter has not reaped) are
    not counted. Returns the pids killed. On the container target the API is a container whose
    main process is gunicorn's arbiter: 'all' crashes the container (its restart policy brings it
    back), workers are killed inside it the same way."""
    replicas = _replicas(replicas, ("all", "workers"))
    t = process_target(target)
    arbiter = program_pid(t, "api")
    if replicas == "all":
        members = procs.group_members(arbiter)
        os.killpg(arbiter, signal.SIGKILL)
        landed = time.time()
        return {"replicas": "all", "arbiter": arbiter, "killed": members, "at": landed, "landed_at": landed,
                "effect": gone_effect(members, "the API's arbiter and workers")}
    workers = _live_workers(arbiter, "crash")
    chosen = _pick(workers, replicas, arbiter)
    procs.signal_all(chosen, signal.SIGKILL)
    landed = time.time()
    return {"replicas": replicas, "arbiter": arbiter, "killed": chosen, "workers_before": workers, "at": landed,
            "landed_at": landed,
            "effect": gone_effect(chosen, "API workers")}


def hang_api(duration_s: float | None = None, replicas: str | int = "all", target: str | None = None,
             configuration: dict = None) -> dict:
    """Freeze API processes with SIGSTOP (the BCP's "API service hang").

    `duration_s`: resume them with SIGCONT after exactly that many seconds (the action returns
    then: an outage of known length, what calibration needs); null (the default): no timed resume,
    they stay stopped until the liveness checker kills the frozen API (supervision then starts a
    fresh one) or `resume_api`, the rollback, resumes them.
    `replicas`: 'all' (the arbiter and every worker: nothing answers), 'arbiter' (only gunicorn's
    arbiter: the workers keep serving, but a worker that dies is never replaced), 'workers' or a
    whole number N (every worker / N workers hang: gunicorn's worker timeout replaces them).
    If the liveness checker kills a frozen API before a timed resume, that is the plan's
    auto-restart at work; SIGCONT then finds nothing to resume.
    On the container target 'all' pauses the API's container (cgroup freezer): nothing in it runs
    until the timed resume, resume_api or the lease (no liveness checker replaces it there)."""
    if duration_s is not None:
        duration_s = duration(duration_s)
    replicas = _replicas(replicas, ("all", "arbiter", "workers"))
    t = process_target(target)
    if fault_family(t) == "docker" and replicas == "all":
        return {"replicas": "all", **containers.pause_container("api", duration_s, target, configuration)}
    arbiter = program_pid(t, "api")
    if replicas == "all":
        pids = procs.group_members(arbiter)
    elif replicas == "arbiter":
        pids = [arbiter]
    else:
        pids = _pick(_live_workers(arbiter, "hang"), replicas, arbiter)
    record = {"replicas": replicas, "arbiter": arbiter, "stopped": pids, "duration_s": duration_s, "at": time.time()}
    # The resume is in the fault ledger with a deadline before anything stops: a SIGKILLed harness
    # leaves processes that a detached timer resumes (harness/targets/reaper.py).
    if duration_s is not None:
        return {**record, **stop_for(pids, duration_s, UNDO_KEY, lease(t, configuration))}
    _hung.extend(p for p in pids if p not in _hung)
    landed = freeze(list(_hung), UNDO_KEY, lease(t, configuration))
    seen = stopped_now(pids)
    return {**record, "stopped_s": None, "landed_at": landed,
            "effect": effect(bool(seen), f"{len(seen)} of {len(pids)} API processes seen stopped")}


def resume_api(target: str | None = None) -> dict:
    """Rollback of hang_api: SIGCONT every process hang_api stopped (those the liveness checker
    killed meanwhile are simply gone) and every process of the API running now. Harmless when
    nothing is stopped."""
    pids, paused = list(_hung), None
    try:  # a rollback never fails for want of a target it can act on
        t = process_target(target)
        if fault_family(t) == "docker":
            paused = containers.resume_container("api", target)["detail"]
        pids += procs.group_members(program_pid(t, "api"))
    except ActivityFailed:
        pass
    resumed = procs.signal_all(sorted(set(pids)), signal.SIGCONT)
    _hung.clear()
    clear_undo(UNDO_KEY)
    return {"resumed": resumed, **({"container": paused} if paused else {})}


# ---------------------------------------------------------------------------------------------
# Internals

def _replicas(value, words: tuple[str, ...]) -> str | int:
    if isinstance(value, str) and value in words:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ActivityFailed(f"replicas must be {', '.join(repr(w) for w in words)} or a whole number of workers "
                         f"(at least 1), got {value!r}")


def _pick(workers: list[int], replicas: str | int, arbiter: int) -> list[int]:
    if replicas == "workers":
        return workers
    if replicas > len(workers):
        raise ActivityFailed(f"replicas {replicas} is more than the {len(workers)} live API workers of arbiter pid "
                             f"{arbiter}; use 'workers' for every one")
    return workers[:replicas]


def _live_workers(arbiter: int, what: str) -> list[int]:
    workers = [p for p in procs.children(arbiter) if procs.running(p)]
    if not workers:
        raise ActivityFailed(f"the API arbiter (pid {arbiter}) has no live workers to {what}")
    return workers
