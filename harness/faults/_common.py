"""What the fault modules share: the target they act on (asked of its adapter: which fault
implementation applies), a program's pid, the database server in a role (asked of the servers now), argument checks, the
timed SIGSTOP, and the evidence a fault returns of its effect.

Every fault returns `effect: {observed, detail}`: proof that it did what it says (the killed
processes are gone, the frozen ones were stopped, the damage is visible). The judge makes a run
whose fault had no observable effect an error: nothing was tested. Private to harness.faults (experiments call
the fault modules, never this one); generic process helpers live in harness.core.procs.
"""
from __future__ import annotations

import signal
import time

from chaoslib.exceptions import ActivityFailed

from harness import targets
from harness.core import pgroles, procs
from harness.core.run_context import run_context
from harness.faults import DEFAULT_LEASE_S, clear_undo, register_undo
from harness.records import fault_ledger
from harness.targets import reaper

__all__ = ["lease", "LEASE_MARGIN_S", "PROGRAMS", "HOLDABLE", "local_target", "process_target", "fault_family", "check_program", "program_pid", "duration", "positive_int",
           "stop_for", "freeze", "stopped_now", "server", "effect", "gone_effect"]

PROGRAMS = ("postgres-primary", "postgres-standby", "api", "prometheus", "alertmanager", "alert-receiver", "liveness",
            "heartbeat", "fault-reaper", "rpo-exporter")
HOLDABLE = ("postgres-primary", "postgres-standby", "api")  # their launchers wait on a hold file
MAX_DURATION_S = 3600


LEASE_MARGIN_S = 30.0  # beyond the scenario's timeout: the final read, the checks, the rollbacks


def lease(t: dict, configuration: dict | None) -> dict:
    """register_undo's ledger arguments for a fault of this run: the stack home, the lease (the
    scenario's timeout plus a margin, from the run session Chaos Toolkit passes in its
    configuration; DEFAULT_LEASE_S without one) and the run folder."""
    run = run_context(configuration)
    timeout = run.objectives.get("timeout_s") if run is not None else None
    return {"home": t["home"], "lease_s": float(timeout) + LEASE_MARGIN_S if timeout else DEFAULT_LEASE_S,
            "run_dir": str(run.run_dir) if run is not None else None}


def local_target(target: str | None) -> dict:
    """The description of the target, which must run its programs under supervision here (the
    embedded stack): holds, supervisord, data folders."""
    return targets.for_activity(target).require("processes", "this fault").data


def process_target(target: str | None) -> dict:
    """The description of a target whose programs are processes on this machine: the embedded
    stack's, or the container target's (a program is a container and its pid the container's
    main process). Its `fault_family` says which implementation applies."""
    return targets.for_activity(target).require(("processes", "docker"), "this fault").data


def fault_family(t: dict) -> str:
    """Which fault implementation applies to the target this description belongs to."""
    return targets.adapter(t.get("kind") or "local").fault_family


def check_program(program: str) -> None:
    if program not in PROGRAMS:
        raise ActivityFailed(f"unknown program {program!r}; known: {', '.join(PROGRAMS)}")


def program_pid(t: dict, program: str) -> int:
    """The main pid of a program of the target this description belongs to (on the embedded stack
    asked of supervisord, on the container target its container's main process: a container's
    name is its program's, pg0 and pg1 for the database nodes)."""
    if program not in (t.get("containers") or {}):
        check_program(program)
    return targets.load(t["home"]).program_pid(program)


def server(t: dict, which: str) -> dict:
    """The embedded stack's PostgreSQL server in role `which` (primary | standby) now, asked of
    the servers themselves: roles move on failover and target.json may lag behind."""
    if which not in ("primary", "standby"):
        raise ActivityFailed(f"which must be 'primary' or 'standby', got {which!r}")
    servers = {t[role]["program"]: t[role] for role in ("primary", "standby")}
    roles = pgroles.resolve_roles({program: srv["port"] for program, srv in servers.items()},
                                  passfile=pgroles.passfile_of(t))
    if roles["primary"] is None:
        raise ActivityFailed(f"cannot tell which server is the primary now: {roles['states']}")
    return servers[roles[which]]


def effect(observed: bool, detail: str) -> dict:
    """The evidence record a fault returns under `effect`."""
    return {"observed": bool(observed), "detail": detail}


def gone_effect(pids: list[int], what: str, timeout_s: float = 5.0) -> dict:
    """Evidence of a kill: every pid killed is gone (a zombie counts as gone) within `timeout_s`."""
    if not pids:
        return effect(False, f"{what}: no process was killed")
    left = procs.wait_gone(pids, timeout_s)
    if left:
        return effect(False, f"{what}: {len(left)} of {len(pids)} killed processes still run after "
                             f"{timeout_s:g} s (pids {left[:5]})")
    return effect(True, f"{what}: all {len(pids)} killed processes are gone")


def duration(value, name: str = "duration_s") -> float:
    """A number of seconds from 0 to an hour."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ActivityFailed(f"{name} must be a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= MAX_DURATION_S:
        raise ActivityFailed(f"{name} must be between 0 and {MAX_DURATION_S} seconds, got {value!r}")
    return seconds


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActivityFailed(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def stop_for(pids: list[int], duration_s: float, key: str, ledger: dict | None = None) -> dict:
    """SIGSTOP `pids` for exactly `duration_s`, then SIGCONT, even if interrupted meanwhile. The
    undo under `key` is the safety net should this process be interrupted; with `ledger` (see
    lease()) a detached timer resumes them at the deadline even if this process is SIGKILLed.
    Returns the seconds held and the evidence: how many of the pids were seen stopped."""
    landed_at = freeze(pids, key, ledger, lease_s=duration_s + 1.0)
    stopped_at = time.monotonic()
    try:
        seen = stopped_now(pids)
        time.sleep(max(0.0, duration_s - (time.monotonic() - stopped_at)))
    finally:
        procs.signal_all(pids, signal.SIGCONT)
        clear_undo(key)
    held = round(time.monotonic() - stopped_at, 4)
    return {"stopped_s": held, "landed_at": landed_at, "effect": effect(bool(seen), f"{len(seen)} of {len(pids)} processes seen stopped, "
                                                              f"held {held:g} s")}


def freeze(pids: list[int], key: str, ledger: dict | None, lease_s: float | None = None) -> float:
    """SIGSTOP `pids` after registering their resume: in this process, and (with `ledger`) in the
    fault ledger with a detached timer that resumes them at the deadline whatever happens here.
    Returns when the signals were sent (epoch seconds): when the fault landed."""
    spec = {"kind": "sigcont", "pids": [[p, procs.start_time(p)] for p in pids]}
    if ledger:
        ledger = {**ledger, "lease_s": lease_s or ledger["lease_s"]}
        register_undo(key, lambda: procs.signal_all(pids, signal.SIGCONT), spec=spec, **ledger)
        timer = reaper.start_timer(ledger["home"], time.time() + ledger["lease_s"])
        fault_ledger.set_timer(ledger["home"], key, timer)  # ended when the entry is cleared
    else:
        register_undo(key, lambda: procs.signal_all(pids, signal.SIGCONT))
    procs.signal_all(pids, signal.SIGSTOP)
    return time.time()


def stopped_now(pids: list[int], timeout_s: float = 1.0) -> list[int]:
    """The pids in the stopped state (T), waiting briefly for a SIGSTOP to land."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = [p for p in pids if (st := procs.stat(p)) and st[2] in ("T", "t")]
        if len(seen) == len(pids) or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)
