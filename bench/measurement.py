"""Measurement accuracy and cost, in one run on this machine:
  - RTO error against ground truth: the whole API frozen (SIGSTOP) for exactly D seconds, measured
    through the full chain (experiment → control → sampler → checker), repeated;
  - acknowledged writes/s the locust load reaches beside the stack;
  - the sampler's overhead on that throughput, as a ratio (load alone vs load + 100 ms sampler).
  - RPO error against ground truth: the database rewound by point-in-time recovery to exactly N
    seconds before the fault (N = 10, 30, 60), measured through the heartbeat ledger.
Usage: .venv/bin/python bench/measurement.py [--trials 5] [--port-base 15800] [--rewinds 10,30,60]"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import bench_stack, stats  # noqa: E402

from harness import history, runner  # noqa: E402
from harness.heartbeat_ledger import read_window  # noqa: E402
from harness.history import History  # noqa: E402
from harness.recorders.load import LoadGenerator  # noqa: E402
from harness.recorders.sampler import Sampler  # noqa: E402

CALIBRATION = Path(__file__).resolve().parents[1] / "tests" / "experiments" / "calibration-outage.yaml"
REWIND = Path(__file__).resolve().parents[1] / "tests" / "experiments" / "calibration-rewind.yaml"
OUTAGE_S = 3.0


def acked_per_s(target: dict, seconds: float, with_sampler: bool, scratch: Path) -> float:
    path = scratch / f"load-{'sampled' if with_sampler else 'alone'}.jsonl"
    h = History(path)
    sampler = Sampler(h, target, ["api", "ready"]).start() if with_sampler else None
    load = LoadGenerator(target["api_url"], path, h.t0, users=8).start()
    time.sleep(2)  # spawn + warm-up, not counted
    t_from = h.now()
    time.sleep(seconds)
    t_to = h.now()
    load.stop()
    if sampler:
        sampler.stop()
    acks = [e for e in history.read(path) if e["kind"] == "op" and e["type"] == "ok" and t_from <= e["t"] < t_to]
    return len(acks) / (t_to - t_from)


def rpo_errors(target_file: Path, reports: Path, rewinds: list[float]) -> list[float]:
    """One PITR rewind per N: measured RPO - N. Waits until the heartbeat ledger reaches N + 5 s back."""
    [planned] = runner.plan([REWIND])
    errors = []
    for n in rewinds:
        planned.experiment["method"][0]["provider"]["arguments"]["seconds"] = n
        ledger = json.loads(target_file.read_text())["heartbeat_ledger"]
        while True:  # the reference signal must exist before the rewind
            now = time.time()
            walls = [now - n - 5] + [w for _, w, _ in read_window(ledger, now - n - 5, now)] + [now]
            if max(b - a for a, b in zip(walls, walls[1:])) < 1.5:
                break
            time.sleep(1)
        v = runner.run_one(planned, reports, target_file, runner._Signals(), log=lambda m: None)
        rpo = v["measured"]["rpo_s"]
        errors.append(rpo - n)
        print(f"rewind {n:g} s: measured RPO {rpo:.3f} s, error {rpo - n:+.3f} s ({v['status']})")
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--port-base", type=int, default=15800)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rewinds", default="10,30,60", help="PITR rewinds in seconds, comma-separated")
    args = ap.parse_args()
    rewinds = [float(x) for x in args.rewinds.split(",") if x.strip()]
    with bench_stack(args.port_base) as target:
        target_file = Path(target["home"]) / "target.json"
        os.environ["GAMEDAY_TARGET"] = str(target_file)
        scratch = tempfile.TemporaryDirectory(prefix="bench-measure-", dir="/var/tmp")
        reports = Path(scratch.name)
        errors = []
        [planned] = runner.plan([CALIBRATION])
        for i in range(args.trials):
            v = runner.run_one(planned, reports, target_file, runner._Signals(), log=lambda m: None)
            rto = v["measured"]["rto_s"]
            errors.append(rto - OUTAGE_S)
            print(f"trial {i + 1}: outage {OUTAGE_S} s, measured RTO {rto:.3f} s, error {rto - OUTAGE_S:+.3f} s")
        print(f"RTO error vs ground truth (s): {stats(errors)}")
        if rewinds:
            print(f"RPO error vs ground truth (s): {stats(rpo_errors(target_file, reports, rewinds))}")
        alone = acked_per_s(target, args.seconds, False, reports)
        sampled = acked_per_s(target, args.seconds, True, reports)
        scratch.cleanup()
        print(f"acknowledged writes/s, load alone:        {alone:8.1f}")
        print(f"acknowledged writes/s, load + sampler:    {sampled:8.1f}")
        print(f"sampler overhead ratio (with/without):    {sampled / alone:8.3f}")


if __name__ == "__main__":
    main()
