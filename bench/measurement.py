"""Measurement accuracy and cost, in one run on this machine:
  - RTO error against ground truth: the whole API frozen (SIGSTOP) for exactly D seconds, measured
    through the full chain (experiment → control → sampler → checker), repeated;
  - acknowledged writes/s the locust load reaches beside the stack;
  - the sampler's overhead on that throughput, as a ratio (load alone vs load + 100 ms sampler).
Usage: .venv/bin/python bench/measurement.py [--trials 5] [--port-base 15800]"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import bench_stack, stats  # noqa: E402

from harness import history, runner  # noqa: E402
from harness.history import History  # noqa: E402
from harness.recorders.load import LoadGenerator  # noqa: E402
from harness.recorders.sampler import Sampler  # noqa: E402

CALIBRATION = Path(__file__).resolve().parents[1] / "tests" / "experiments" / "calibration-outage.yaml"
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--port-base", type=int, default=15800)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
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
        alone = acked_per_s(target, args.seconds, False, reports)
        sampled = acked_per_s(target, args.seconds, True, reports)
        scratch.cleanup()
        print(f"acknowledged writes/s, load alone:        {alone:8.1f}")
        print(f"acknowledged writes/s, load + sampler:    {sampled:8.1f}")
        print(f"sampler overhead ratio (with/without):    {sampled / alone:8.3f}")


if __name__ == "__main__":
    main()
