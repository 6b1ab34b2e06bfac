"""Process faults on the embedded stack: kill, hang, and keep down (restart disabled).

The stack's supervisor (supervisord) is the restartPolicy: a killed component comes back by
itself unless its restart is disabled with `disable_restart` (the negative controls' switch).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness import target as target_mod
from harness.faults import clear_undo, register_undo
from harness.stack import supervisor

__all__ = ["kill_database", "freeze_database", "crash_api", "hang_api", "resume_api", "kill_program",
           "disable_restart", "enable_restart", "kill_monitoring"]

PROGRAMS = ("postgres-primary", "postgres-standby", "api", "prometheus", "alertmanager", "alert-receiver", "liveness")
HOLDABLE = ("postgres-primary", "postgres-standby", "api")  # their launchers wait on a hold file


def kill_program(program: str, sig: str = "SIGKILL", whole_group: bool = False, target: str | None = None) -> dict:
    """Send `sig` to a supervised program's main process (or its whole process group)."""
    t = _local_target(target)
    signum = _signal(sig)
    pid = _program_pid(t, program)
    if whole_group:
        os.killpg(pid, signum)
    else:
        os.kill(pid, signum)
    return {"program": program, "pid": pid, "signal": sig, "whole_group": whole_group, "at": time.time()}


def kill_database(which: str = "primary", target: str | None = None) -> dict:
    """SIGKILL the PostgreSQL postmaster (`which`: primary or standby). Its backends lose their
    parent and the server crashes; supervision restarts it and crash recovery replays the WAL."""
    if which not in ("primary", "standby"):
        raise ActivityFailed(f"which must be 'primary' or 'standby', got {which!r}")
    # Roles move on failover: the target description says which program is the primary now.
    program = _local_target(target)[which]["program"]
    return kill_program(program, "SIGKILL", target=target)


def freeze_database(duration_s: float = 4.0, which: str = "primary", target: str | None = None) -> dict:
    """Freeze the PostgreSQL server (postmaster and every backend) with SIGSTOP for `duration_s`
    seconds, then SIGCONT. Commits in flight hang: the client cannot know whether they happened,
    so the load records them as `info` (in doubt), never `ok`."""
    duration_s = _duration(duration_s)
    if which not in ("primary", "standby"):
        raise ActivityFailed(f"which must be 'primary' or 'standby', got {which!r}")
    t = _local_target(target)
    data_dir = os.path.realpath(t[which]["data_dir"])
    pids = [p for p in _all_pids() if _cwd(p) == data_dir]
    if not pids:
        raise ActivityFailed(f"no PostgreSQL process runs in {data_dir}")
    return {"which": which, "pids": pids, "stopped_s": _stop_for(pids, duration_s, "freeze_database")}


def crash_api(replicas: str = "all", target: str | None = None) -> dict:
    """SIGKILL API replicas. `replicas`: 'one' (one worker: the arbiter replaces it, no downtime
    expected) or 'all' (the arbiter and every worker: supervision restarts the whole API)."""
    t = _local_target(target)
    arbiter = _program_pid(t, "api")
    if replicas == "one":
        workers = _children(arbiter)
        if not workers:
            raise ActivityFailed(f"the API arbiter (pid {arbiter}) has no workers to kill")
        os.kill(workers[0], signal.SIGKILL)
        return {"replicas": "one", "killed": [workers[0]], "arbiter": arbiter, "at": time.time()}
    if replicas == "all":
        members = _group_members(arbiter)
        os.killpg(arbiter, signal.SIGKILL)
        return {"replicas": "all", "killed": members, "arbiter": arbiter, "at": time.time()}
    raise ActivityFailed(f"replicas must be 'one' or 'all', got {replicas!r}")


def hang_api(duration_s: float = 3.0, replicas: str = "all", target: str | None = None) -> dict:
    """Freeze API processes with SIGSTOP for exactly `duration_s` seconds, then SIGCONT them.
    `replicas`: 'all' (arbiter + workers: nothing answers) or 'one' (one worker hangs: gunicorn's
    worker timeout replaces it). If the liveness checker kills the frozen API first, that is the
    plan's auto-restart at work; SIGCONT then finds nothing to resume."""
    duration_s = _duration(duration_s)
    t = _local_target(target)
    arbiter = _program_pid(t, "api")
    if replicas == "all":
        pids = _group_members(arbiter)
    elif replicas == "one":
        pids = _children(arbiter)[:1]
        if not pids:
            raise ActivityFailed(f"the API arbiter (pid {arbiter}) has no workers to hang")
    else:
        raise ActivityFailed(f"replicas must be 'one' or 'all', got {replicas!r}")
    return {"replicas": replicas, "pids": pids, "stopped_s": _stop_for(pids, duration_s, "hang_api")}


