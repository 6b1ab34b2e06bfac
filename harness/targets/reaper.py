"""The reaper: carries out the undo of fault-ledger entries (harness/records/fault_ledger.py) so that no
fault outlives its harness.

    undo(entry)                       carry out one entry's undo; returns what was done (never raises)
    reap(home, now, also_orphaned)    undo expired (and, for the next command, orphaned) entries
    python -m harness.targets.reaper --home HOME [--period 1]       the supervised loop: expired and orphaned entries
    python -m harness.targets.reaper --home HOME --at EPOCH         a detached one-shot timer (freezes)

The embedded stack supervises the loop (program `fault-reaper`); a freeze also starts a detached
one-shot timer, since a frozen process may be the very thing that would otherwise undo it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.records import fault_ledger
from harness.core import pgroles, procs
from harness.targets.containers import engine as container_engine
from harness.core.errors import first_line
from harness.targets.embedded import supervisor
from harness.targets.embedded.ha import nodes as ha_nodes

__all__ = ["undo", "reap", "start_timer", "main"]


def undo(entry: dict) -> str:
    """Carry out one entry's undo. Returns a sentence saying what was done; never raises."""
    u = entry.get("undo") or {}
    kind = u.get("kind")
    try:
        if kind == "unlink":
            existed = os.path.exists(u["path"])
            Path(u["path"]).unlink(missing_ok=True)
            return f"removed {u['path']}" if existed else f"{u['path']} already gone"
        if kind == "release_primary_hold":
            other = pgroles.server_role(int(u["other_port"]), passfile=u.get("passfile")) if u.get("other_port") else "down"
            if other == "primary" and not (Path(u["data_dir"]) / "standby.signal").exists():
                return (f"kept {u['path']}: another server (port {u['other_port']}) is the primary and "
                        f"{u['data_dir']} is still a primary's folder; rebuild it as a standby first")
            Path(u["path"]).unlink(missing_ok=True)
            return f"released {u['path']}"
        if kind == "sigcont":
            # Only the processes that were stopped: a pid whose start time changed is another process.
            mine = [pid for pid, started in u["pids"] if procs.start_time(pid) == started]
            resumed = procs.signal_all(mine, signal.SIGCONT)
            return f"resumed {len(resumed)} stopped process(es)"
        if kind == "rename_back":
            if os.path.exists(u["to"]):
                return f"{u['to']} exists again (restored); {u['from']} left as it is"
            if not os.path.exists(u["from"]):
                return f"nothing to put back: {u['from']} is gone"
            os.rename(u["from"], u["to"])
            return f"moved {u['from']} back to {u['to']}"
        if kind == "supervisor_start":
            supervisor.start(u["url"], u["program"])
            return f"started {u['program']}"
        if kind == "cold_start":
            return "needs a cold start: run 'gameday target up'"
        if kind == "patroni_config":  # Patroni's dynamic configuration as it was (pause, synchronous_mode)
            ha_nodes.patch_config(json.loads(Path(u["cluster_file"]).read_text()), u["config"])
            return f"set Patroni's configuration back: {json.dumps(u['config'], sort_keys=True)}"
        if kind in container_engine.UNDO_KINDS:  # a paused, stopped, cut-off or slowed container
            return container_engine.undo(u)
        return f"no undo of kind {kind!r}"
    except Exception as e:  # the reaper must go on with the other entries
        return f"undo failed: {first_line(e)}"


def reap(home: str | os.PathLike, now: float | None = None, also_orphaned: bool = False,
         by: str = "the reaper") -> list[tuple[dict, str]]:
    """Undo every expired entry (and, with also_orphaned, every entry whose harness is gone) whose
    undo this process can carry out; each one undone is settled (kept for the next command to
    report). Returns (entry, what was done)."""
    done = []
    for entry in fault_ledger.entries(home):
        if entry.get("undo", {}).get("kind") == "cold_start":
            continue  # supervisord and this reaper died with the stack: the next `target up` does it
        if fault_ledger.expired(entry, now) or (also_orphaned and fault_ledger.orphaned(entry)):
            result = undo(entry)
            if not result.startswith(("undo failed", "kept ")):
                fault_ledger.settle(home, entry, result, by)
            done.append((entry, result))
    return done


def start_timer(home: str | os.PathLike, at_epoch: float) -> int:
    """A detached one-shot reaper that undoes what has expired at `at_epoch` (plus a second), even
    if the harness is gone by then. Returns its pid."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.targets.reaper", "--home", str(home), "--at", repr(at_epoch)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own session: it outlives the harness and its terminal
    return proc.pid


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="undo expired fault-ledger entries")
    ap.add_argument("--home", required=True)
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--at", type=float, default=None, help="one shot: wait until this epoch, reap, exit")
    args = ap.parse_args(argv)
    if args.at is not None:
        time.sleep(max(0.0, args.at - time.time()) + 0.5)
        for entry, result in reap(args.home):
            print(f"reaper: {entry.get('what')}: {result}", flush=True)
        return 0
    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(flag=True))
    while not stopping["flag"]:
        # A harness that is gone (SIGKILLed, its machine's OOM killer) will never undo its faults:
        # undone now rather than at the end of their lease, which stays for a harness that hangs.
        for entry, result in reap(args.home, also_orphaned=True):
            why = "deadline passed" if fault_ledger.expired(entry) else "its harness is gone"
            print(f"reaper: {entry.get('what')} ({why}): {result}", flush=True)
        time.sleep(args.period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
