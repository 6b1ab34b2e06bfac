"""Processes on this host, by pid, process group and working folder (from /proc).

Faults, the stack and the runbooks all need to find "the processes running in this data folder"
(PostgreSQL runs with its data folder as working folder) and to signal a set of pids without
caring which of them already exited. One implementation, here. The bottom layer: imports nothing
of ours. End only processes this project started: callers pass pids they got from the stack.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["alive", "running", "stat", "all_pids", "children", "group_members", "cwd", "pids_in",
           "signal_all", "wait_gone", "end_processes_in", "read_pid", "cmdline", "start_time"]


def alive(pid: int) -> bool:
    """The pid exists (a zombie counts; see `running`)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, pgid, state letter) of a process, from /proc; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2]), fields[0]


def running(pid: int) -> bool:
    """Exists and is not a zombie (a killed child its parent has not reaped yet)."""
    s = stat(pid)
    return s is not None and s[2] != "Z"


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children(pid: int) -> list[int]:
    return sorted(p for p in all_pids() if (s := stat(p)) and s[0] == pid)


def group_members(pgid: int) -> list[int]:
    return sorted(p for p in all_pids() if (s := stat(p)) and s[1] == pgid)


def cmdline(pid: int) -> str | None:
    """The command line of a process, arguments joined by spaces; None when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid it
    names one process, even after the pid number is reused."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2:].split()[19])


def cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def pids_in(folder: str | os.PathLike) -> list[int]:
    """Processes whose working folder is `folder` (compared resolved: /proc shows real paths)."""
    want = os.path.realpath(folder)
    return sorted(p for p in all_pids() if cwd(p) == want)


def signal_all(pids: list[int], signum: int) -> list[int]:
    """Signal each pid; return those that were still there to receive it."""
    reached = []
    for pid in pids:
        try:
            os.kill(pid, signum)
            reached.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return reached


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait until none of `pids` runs (zombies count as gone); return the survivors."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if running(p)]
    return left


def end_processes_in(folder: str | os.PathLike, timeout_s: float = 10.0) -> list[int]:
    """SIGKILL every process running in `folder` (a postmaster and its backends) until none is
    left; return what was killed. Raises TimeoutError naming the survivors."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = [p for p in pids_in(folder) if running(p)]
        if not pids:
            return sorted(set(killed))
        killed += signal_all(pids, signal.SIGKILL)
        time.sleep(0.05)
    raise TimeoutError(f"processes in {folder} did not end within {timeout_s:.0f} s: {pids_in(folder)}")


def read_pid(path: str | os.PathLike) -> int | None:
    """The pid on the first line of a pid file, or None."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