def resume_api(target: str | None = None) -> dict:
    """Rollback of hang_api: SIGCONT every API process (harmless if none is stopped)."""
    t = _local_target(target)
    try:
        pids = _group_members(_program_pid(t, "api"))
    except ActivityFailed:
        return {"resumed": []}
    _signal_all(pids, signal.SIGCONT)
    return {"resumed": pids}


def disable_restart(program: str, target: str | None = None) -> dict:
    """Keep `program` down after it dies: its launcher waits on a hold file instead of starting the
    server. The negative controls' switch: "automatic restart disabled"."""
    t = _local_target(target)
    _check_program(program)
    if program not in HOLDABLE:
        raise ActivityFailed(f"restart of {program!r} cannot be held (its launcher has no hold); holdable: "
                             f"{', '.join(HOLDABLE)}; stop it through supervisord instead")
    hold = Path(t["holds_dir"]) / program
    hold.touch()
    register_undo(f"hold:{program}", lambda: hold.unlink(missing_ok=True))
    return {"program": program, "hold": str(hold)}


def enable_restart(program: str, target: str | None = None) -> dict:
    """Rollback of disable_restart: remove the hold so supervision brings `program` back."""
    t = _local_target(target)
    _check_program(program)
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

def _local_target(target: str | None) -> dict:
    t = target_mod.load(target)
    if t.get("kind") != "local":
        raise ActivityFailed(f"this fault needs the embedded stack (kind local), target is {t.get('kind')!r}")
    return t


def _stop_for(pids: list[int], duration_s: float, key: str) -> float:
    """SIGSTOP `pids` for exactly `duration_s`, then SIGCONT, even if interrupted meanwhile (the
    undo is the safety net should this process die in between). Returns the seconds held."""
    register_undo(key, lambda: _signal_all(pids, signal.SIGCONT))
    stopped_at = time.monotonic()
    _signal_all(pids, signal.SIGSTOP)
    try:
        time.sleep(max(0.0, duration_s - (time.monotonic() - stopped_at)))
    finally:
        _signal_all(pids, signal.SIGCONT)
        clear_undo(key)
    return round(time.monotonic() - stopped_at, 4)


def _duration(value) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ActivityFailed(f"duration_s must be a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= 3600:
        raise ActivityFailed(f"duration_s must be between 0 and 3600 seconds, got {value!r}")
    return seconds


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _check_program(program: str) -> None:
    if program not in PROGRAMS:
        raise ActivityFailed(f"unknown program {program!r}; known: {', '.join(PROGRAMS)}")


def _signal(name: str) -> int:
    try:
        return int(getattr(signal, name if name.startswith("SIG") else f"SIG{name}"))
    except AttributeError:
        raise ActivityFailed(f"unknown signal {name!r}") from None


def _program_pid(t: dict, program: str) -> int:
    _check_program(program)
    try:
        info = supervisor.process_info(t["supervisor_url"], program)
    except Exception as e:
        raise ActivityFailed(f"cannot ask supervisord about {program}: {e}") from None
    if info["statename"] != "RUNNING" or not info["pid"]:
        raise ActivityFailed(f"{program} is not running (supervisor state {info['statename']})")
    return int(info["pid"])


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _children(pid: int) -> list[int]:
    return sorted(p for p in _all_pids() if (s := _stat(p)) and s[0] == pid)


def _group_members(pgid: int) -> list[int]:
    return sorted(p for p in _all_pids() if (s := _stat(p)) and s[1] == pgid)


def _signal_all(pids: list[int], signum: int) -> list[int]:
    """Signal each pid; return those that were still there to receive it."""
    reached = []
    for pid in pids:
        try:
            os.kill(pid, signum)
            reached.append(pid)
        except ProcessLookupError:
            pass
    return reached
