"""Whole-stack faults: everything dies at once (BCP "Container Orchestration Failure"), and
supervised programs kept stopped (the switch some negative controls need for programs that have
no hold file, such as the liveness checker).

After `lose_whole_stack` nothing comes back by itself: supervisord itself is gone. The recovery
is a cold start (harness.recovery.coldstart.cold_start), the BCP's `kubectl apply -f
deployment/kubernetes/`; the fault's own undo brings the stack back through the stack layer.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.records import fault_ledger
from harness.faults import clear_undo, register_undo
from harness.faults._common import check_program, effect, lease, local_target
from harness.targets.embedded import stack as embedded, supervisor

__all__ = ["lose_whole_stack", "stop_program", "start_program"]

SUPERVISOR_PIDFILE = "supervisord.pid"


def lose_whole_stack(target: str | None = None, configuration: dict = None) -> dict:
    """Kill everything at once, the cluster-failure analogue: supervisord (SIGKILL, so it restarts
    nothing), then the process group of every program it ran (pids asked over XML-RPC before the
    kill) and every PostgreSQL process still running in a data folder. Waits until all of them are
    gone and checks that nothing listens on the stack's ports any more.

    Registers an undo that starts the stack again, so a run that ends without its recovery still
    leaves the stack up."""
    t = local_target(target)
    home = Path(t["home"])
    sup_url = t["supervisor_url"]
    try:
        infos = supervisor.all_process_info(sup_url)
    except Exception as e:
        raise ActivityFailed(f"supervisord at {sup_url} does not answer ({e}); the stack is not running") from None
    sup_pid = procs.read_pid(home / SUPERVISOR_PIDFILE)
    if sup_pid is None or not procs.running(sup_pid):
        raise ActivityFailed(f"no live supervisord pid in {home / SUPERVISOR_PIDFILE}")
    groups = {i["name"]: int(i["pid"]) for i in infos if i.get("pid")}
    members = {name: procs.group_members(pid) for name, pid in groups.items()}
    data_dirs = [t["primary"]["data_dir"], t["standby"]["data_dir"]]
    api_group = procs.read_pid(t["api_pidfile"])

    # The reaper dies with the stack: the ledger entry tells the next command to start it again.
    register_undo("lose_whole_stack", lambda: _start_again(t),
                  spec={"kind": "cold_start", "home": t["home"]}, **lease(t, configuration))
    killed_at = time.time()
    os.kill(sup_pid, signal.SIGKILL)
    for pgid in groups.values():
        _killpg(pgid)
    if api_group:
        _killpg(api_group)
    pg_pids = sorted(p for d in data_dirs for p in procs.pids_in(d))
    procs.signal_all(pg_pids, signal.SIGKILL)
    everything = sorted({sup_pid, *pg_pids, *(p for ps in members.values() for p in ps)})
    survivors = procs.wait_gone(everything, 15.0)
    # A process forked while the kills went out (a gunicorn worker, a postgres backend) is in no
    # list: sweep the process groups and data folders again until they are empty.
    late: list[int] = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        stray = sorted({p for g in [*groups.values(), *([api_group] if api_group else [])]
                        for p in procs.group_members(g) if procs.running(p)}
                       | {p for d in data_dirs for p in procs.pids_in(d) if procs.running(p)})
        if not stray:
            break
        late += stray
        procs.signal_all(stray, signal.SIGKILL)
        time.sleep(0.05)
    survivors += procs.wait_gone(late, 5.0)
    listening = _listening(t)
    deadline = time.monotonic() + 3.0
    while listening and time.monotonic() < deadline:
        time.sleep(0.1)
        listening = _listening(t)
    return {"supervisord": sup_pid, "programs": groups, "processes": members,
            "postgres_processes": pg_pids, "late_strays": sorted(set(late)), "killed": len(everything) + len(set(late)),
            "killed_at": killed_at, "landed_at": killed_at,
            "survivors": survivors, "still_listening": listening,
            "effect": effect(not survivors and not listening,
                             f"{len(everything) + len(set(late))} processes killed; survivors {survivors[:5] or 'none'}; "
                             f"still listening: {', '.join(listening) or 'nothing'}")}


def stop_program(program: str, target: str | None = None, configuration: dict = None) -> dict:
    """Stop a supervised program through supervisord and keep it stopped (it is not restarted
    until `start_program`). Used by negative controls to switch off an automatic recovery, e.g.
    the liveness checker. Registers an undo that starts it again."""
    t = local_target(target)
    check_program(program)
    url = t["supervisor_url"]
    before = _state(url, program)
    register_undo(f"stopped:{program}", lambda: start_program(program, target),
                  spec={"kind": "supervisor_start", "url": url, "program": program}, **lease(t, configuration))
    # A program just killed is between lives (EXITED/BACKOFF): stopProcess answers NOT_RUNNING and
    # supervisord would start it again a tick later. Stop until it stays STOPPED.
    deadline = time.monotonic() + 15.0
    while True:
        try:
            supervisor.stop(url, program)
        except Exception as e:
            raise ActivityFailed(f"supervisord could not stop {program}: {e}") from None
        state = _state(url, program)
        if state in ("STOPPED", "FATAL"):  # FATAL: supervisord gave up on it, it will not come back either
            break
        if time.monotonic() > deadline:
            raise ActivityFailed(f"{program} did not stay stopped within 15 s (supervisor state {state})")
        time.sleep(0.2)
    return {"program": program, "state_before": before, "state_after": state,
            "effect": effect(True, f"{program} stopped and kept stopped (state {state})")}


def start_program(program: str, target: str | None = None) -> dict:
    """Rollback of stop_program: start the program again through supervisord (harmless if it runs)."""
    t = local_target(target)
    check_program(program)
    url = t["supervisor_url"]
    try:
        supervisor.start(url, program)
    except Exception as e:
        raise ActivityFailed(f"supervisord could not start {program}: {e}") from None
    clear_undo(f"stopped:{program}")
    return {"program": program, "state": _state(url, program)}


# ---------------------------------------------------------------------------------------------
# Internals

def _start_again(t: dict) -> None:
    """The undo: bring the stack up again from its home through the stack layer, unless the
    fault's ledger entry is gone: a cold start (the recovery, `target up`) brought the stack back
    and closed it, or the stack was taken down on purpose since. `up` is idempotent and clears the
    stale lock files a stack killed at once leaves (postgres.remove_stale_locks)."""
    if not any(e.get("what") == "lose_whole_stack" for e in fault_ledger.entries(t["home"])):
        return
    embedded.up(t["home"], int(t["port_base"]), log=lambda _line: None)


def _state(url: str, program: str) -> str | None:
    try:
        return supervisor.process_info(url, program)["statename"]
    except Exception:
        return None


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _listening(t: dict) -> list[str]:
    ports = {"api": int(t["api_url"].rsplit(":", 1)[1]), "postgres-primary": t["primary"]["port"],
             "postgres-standby": t["standby"]["port"], "prometheus": int(t["prometheus_url"].rsplit(":", 1)[1])}
    busy = ["supervisor"] if supervisor.alive(t["supervisor_url"]) else []
    for name, port in ports.items():
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"{name}:{port}")
    return busy
