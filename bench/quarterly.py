"""How long the quarterly BCP evidence takes for a busy quarter.

    .venv/bin/python bench/quarterly.py [--runs 1000] [--keep DIR]

Writes --runs synthetic game-day runs (plus a tenth as many outside the quarter, and weekly
backup verification records) into a temp dir, each with history.jsonl, verdict.json,
journal.json, report.html and junit.xml, sealed and signed as the evidence writer does when a run
ends (SHA256SUMS + its OpenSSH signature), then times:
  build      build_quarterly the first time (collect, judge, render, chain every file: a run's
             hashes come from its seal, so runs are not hashed again) and sign the manifest;
  rebuild    the same after one more run was written (only what changed is hashed);
  verify     re-hash every file (on every core), walk the chain, check the manifest's and every
             run's signature against the allowed signers.
Generation is reported but not part of the measurement. The goal (issue 21): build and verify of
--runs 10000 within 5 s each; the ratios printed are measured time / 5 s.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # harness, and the tests' synthetic runs

from harness.core import signing  # noqa: E402
from harness.report.manifest import check  # noqa: E402
from harness.report.quarterly import build_quarterly  # noqa: E402
from harness.report.run import write_run_report  # noqa: E402
from harness.report.seal import seal_run  # noqa: E402
from synthetic_runs import make_backup_record, make_error_run, make_run  # noqa: E402

SCENARIOS = (("database-failure", "kill_postgres_primary", "restore_latest"),
             ("database-failover", "kill_postgres_primary", "promote_standby"),
             ("api-crash-all", "kill_api_replicas", None),
             ("model-corruption", "corrupt_model_file", "restore_model"),
             ("config-drift", "drift_config", "restore_config"),
             ("monitoring-failure", "kill_prometheus", None))
Q_START = datetime(2026, 10, 1, tzinfo=timezone.utc)
Q_SPAN_S = 91 * 86400
GOAL_S = 5.0


def generate(root: Path, runs: int, key: Path) -> int:
    """Synthetic runs across the quarter, ~8 % failing and ~3 % erroring, each sealed with `key`;
    returns bytes written."""
    outside = runs // 10
    for i in range(runs + outside):
        write_one(root, i, i < runs, key)
    for week in range(13):
        make_backup_record(root, Q_START + timedelta(days=7 * week + 2, hours=2), age_s=120 + week)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def write_one(root: Path, i: int, inside: bool, key: Path, day: str | None = None) -> None:
    """Run number i, in the quarter or in the one before (which the evidence must leave out),
    written, rendered and sealed as the evidence writer does."""
    if inside:
        started = Q_START + timedelta(seconds=(i * 7919) % Q_SPAN_S)
    else:
        started = Q_START - timedelta(days=1 + i % 80)
    scenario, fault, recovery = SCENARIOS[i % len(SCENARIOS)]
    run_dir = root / f"gameday-{day or f'{started:%Y-%m-%d}'}" / f"{i:04d}-{scenario}"
    if i % 33 == 5:
        make_error_run(run_dir, scenario=scenario, started=started, seed=i)
        write_run_report(run_dir)
        seal_run(run_dir, key)
        return
    failing = i % 12 == 7
    make_run(run_dir, scenario=scenario, started=started, fault_name=fault, recovery_name=recovery,
             duration_s=60, fault_at_s=15, outage_s=None if failing and i % 24 == 7 else 4 + i % 20,
             lost=6 if failing else 0, sample_interval_s=1.0, write_rate=2.0, probes=("api",),
             detection_latency_s=1.5 + (i % 7) / 3, seed=i)
    write_run_report(run_dir)
    seal_run(run_dir, key)


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (verify's seal workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--keep", help="generate into this dir (kept, with its signing home in DIR-home) instead of a "
                                   "temp dir; a kept dir that holds runs already is measured again as it is")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-quarterly-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "reports"
        root.mkdir(parents=True, exist_ok=True)
        home = Path(f"{args.keep}-home") if args.keep else Path(tmp) / "home"  # kept with the runs
        key = signing.home_key(home, principal="bench@gameday")
        allowed = signing.AllowedSigners.read(home / signing.ALLOWED_SIGNERS_NAME)
        t0 = time.perf_counter()
        reused = args.keep and any(root.glob("gameday-*/*/verdict.json"))
        if reused:  # measured again: the runs written before, the quarter's evidence rebuilt from nothing
            shutil.rmtree(root / "quarterly-2026Q4", ignore_errors=True)
            shutil.rmtree(root / "gameday-2026-12-31", ignore_errors=True)  # the "+1 run" of the last time
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        else:
            size = generate(root, args.runs, key)
        t_gen = time.perf_counter() - t0

        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), _cpu()
        index = build_quarterly(root, "2026Q4", key=key)
        t_build, c_build = time.perf_counter() - t0, _cpu() - c0

        write_one(root, args.runs + args.runs // 10, True, key, day="2026-12-31")  # one more run of the quarter
        t0, c0 = time.perf_counter(), _cpu()
        build_quarterly(root, "2026Q4", key=key)
        t_rebuild, c_rebuild = time.perf_counter() - t0, _cpu() - c0

        t0, c0 = time.perf_counter(), _cpu()
        checked = check(index.parent, allowed)
        t_verify, c_verify = time.perf_counter() - t0, _cpu() - c0
        problems = checked.problems

        n = args.runs
        print(f"quarterly bench: {n} runs in 2026Q4 (+{n // 10} outside it), {size / 1e6:.1f} MB of evidence, "
              f"{checked.files} files in the manifest, {os.cpu_count()} cores, load average {load:.1f} before "
              f"(CPU: user + system of this process and its workers, the figure other processes disturb least)")
        print(f"  generate + render + seal runs  {t_gen:7.2f} s   (setup, not measured{'; reused' if reused else ''})")
        for label, t, c in (("build (first)", t_build, c_build), ("rebuild (+1 run)", t_rebuild, c_rebuild),
                            ("verify", t_verify, c_verify)):
            print(f"  {label:<29}{t:7.2f} s   ({t / n * 1000:.3f} ms per run; {t / GOAL_S:.2f} of the "
                  f"{GOAL_S:g} s goal; CPU {c:.2f} s)")
        signers = ", ".join(f"{s} {c}" for s, c in checked.run_signers.items())
        print(f"  signatures: manifest by {checked.manifest_signer}; runs by {signers or 'nobody'}")
        print(f"  verify found {len(problems)} problem(s)" + (f": {problems[:3]}" if problems else ""))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
