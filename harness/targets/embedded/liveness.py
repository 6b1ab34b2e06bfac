"""Liveness checker: the Kubernetes livenessProbe analogue for the API. gunicorn replaces a hung
worker by itself; a hung arbiter (or everything SIGSTOPped) nobody notices, so this polls /health
and, after `failures` consecutive misses, SIGKILLs the API's process group. supervisord then
restarts it (restartPolicy). SIGKILL works on stopped processes; SIGTERM would wait forever."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import urllib.request

from harness.targets.embedded import supervisor


def healthy(url: str, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status == 200
    except Exception:
        return False


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--supervisor", required=True)
    ap.add_argument("--program", default="api")
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--failures", type=int, default=5)
    ap.add_argument("--initial-delay", type=float, default=10.0)
    ap.add_argument("--hold", help="while this file exists the API is held down on purpose")
    args = ap.parse_args(argv)

    misses = 0
    while True:
        time.sleep(args.period)
        try:
            info = supervisor.process_info(args.supervisor, args.program)
        except Exception:
            continue
        # Only a program that has been RUNNING past its start-up grace is judged.
        held = args.hold and os.path.exists(args.hold)
        if held or info["statename"] != "RUNNING" or time.time() - info["start"] < args.initial_delay:
            misses = 0
            continue
        if healthy(args.url, args.timeout):
            misses = 0
            continue
        misses += 1
        if misses >= args.failures:
            print(f"liveness: {args.url} failed {misses} times; killing process group {info['pid']}", flush=True)
            try:
                os.killpg(info["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            misses = 0


if __name__ == "__main__":
    sys.exit(main())
