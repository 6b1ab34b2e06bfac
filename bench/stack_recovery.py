"""The embedded stack's own numbers, in one run: cold and warm `target up`, recovery time after
SIGKILL of an API worker, the API parent (arbiter + workers), the PostgreSQL postmaster and
Prometheus (several runs each), and optimize throughput on this machine.
Usage: .venv/bin/python bench/stack_recovery.py [--runs 5] [--port-base 15900]"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import bench_stack, stats  # noqa: E402

from harness.core.procs import children as _children  # noqa: E402
from harness.targets.embedded import stack as embedded, supervisor  # noqa: E402
from harness.targets.embedded.layout import Layout  # noqa: E402
from harness.core.api_contract import optimize_body  # noqa: E402


def until(check, timeout_s=60.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            if check():
                return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(0.01)
    raise TimeoutError("not recovered")


def optimize_ok(api: str) -> bool:
    r = requests.post(api + "/api/v1/optimization/optimize", json=optimize_body(f"bench-{time.time_ns()}"), timeout=1)
    return r.status_code == 200


def throughput(api: str, seconds: float = 10.0, threads: int = 16) -> float:
    stop = time.monotonic() + seconds

    def worker(i):
        s, n = requests.Session(), 0
        while time.monotonic() < stop:
            if s.post(api + "/api/v1/optimization/optimize", json=optimize_body(f"tp-{i}-{n}-{time.time_ns()}"),
                      timeout=5).status_code == 200:
                n += 1
        return n
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(worker, range(threads))) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--port-base", type=int, default=15900)
    args = ap.parse_args()
    with bench_stack(args.port_base) as t:
        print(f"cold target up (training, initdb, backup, standby): {t['_cold_up_s']:.1f} s")
        layout = Layout(t["home"], t["port_base"])
        url, api = t["supervisor_url"], t["api_url"]
        embedded.down(t["home"], t["port_base"], log=lambda m: None)
        t0 = time.monotonic()
        embedded.up(t["home"], t["port_base"], log=lambda m: None)
        print(f"warm target up (existing data and models):          {time.monotonic() - t0:.1f} s")

        def kill_worker():
            os.kill(_children(supervisor.process_info(url, "api")["pid"])[0], signal.SIGKILL)
            return lambda: optimize_ok(api)

        def kill_parent():
            os.killpg(supervisor.process_info(url, "api")["pid"], signal.SIGKILL)
            return lambda: optimize_ok(api)

        def kill_postgres():
            os.kill(supervisor.process_info(url, "postgres-primary")["pid"], signal.SIGKILL)
            return lambda: optimize_ok(api)

        def kill_prometheus():
            os.kill(supervisor.process_info(url, "prometheus")["pid"], signal.SIGKILL)
            return lambda: embedded.component_health(layout, "prometheus")[0]

        for name, fault in (("API worker", kill_worker), ("API parent (arbiter + workers)", kill_parent),
                            ("PostgreSQL postmaster", kill_postgres), ("Prometheus (scraping again)", kill_prometheus)):
            times = []
            for _ in range(args.runs):
                until(lambda: embedded.status(t["home"])["healthy"], 90)
                check = fault()
                times.append(until(check))
            print(f"SIGKILL {name:<32} back in (s): {stats(times)}")
        until(lambda: embedded.status(t["home"])["healthy"], 90)
        print(f"optimize throughput, 16 client threads: {throughput(api):.0f} requests/s")


if __name__ == "__main__":
    main()
