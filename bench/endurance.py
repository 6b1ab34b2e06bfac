"""Endurance: the monthly suite N times back to back on one stack. Nothing may grow without
bound: per game day it prints the wall time, the stack's open file descriptors and processes, the
disk used by the stack home (and its bounded parts) and by the reports, the rows in the application
table (before -> after the retention), the WAL archive's size, and the fault and heartbeat ledgers.

Back-to-back game days stand in for monthly ones, so the retention after each (`gameday backup db
cleanup`) keeps only the last game day's harness rows (`--rows-older-than-days 0`; a real stack
keeps 7 days). The calibration bound is wide: this measures growth, not timing. The load writes
at a fixed rate (`gameday run --load-rate`, default 100 writes/s): unpaced, each game day wrote
what the machine allowed that day (106k to 160k rows), and a table keeps its largest size after a
vacuum, so the home followed the busiest day instead of showing whether it holds.

Usage: .venv/bin/python bench/endurance.py [--game-days 5] [--port-base 15900] [--load-rate 100]"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import bench_stack  # noqa: E402

import psycopg  # noqa: E402

from harness.records import fault_ledger  # noqa: E402
from harness.core import procs  # noqa: E402
from harness.recovery.backup import folder_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def du_mb(path: Path) -> float:
    return folder_bytes(path) / 1e6


def stack_processes(target: dict) -> list[int]:
    """The stack's processes: supervisord and its process tree."""
    root = procs.read_pid(Path(target["home"]) / "supervisord.pid")
    if root is None:
        return []
    found, frontier = [root], [root]
    while frontier:
        kids = [c for p in frontier for c in procs.children(p)]
        found += kids
        frontier = kids
    return found


def fds_by_process(pids: list[int]) -> dict[str, int]:
    """Open file descriptors per kind of process (its executable's short name: a PostgreSQL
    backend retitles itself with every query), so growth can be traced."""
    out: dict[str, int] = {}
    for pid in pids:
        try:
            n = len(os.listdir(f"/proc/{pid}/fd"))
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        out[name] = out.get(name, 0) + n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--game-days", type=int, default=5)
    ap.add_argument("--port-base", type=int, default=15900)
    ap.add_argument("--rows-older-than-days", type=float, default=0.0)
    ap.add_argument("--load-rate", type=float, default=100.0, help="writes per second of every game day's load")
    args = ap.parse_args()
    with bench_stack(args.port_base) as target, tempfile.TemporaryDirectory(prefix="bench-endurance-",
                                                                            dir="/var/tmp") as reports:
        home = Path(target["home"])
        # The home's bounded parts, so a rising total can be traced: backups (--keep 3), the WAL
        # archive (pruned with them), pg_wal of both servers (wal_keep_size), the newest aside copy
        # of each data folder a restore moved away.
        print(f"{'day':>3} {'wall s':>7} {'rc':>3} {'procs':>5} {'fds':>5} {'home MB':>8} {'reports MB':>10} "
              f"{'rows':>15} {'archive MB':>10} {'backups MB':>10} {'pg_wal MB':>9} {'asides MB':>9} {'ledger':>6} {'hb MB':>6}")
        first_fds: dict[str, int] = {}
        for day in range(1, args.game_days + 1):
            started = time.monotonic()
            rc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--home", str(home),
                                 "--port-base", str(args.port_base), "--reports-dir", reports, "--keep-target",
                                 "--calibration-bound-s", "10", "--load-rate", str(args.load_rate)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            wall = time.monotonic() - started
            with psycopg.connect(target["app_dsn"]) as c:
                rows_before = c.execute("select count(*) from optimization_results").fetchone()[0]
            subprocess.run([sys.executable, "-m", "harness.cli", "backup", "db", "cleanup", "--home", str(home),
                            "--rows-older-than-days", str(args.rows_older_than_days)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with psycopg.connect(target["app_dsn"]) as c:
                rows = c.execute("select count(*) from optimization_results").fetchone()[0]
            pids = stack_processes(target)
            fds = fds_by_process(pids)
            first_fds = first_fds or fds
            srv = Path(target["srv_dir"])
            pg_wal = sum(du_mb(srv / name / "pg_wal") for name in ("primary", "standby"))
            asides = sum(du_mb(p) for p in srv.glob("*.aside-*"))
            print(f"{day:>3} {wall:>7.0f} {rc:>3} {len(pids):>5} {sum(fds.values()):>5} {du_mb(home):>8.1f} "
                  f"{du_mb(Path(reports)):>10.1f} {f'{rows_before}->{rows}':>15} {du_mb(Path(target['archive_dir'])):>10.1f} "
                  f"{du_mb(Path(target['backup_dir'])):>10.1f} {pg_wal:>9.1f} {asides:>9.1f} "
                  f"{len(fault_ledger.entries(home)):>6} {du_mb(Path(target['heartbeat_ledger'])):>6.2f}",
                  flush=True)
        print("open fds by process, day 1 -> day %d: " % args.game_days + ", ".join(
            f"{name} {first_fds.get(name, 0)}->{n}" for name, n in sorted(fds.items())))


if __name__ == "__main__":
    main()
