"""What fingerprinting the whole table costs (probes/fingerprint.py): rows/s for a table of
--rows rows (default 1,000,000), and what it does to the service's writes meanwhile (the insert
latency of a writer beside it, against the same writer alone: a fingerprint must not hold locks
that stall the service). Ratios measured in one run.

Usage: .venv/bin/python bench/fingerprint.py [--rows 1000000] [--trials 3] [--home DIR | --port-base 15950]
(--home: a stack that is up; otherwise a throwaway stack on --port-base). The benchmark's rows
(keys bench-fp-…) are removed at the end.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import bench_stack  # noqa: E402

from harness import targets  # noqa: E402
from probes import fingerprint  # noqa: E402

KEY = "bench-fp-"


def fill(dsn: str, rows: int) -> float:
    t0 = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as c:
        have = c.execute("select count(*) from optimization_results where request_id like %s", (KEY + "%",)).fetchone()[0]
        if have < rows:
            c.execute("insert into optimization_results (request_id, image_features, target_quality, parameters, "
                      "predicted_ssim, model_version) select %s || g, jsonb_build_object('edge_density', random(), "
                      "'unique_colors', (random() * 100)::int, 'entropy', random() * 8, 'corner_density', random(), "
                      "'gradient_strength', random(), 'complexity_score', random()), 0.9, jsonb_build_object("
                      "'color_precision', 6, 'layer_difference', 16, 'corner_threshold', 60, 'length_threshold', 4.0, "
                      "'max_iterations', 10, 'splice_threshold', 45, 'path_precision', 8, 'mode', 'spline'), "
                      "random(), 'bench' from generate_series(%s::int, %s::int) g", (KEY, have + 1, rows))
        c.execute("vacuum analyze optimization_results")
    return time.monotonic() - t0


def writer(dsn: str, stop: threading.Event, latencies: list[float]) -> None:
    """One row at a time, as the API writes: the latency of each insert."""
    with psycopg.connect(dsn, autocommit=True) as c:
        n = 0
        while not stop.is_set():
            t0 = time.monotonic()
            c.execute("insert into optimization_results (request_id, image_features, target_quality, parameters, "
                      "predicted_ssim, model_version) values (%s, '{}', 0.9, '{}', 0.5, 'bench')",
                      (f"{KEY}w-{time.time_ns()}-{n}",))
            latencies.append(time.monotonic() - t0)
            n += 1


def measure_writes(dsn: str, seconds: float, during=None) -> tuple[list[float], object]:
    stop, latencies = threading.Event(), []
    th = threading.Thread(target=writer, args=(dsn, stop, latencies), daemon=True)
    th.start()
    time.sleep(0.3)
    latencies.clear()
    result = during() if during else time.sleep(seconds)
    stop.set()
    th.join()
    return latencies, result


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def run(t: dict, rows: int, trials: int) -> None:
    dsn = t["app_dsn"]
    print(f"filling {rows:,} rows ... ", end="", flush=True)
    print(f"{fill(dsn, rows):.1f} s")
    with psycopg.connect(dsn) as c:
        total = c.execute("select count(*) from optimization_results").fetchone()[0]
    folder = Path(tempfile.mkdtemp(prefix="bench-fp-"))
    times = []
    for i in range(trials):
        r = fingerprint.take(folder / f"t{i}.tsv", dsn=dsn)
        assert r["ok"], r
        times.append(r["seconds"])
    best, median = min(times), statistics.median(times)
    print(f"fingerprint of {total:,} rows: median {median:.3f} s, best {best:.3f} s over {trials} trials "
          f"= {total / median:,.0f} rows/s (goal: 1,000,000 rows in at most 2 s = 500,000 rows/s)")
    t0 = time.monotonic()
    cmp = fingerprint.compare(folder / "t0.tsv", folder / f"t{trials - 1}.tsv")
    print(f"compare two fingerprints of {total:,} rows: {time.monotonic() - t0:.3f} s "
          f"({cmp['lost']} lost, {cmp['changed']} changed)")
    alone, _ = measure_writes(dsn, median)
    beside, _ = measure_writes(dsn, 0, during=lambda: fingerprint.take(folder / "beside.tsv", dsn=dsn))
    print(f"a writer's inserts alone:        n={len(alone):5d}  p50 {1000 * pct(alone, .5):6.2f} ms  "
          f"p99 {1000 * pct(alone, .99):6.2f} ms  max {1000 * max(alone):7.2f} ms")
    print(f"beside a fingerprint:            n={len(beside):5d}  p50 {1000 * pct(beside, .5):6.2f} ms  "
          f"p99 {1000 * pct(beside, .99):6.2f} ms  max {1000 * max(beside):7.2f} ms")
    print(f"ratio beside/alone: p50 {pct(beside, .5) / pct(alone, .5):.2f}, p99 {pct(beside, .99) / pct(alone, .99):.2f}, "
          f"max {max(beside) / max(alone):.2f} (a lock held by the fingerprint would stall inserts for its whole "
          f"{median:.2f} s)")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("delete from optimization_results where request_id like %s", (KEY + "%",))
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--home", default=None)
    ap.add_argument("--port-base", type=int, default=15950)
    args = ap.parse_args()
    if args.home:
        run(targets.load(Path(args.home)).data, args.rows, args.trials)
    else:
        with bench_stack(args.port_base) as t:
            run(t, args.rows, args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
