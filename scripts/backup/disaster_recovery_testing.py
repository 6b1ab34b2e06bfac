#!/usr/bin/env python3
"""The BCP's automated DR test command: runs the matching game-day experiments through
`gameday run` and passes its exit code through (0 only if every criterion of every run passed).

    python scripts/backup/disaster_recovery_testing.py test [--test-type database|application|
                                                             infrastructure|monitoring|all]

`all` (the default) runs the whole monthly suite. Experiments not written yet are skipped with a
note.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments" / "local"

# BCP section → experiment files (globs) in experiments/local/.
TEST_TYPES = {
    "database": ["database-*.yaml"],
    "application": ["api-*.yaml", "model-corruption.yaml", "config-drift.yaml"],
    "infrastructure": ["storage-failure.yaml", "full-stack.yaml"],
    "monitoring": ["monitoring-failure.yaml"],
    "all": [],
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def experiments_for(test_type: str, folder: Path = EXPERIMENTS) -> tuple[list[Path], list[str]]:
    """The experiment files of a test type that exist, and the patterns that matched nothing."""
    found, missing = [], []
    for pattern in TEST_TYPES[test_type]:
        hits = sorted(folder.glob(pattern))
        found += [h for h in hits if h not in found]
        if not hits:
            missing.append(pattern)
    return found, missing


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="disaster_recovery_testing.py", description="Run the BCP's disaster-recovery tests.")
    parser.add_argument("command", choices=("test",))
    parser.add_argument("--test-type", choices=tuple(TEST_TYPES), default="all")
    parser.add_argument("--home", help="embedded stack folder (passed to gameday run)")
    parser.add_argument("--port-base", help="embedded stack port base (passed to gameday run)")
    args = parser.parse_args(argv)

    files: list[Path] = []
    if args.test_type != "all":
        files, missing = experiments_for(args.test_type)
        for pattern in missing:
            print(f"note: no experiment {EXPERIMENTS.relative_to(ROOT) / pattern} yet; skipped", file=sys.stderr)
        if not files:
            print(f"error: no {args.test_type} experiments found in {EXPERIMENTS.relative_to(ROOT)}", file=sys.stderr)
            return 2
    cmd = [sys.executable, "-m", "harness.cli", "run", *[str(f) for f in files]]
    if args.home:
        cmd += ["--home", args.home]
    if args.port_base:
        cmd += ["--port-base", args.port_base]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    try:
        return subprocess.call(cmd, cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 2


if __name__ == "__main__":
    sys.exit(main())
