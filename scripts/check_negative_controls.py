"""Runs every negative control (experiments/negative/) through `gameday run` and checks that each
one came out FAIL. A harness that cannot fail is worthless: exit 0 only if every twin failed."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    files = sorted(str(p) for p in (ROOT / "experiments" / "negative").glob("*.yaml"))
    reports = Path(tempfile.mkdtemp(prefix="negative-controls-", dir=ROOT / "reports"))
    subprocess.run([sys.executable, "-m", "harness.cli", "run", *files, "--reports-dir", str(reports)], cwd=ROOT)
    verdicts = {json.loads(p.read_text())["run_id"]: json.loads(p.read_text()) for p in reports.rglob("verdict.json")}
    bad = [v for v in verdicts.values() if v["status"] != "fail"]
    print(f"\nnegative controls: {len(verdicts)} run, {len(verdicts) - len(bad)} failed as they must")
    for v in bad:
        print(f"  !! {v['scenario']}: {v['status'].upper()} ({v['reason']})")
    if len(verdicts) != len(files):
        print(f"  !! {len(files)} negative experiments but {len(verdicts)} verdicts")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
