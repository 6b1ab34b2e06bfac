"""`gameday abort [--home DIR ...]`: the emergency stop. Every `gameday run` in progress on the
stack homes named (default: this one) is ended: it records "aborted by operator", rolls its
faults back and ends as interrupted. Waits for them to finish their rollbacks
(harness/run/abort.py; the console's abort button does the same)."""
from __future__ import annotations

import time
from pathlib import Path

from harness import targets
from harness.core.errors import UsageError
from harness.run.abort import is_gameday_home, send_abort, wait_ended

__all__ = ["register", "cmd_abort", "is_gameday_home"]


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
    started = time.monotonic()
    runs = send_abort(homes)
    if not runs:
        print(f"no run in progress on {', '.join(str(h) for h in homes)}")
        return 0
    for home, run in runs:
        print(f"abort sent to run pid {run['pid']} ({', '.join(Path(e).name for e in run.get('experiments', []))})")
    left = wait_ended(runs, args.wait)
    took = time.monotonic() - started
    if left:
        print(f"still rolling back after {took:.1f} s: pids {left}")
        return 1
    print(f"every run ended in {took:.1f} s (rollbacks done)")
    return 0
