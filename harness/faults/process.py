"""Process faults on the embedded stack: kill a supervised program, freeze the database, and keep
a program down (restart disabled). The API's own faults (crash, hang) are in harness.faults.api.

The stack's supervisor (supervisord) is the restartPolicy: a killed component comes back by
itself unless its restart is disabled with `disable_restart` (the negative controls' switch).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.faults import clear_undo, containers, register_undo
from harness.faults._common import (HOLDABLE, fault_family, check_program, duration, gone_effect, lease, local_target, process_target,
                                    program_pid, server, stop_for)

__all__ = ["kill_database", "freeze_database", "kill_program", "disable_restart", "enable_restart",
           "kill_monitoring"]


def kill_program(program: str, sig: str = "SIGKILL", whole_group: bool = False, target: str | None = None) -> dict:
    """Send `sig` to a supervised program's main process (or its whole process group). On the
    container target the program is a container: its main process gets the signal, and a SIGKILL
    crashes the container, which its restart policy brings back."""
    t = process_target(target)
    signum = _signal(sig)
    pid = program_pid(t, program)
    members = procs.group_members(pid) if whole_group else [pid]
    if whole_group:
        os.killpg(pid, signum)
    else:
        os.kill(pid, signum)
    landed = time.time()
    record = {"program": program, "pid": pid, "signal": sig, "whole_group": whole_group, "at": landed, "landed_at": landed}
    if signum == signal.SIGKILL:
        record["effect"] = gone_effect(members, program)
    return record


def kill_database(which: str = "primary", target: str | None = None) -> dict:
    """SIGKILL the PostgreSQL postmaster (`which`: primary or standby). Its backends lose their
    parent and the server crashes; supervision restarts it and crash recovery replays the WAL."""
    # Roles move on failover: ask the servers which program holds the role now.
    program = server(process_target(target), which)["program"]
    return kill_program(program, "SIGKILL", target=target)


def freeze_database(duration_s: float = 4.0, which: str = "primary", target: str | None = None,
                    configuration: dict = None) -> dict:
    """Freeze the PostgreSQL server (postmaster and every backend) with SIGSTOP for `duration_s`
    seconds, then SIGCONT. Commits in flight hang: the client cannot know whether they happened,
    so the load records them as `info` (in doubt), never `ok`. On the container target the
    server's container is paused (cgroup freezer) for `duration_s` seconds."""
    duration_s = duration(duration_s)
    t = process_target(target)
    if fault_family(t) == "docker":
        program = server(t, which)["program"]
        return {"which": which, **containers.pause_container(program, duration_s, target, configuration)}
    data_dir = server(t, which)["data_dir"]
    pids = procs.pids_in(data_dir)
    if not pids:
        raise ActivityFailed(f"no PostgreSQL process runs in {os.path.realpath(data_dir)}")
    return {"which": which, "pids": pids, **stop_for(pids, duration_s, "freeze_database", lease(t, configuration))}


def disable_restart(program: str, target: str | None = None, configuration: dict = None) -> dict:
    """Keep `program` down after it dies: its launcher waits on a hold file instead of starting the
    server. The negative controls' switch: "automatic restart disabled". The hold carries its
    deadline (the run's lease): a launcher ignores an expired hold, and the fault ledger's reaper
    removes it, so a SIGKILLed harness never leaves the program down for good."""
    t = local_target(target)
    check_program(program)
    if program not in HOLDABLE:
        raise ActivityFailed(f"restart of {program!r} cannot be held (its launcher has no hold); holdable: "
                             f"{', '.join(HOLDABLE)}; stop it through supervisord instead")
    hold = Path(t["holds_dir"]) / program
    ledger = lease(t, configuration)
    register_undo(f"hold:{program}", lambda: hold.unlink(missing_ok=True),
                  spec={"kind": "unlink", "path": str(hold)}, **ledger)
    hold.write_text(f"{time.time() + ledger['lease_s']:.0f}\n")  # the deadline, read by the launcher
    return {"program": program, "hold": str(hold), "lease_s": ledger["lease_s"]}


def enable_restart(program: str, target: str | None = None) -> dict:
    """Rollback of disable_restart: remove the hold so supervision brings `program` back."""
    t = local_target(target)
    check_program(program)
    hold = Path(t["holds_dir"]) / program
    existed = hold.exists()
    hold.unlink(missing_ok=True)
    clear_undo(f"hold:{program}")
    return {"program": program, "released": existed}


def kill_monitoring(target: str | None = None) -> dict:
    """SIGKILL Prometheus (the BCP's monitoring failure); supervision restarts it on the same data."""
    return kill_program("prometheus", "SIGKILL", target=target)


# ---------------------------------------------------------------------------------------------
# Internals

def _signal(name: str) -> int:
    try:
        return int(getattr(signal, name if name.startswith("SIG") else f"SIG{name}"))
    except AttributeError:
        raise ActivityFailed(f"unknown signal {name!r}") from None
