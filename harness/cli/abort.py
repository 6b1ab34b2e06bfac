"""`gameday abort [--home DIR ...]`: the emergency stop. Every `gameday run` in progress on the
stack homes named (default: this one) is ended: it records "aborted by operator", rolls its
faults back and ends as interrupted. Waits for them to finish their rollbacks."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from harness import targets
from harness.core import procs
from harness.core.errors import UsageError
from harness.run import active_runs

__all__ = ["register", "cmd_abort"]


def register(sub) -> None:
    p = sub.add_parser("abort", help="emergency stop: end every run in progress on the stack home(s), rolling back")
    p.add_argument("--home", action="append", metavar="DIR",
                   help="stack home (repeatable; default $GAMEDAY_HOME or .gameday in the project)")
    p.add_argument("--target", metavar="FILE", help="a target description: the home it lies in (default $GAMEDAY_TARGET)")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the rollbacks (default 120)")
    p.set_defaults(func=cmd_abort)


def cmd_abort(args) -> int:
    if args.home and args.target:
        raise UsageError("--home and --target name two targets; give one")
    homes = [Path(h).resolve() for h in args.home] if args.home else [targets.selected(None).home if not args.target
                                                                       else Path(args.target).resolve().parent]
    for home in homes:  # an emergency stop aimed at the wrong folder must never read as calm
        if not is_gameday_home(home):
            raise UsageError(f"{home} is not a gameday stack home (it has no {targets.TARGET_FILE}, "
                             f"{targets.HOME_MARKER} or runs/): nothing was aborted")
    runs = [(home, run) for home in homes for run in active_runs.active(home)]
    if not runs:
        print(f"no run in progress on {', '.join(str(h) for h in homes)}")
        return 0
    started = time.monotonic()
    for home, run in runs:
        active_runs.request_abort(home, run["pid"])
        os.kill(run["pid"], signal.SIGTERM)
        print(f"abort sent to run pid {run['pid']} ({', '.join(Path(e).name for e in run.get('experiments', []))})")
    left = procs.wait_gone([run["pid"] for _, run in runs], args.wait)
    took = time.monotonic() - started
    if left:
        print(f"still rolling back after {took:.1f} s: pids {left}")
        return 1
    print(f"every run ended in {took:.1f} s (rollbacks done)")
    return 0


def is_gameday_home(home: Path) -> bool:
    """A folder a stack or a run has used: its description, its marker or its runs."""
    return home.is_dir() and any((home / name).exists() for name in (targets.TARGET_FILE, targets.HOME_MARKER, "runs"))
