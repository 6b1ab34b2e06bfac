"""`gameday heartbeat start | stop | status`: the heartbeat ledger for any target.

The embedded stack runs its heartbeat writer under supervision from `target up` (program
`heartbeat`); any other target (a Kubernetes deployment, containers) gets one from `heartbeat
start`, a detached process that outlives the command, with its pid kept beside the ledger. The
ledger folder is the target description's `heartbeat_ledger` (or --ledger).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import targets
from harness.cli.options import add_home_options, target_of
from harness.core import procs
from harness.core.errors import UsageError
from harness.records.heartbeat_ledger import read_window

PIDFILE = "writer.pid"


def register(sub) -> None:
    p = sub.add_parser("heartbeat", help="the heartbeat ledger the RPO is measured against: start | stop | status")
    p.add_argument("action", choices=("start", "stop", "status"))
    add_home_options(p)
    p.add_argument("--ledger", help="ledger folder (default: the target description's heartbeat_ledger)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between heartbeats (default 1)")
    p.set_defaults(func=cmd_heartbeat)


def cmd_heartbeat(args) -> int:
    target = target_of(args)
    try:
        t = target.data
    except targets.TargetError as e:
        raise UsageError(str(e)) from None
    ledger = Path(args.ledger or t.get("heartbeat_ledger") or "")
    if not str(ledger) or str(ledger) == ".":
        raise UsageError("no ledger folder: give --ledger DIR or set heartbeat_ledger in the target description")
    if not 0.1 <= args.interval <= 60:
        raise UsageError(f"--interval must be between 0.1 and 60 seconds, got {args.interval}")
    supervised = target.fault_family == "processes"  # its heartbeat writer is a supervised program
    if args.action == "status":
        return _status(ledger, supervised)
    if supervised:
        print("the embedded stack supervises its heartbeat writer (program 'heartbeat'); "
              "'gameday target up' starts it, 'gameday target down' stops it")
        return 0
    if args.action == "start":
        return _start(t["api_url"], ledger, args.interval)
    return _stop(ledger)


def _writer_pid(ledger: Path) -> int | None:
    pid = procs.read_pid(ledger / PIDFILE)
    if pid is None or not procs.running(pid):
        return None
    cmd = procs.cmdline(pid) or ""  # a reused pid is not our writer
    return pid if "harness.recorders.heartbeat" in cmd and str(ledger) in cmd else None


def _start(api_url: str, ledger: Path, interval: float) -> int:
    ledger.mkdir(parents=True, exist_ok=True)
    pid = _writer_pid(ledger)
    if pid:
        print(f"heartbeat already running (pid {pid}), ledger {ledger}")
        return 0
    with open(ledger / "writer.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.recorders.heartbeat", "--api-url", api_url,
                                 "--ledger", str(ledger), "--interval", str(interval)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # outlives this command and its terminal
    (ledger / PIDFILE).write_text(f"{proc.pid}\n")
    print(f"heartbeat started (pid {proc.pid}), one write every {interval:g} s to {api_url}, ledger {ledger}")
    return 0


def _stop(ledger: Path) -> int:
    pid = _writer_pid(ledger)
    if pid is None:
        print(f"no heartbeat writer running for {ledger}")
        return 0
    os.kill(pid, signal.SIGTERM)
    left = procs.wait_gone([pid], 5.0)
    if left:
        os.kill(pid, signal.SIGKILL)
    (ledger / PIDFILE).unlink(missing_ok=True)
    print(f"heartbeat stopped (pid {pid})")
    return 0


def _status(ledger: Path, supervised: bool) -> int:
    now = time.time()
    recent = read_window(ledger, now - 60, now)
    writer = "supervised by the embedded stack" if supervised else (
        f"pid {_writer_pid(ledger)}" if _writer_pid(ledger) else "not running")
    if not recent:
        print(f"heartbeat: no acknowledgement in the last 60 s (writer {writer}), ledger {ledger}")
        return 1
    age = now - recent[-1][1]
    print(f"heartbeat: {len(recent)} acknowledgements in the last 60 s, newest {age:.1f} s ago "
          f"(writer {writer}), ledger {ledger}")
    return 0
