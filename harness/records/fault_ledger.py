"""The fault ledger: every fault that leaves state behind is written here BEFORE it is injected,
with its undo (as data another process can carry out) and a deadline.

A fault's undo used to live only in the harness's memory: SIGKILL the harness in the middle of a
negative twin and the primary stayed held down. Now the target side enforces the deadline
without the harness (harness/targets/reaper.py, launchers that ignore an expired hold, a detached
timer for freezes), and the next command heals what it finds (harness/run/runner.py heal).

    <home>/fault-ledger/<id>.json   {id, what, undo, deadline, created, run_dir, harness_pid}

Undo kinds (carried out by harness.targets.reaper.undo):
    {"kind": "unlink", "path": …}                                  a hold file
    {"kind": "release_primary_hold", "path": …, "data_dir": …, "other_port": …, "passfile": …}
                                                                    a lost primary's hold, released only
                                                                    where it cannot make two primaries
    {"kind": "sigcont", "pids": [[pid, starttime], …]}             stopped processes (pid reuse checked)
    {"kind": "rename_back", "from": …, "to": …}                     a moved folder, if nothing replaced it
    {"kind": "supervisor_start", "url": …, "program": …}            a stopped program
    {"kind": "cold_start", "home": …}                               the whole stack (only the next command)
    {"kind": "patroni_config", "cluster_file": …, "config": {…}}    Patroni's dynamic configuration as it was
                                                                    (pause, synchronous_mode)
    {"kind": "docker_unpause" | "docker_start" | "docker_connect" | "netem_clear", "container": …, …}
                                                                    a container fault (harness/targets/containers/engine.py)

The bottom layer: imports nothing of ours but harness.core.procs.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from harness.core import procs

__all__ = ["LEDGER_DIR", "record", "clear", "set_timer", "clear_what", "entries", "ledger_dir", "expired", "orphaned", "settle",
           "settled", "forget_settled"]

LEDGER_DIR = "fault-ledger"


def ledger_dir(home: str | os.PathLike) -> Path:
    return Path(home) / LEDGER_DIR


def record(home: str | os.PathLike, what: str, undo: dict, lease_s: float, run_dir: str | None = None) -> str:
    """Write an entry durably (fsync'd file and folder) and return its id. Call BEFORE injecting."""
    folder = ledger_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    entry_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    entry = {"id": entry_id, "what": what, "undo": undo, "deadline": round(time.time() + float(lease_s), 3),
             "created": round(time.time(), 3), "run_dir": run_dir, "harness_pid": os.getpid(),
             "harness_started": procs.start_time(os.getpid()), "pid_namespace": _pid_namespace()}
    tmp = folder / f".{entry_id}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(entry, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / f"{entry_id}.json")
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return entry_id


def clear(home: str | os.PathLike, entry_id: str) -> None:
    """The fault was undone: its entry goes, and so does a detached timer still waiting for it."""
    path = ledger_dir(home) / f"{entry_id}.json"
    try:
        timer = json.loads(path.read_text()).get("timer_pid")
    except (OSError, ValueError):
        timer = None
    path.unlink(missing_ok=True)
    if isinstance(timer, int) and _is_timer(timer):
        try:
            os.kill(timer, 15)
        except ProcessLookupError:
            pass


def set_timer(home: str | os.PathLike, what: str, pid: int) -> None:
    """Note the detached timer (harness.targets.reaper --at) that guards the entry for `what`."""
    for entry in entries(home):
        if entry.get("what") == what:
            path = ledger_dir(home) / f"{entry['id']}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**entry, "timer_pid": pid}, indent=2) + "\n")
            os.replace(tmp, path)


def _is_timer(pid: int) -> bool:
    """Only a reaper timer is ever signalled here (a reused pid is someone else's process)."""
    cmd = procs.cmdline(pid) or ""
    return "harness.targets.reaper" in cmd and "--at" in cmd


def settle(home: str | os.PathLike, entry: dict, result: str, by: str) -> None:
    """Someone other than its harness undid the fault: the entry moves to `undone/` with what was
    done, so that the next command can tell the operator (and close the abandoned run)."""
    folder = ledger_dir(home) / "undone"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{entry['id']}.json").write_text(json.dumps({**entry, "result": result, "undone_by": by,
                                                            "undone_at": round(time.time(), 3)}, indent=2) + "\n")
    clear(home, entry["id"])


def settled(home: str | os.PathLike) -> list[dict]:
    folder = ledger_dir(home) / "undone"
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def forget_settled(home: str | os.PathLike, entry_id: str) -> None:
    (ledger_dir(home) / "undone" / f"{entry_id}.json").unlink(missing_ok=True)


def clear_what(home: str | os.PathLike, what: str) -> None:
    """Every entry for `what` goes (the harness undid that fault itself)."""
    for entry in entries(home):
        if entry.get("what") == what:
            clear(home, entry["id"])


def entries(home: str | os.PathLike) -> list[dict]:
    """Every entry in the ledger, oldest first (an unreadable one is kept as such, to be reported)."""
    folder = ledger_dir(home)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            if not isinstance(entry, dict) or "undo" not in entry:
                raise ValueError("not a ledger entry")
        except (OSError, ValueError) as e:
            entry = {"id": path.stem, "what": "unreadable entry", "undo": {"kind": "none"}, "deadline": 0,
                     "error": str(e)}
        out.append(entry)
    return out


def expired(entry: dict, now: float | None = None) -> bool:
    return float(entry.get("deadline") or 0) <= (time.time() if now is None else now)


def orphaned(entry: dict) -> bool:
    """The harness that wrote it is gone (so nobody else will undo it): its pid is free, or now
    names another process (a different start time). A harness in another pid namespace (a
    container) cannot be seen from here: never judged orphaned, its lease alone applies."""
    pid = entry.get("harness_pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return not isinstance(pid, int)
    if entry.get("pid_namespace") and entry["pid_namespace"] != _pid_namespace():
        return False
    if not procs.running(pid):  # gone, or a zombie nobody reaped yet
        return True
    started = entry.get("harness_started")
    return started is not None and procs.start_time(pid) != started


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
