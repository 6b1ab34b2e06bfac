"""How long the quarterly BCP evidence takes for a busy quarter.

    .venv/bin/python bench/quarterly.py [--runs 1000] [--keep DIR]

Writes --runs synthetic game-day runs (plus a tenth as many outside the quarter, and weekly
backup verification records) into a temp dir, each with history.jsonl, verdict.json,
journal.json, report.html and junit.xml, then times build_quarterly (collect, judge, render,
hash every file into the manifest) and verify (re-hash and walk the chain). Generation is
reported but not part of the measurement.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # harness, and the tests' synthetic runs

from harness.report.manifest import verify  # noqa: E402
from harness.report.quarterly import build_quarterly  # noqa: E402
from harness.report.run import write_run_report  # noqa: E402
from synthetic_runs import make_backup_record, make_error_run, make_run  # noqa: E402

SCENARIOS = (("database-failure", "kill_postgres_primary", "restore_latest"),
             ("database-failover", "kill_postgres_primary", "promote_standby"),
             ("api-crash-all", "kill_api_replicas", None),
             ("model-corruption", "corrupt_model_file", "restore_model"),
             ("config-drift", "drift_config", "restore_config"),
             ("monitoring-failure", "kill_prometheus", None))
Q_START = datetime(2026, 10, 1, tzinfo=timezone.utc)
Q_SPAN_S = 91 * 86400


def generate(root: Path, runs: int) -> int:
    """Synthetic runs across the quarter, ~8 % failing and ~3 % erroring; returns bytes written."""
    outside = runs // 10
    for i in range(runs + outside):
        if i < runs:
            started = Q_START + timedelta(seconds=(i * 7919) % Q_SPAN_S)
        else:  # the quarter before: must be left out
            started = Q_START - timedelta(days=1 + i % 80)
        scenario, fault, recovery = SCENARIOS[i % len(SCENARIOS)]
        run_dir = root / f"gameday-{started:%Y-%m-%d}" / f"{i:04d}-{scenario}"
        if i % 33 == 5:
            make_error_run(run_dir, scenario=scenario, started=started, seed=i)
            continue
        failing = i % 12 == 7
        make_run(run_dir, scenario=scenario, started=started, fault_name=fault, recovery_name=recovery,
                 duration_s=60, fault_at_s=15, outage_s=None if failing and i % 24 == 7 else 4 + i % 20,
                 lost=6 if failing else 0, sample_interval_s=1.0, write_rate=2.0, probes=("api",),
                 detection_latency_s=1.5 + (i % 7) / 3, seed=i)
        write_run_report(run_dir)
    for week in range(13):
        make_backup_record(root, Q_START + timedelta(days=7 * week + 2, hours=2), age_s=120 + week)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--keep", help="generate into this dir (kept) instead of a temp dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-quarterly-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "reports"
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        size = generate(root, args.runs)
        t_gen = time.perf_counter() - t0

        t0 = time.perf_counter()
        index = build_quarterly(root, "2026Q4")
        t_build = time.perf_counter() - t0

        t0 = time.perf_counter()
        problems = verify(index.parent)
        t_verify = time.perf_counter() - t0

        print(f"quarterly bench: {args.runs} runs in 2026Q4 (+{args.runs // 10} outside it), "
              f"{size / 1e6:.1f} MB of evidence")
        print(f"  generate + render run reports  {t_gen:7.2f} s   (setup, not measured)")
        print(f"  build_quarterly                {t_build:7.2f} s   ({t_build / args.runs * 1000:.2f} ms per run)")
        print(f"  verify                         {t_verify:7.2f} s   ({t_verify / args.runs * 1000:.2f} ms per run)")
        print(f"  verify found {len(problems)} problem(s)" + (f": {problems[:3]}" if problems else ""))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
