"""Measurement accuracy and cost, in one run on this machine:
  - RTO error against ground truth: the whole API frozen (SIGSTOP) for exactly D seconds, measured
    through the full chain (experiment → control → sampler → checker), repeated, at the default
    100 ms sampling interval and at 20 ms, interleaved. An independent witness (bench/_resume_probe.py,
    its own process, one pending request at a time) times when the service answers again for good,
    so the error splits into what the fault action, the service and the sampler each added;
  - RPO error against ground truth: the database rewound by point-in-time recovery to exactly N
    seconds before the fault (N = 10, 30, 60), measured through the heartbeat ledger;
  - the sampler's cost to acknowledged-write throughput: one continuous locust load, windows with
    the sampler (as the control runs it) and without, alternating (with, without, with, …); the
    ratio with/without of each pair, their median and spread. On 2 shared cores one pair is noise.
Usage: .venv/bin/python bench/measurement.py [--trials 5] [--pairs 7] [--seconds 9] [--port-base 15800]
                                             [--rewinds 10,30,60] [--intervals 0.1,0.02]"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import bench_stack, stats  # noqa: E402

from harness.run import control, plan as plan_mod, runner, session as session_mod  # noqa: E402
from harness.records import history  # noqa: E402
from harness.core import procs  # noqa: E402
from harness.records.heartbeat_ledger import read_window  # noqa: E402
from harness.records.history import History  # noqa: E402
from harness.recorders.load import LoadGenerator  # noqa: E402
from harness.recorders.sampler import Sampler  # noqa: E402

CALIBRATION = Path(__file__).resolve().parents[1] / "tests" / "experiments" / "calibration-outage.yaml"
REWIND = Path(__file__).resolve().parents[1] / "tests" / "experiments" / "calibration-rewind.yaml"
RESUME_PROBE = Path(__file__).resolve().parent / "_resume_probe.py"
OUTAGE_S = 3.0


# -- the sampler's cost ------------------------------------------------------------------------

def overhead_pairs(target: dict, pairs: int, seconds: float, scratch: Path, before: bool = False) -> list[dict]:
    """One continuous load; windows of `seconds` with the sampler as the control runs it for a
    scenario measured on `api` (api every 100 ms on kept-alive connections, ready once a second, the watcher on api once a second)
    and without, alternating. `before`: the sampler as it was (a fresh connection per sample,
    ready every 100 ms too). Returns one dict per pair: acks/s with and without, and the ratio."""
    how = {"keep_alive": False} if before else {"sparse_probes": ["ready"], "watched": ["api"]}
    path = scratch / "overhead.jsonl"
    h = History(path)
    load = LoadGenerator(target["api_url"], path, h.t0, users=8).start()
    windows = []
    try:
        time.sleep(5)  # spawn + warm-up (connection pools, caches), not counted
        for i in range(2 * pairs):
            with_sampler = i % 2 == 0
            sampler = Sampler(h, target, ["api", "ready"], **how).start() if with_sampler else None
            time.sleep(0.5)  # the sampler's first requests and the pool's threads start outside the window
            server, locust = _server_pids(target), [load.proc.pid]
            cpu0, server0, locust0, t_from = time.process_time(), _cpu_s(server), _cpu_s(locust), h.now()
            time.sleep(seconds)
            t_to, cpu = h.now(), time.process_time() - cpu0
            server_cpu, locust_cpu = _cpu_s(server) - server0, _cpu_s(locust) - locust0
            if sampler:
                sampler.stop()
            windows.append((with_sampler, t_from, t_to, cpu, server_cpu, locust_cpu))
    finally:
        load.stop()
    acks = [e["t"] for e in history.read(path) if e["kind"] == "op" and e["type"] == "ok"]
    samples = [e["t"] for e in history.read(path) if e["kind"] == "sample"]
    rates = []
    for with_sampler, t_from, t_to, cpu, server_cpu, locust_cpu in windows:
        n = sum(1 for t in acks if t_from <= t < t_to)
        k = sum(1 for t in samples if t_from <= t < t_to)
        # CPU seconds are far less disturbed by other work on the machine than throughput is:
        # the server's CPU per request (writes and samples alike) prices the sampler's requests,
        # plus its own CPU, as a share of all the CPU the write path and the sampler used.
        per_request = server_cpu / max(1, n + k)
        sampler_cpu = k * per_request + cpu
        rates.append({"with": with_sampler, "acks_per_s": n / (t_to - t_from), "samples_per_s": k / (t_to - t_from),
                      "cpu_pct": 100 * cpu / (t_to - t_from),
                      "cpu_share": sampler_cpu / max(1e-9, server_cpu + locust_cpu + cpu)})
    # Pair i: window 2i (with) and 2i+1 (without). `ratio_next` pairs each "without" with the next
    # "with" instead: if the two medians disagree, a drift of the machine's load biases the figure.
    return [{"with": rates[i], "without": rates[i + 1], "ratio": rates[i]["acks_per_s"] / rates[i + 1]["acks_per_s"],
             "ratio_next": (rates[i + 2]["acks_per_s"] / rates[i + 1]["acks_per_s"]) if i + 2 < len(rates) else None}
            for i in range(0, len(rates) - 1, 2)]


def _server_pids(target: dict) -> list[int]:
    """The write path's server processes: the API's (gunicorn's process group) and both PostgreSQL
    servers' (their data folder is their working folder)."""
    arbiter = procs.read_pid(target["api_pidfile"])
    pids = procs.group_members(arbiter) if arbiter else []
    for server in ("primary", "standby"):
        pids += procs.pids_in(target[server]["data_dir"])
    return pids


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used (those gone meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> str:
    v = sorted(values)
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) >= 2 else [v[0], v[0], v[0]]
    return (f"median {statistics.median(v):.3f}  IQR {q[0]:.3f}–{q[2]:.3f}  min–max {v[0]:.3f}–{v[-1]:.3f}  "
            f"(n={len(v)})")


# -- RTO against a known freeze, with an independent witness -----------------------------------

def rto_trial(planned: runner.Planned, target: dict, target_file: Path, reports: Path, keep_alive: bool = True) -> dict:
    """One calibration freeze through the whole chain, with the resume witness running beside it.
    Returns the measured RTO and its decomposition (seconds, on the run's clock). `keep_alive`
    False: the sampler as it was (a fresh connection per sample), for comparison."""
    t0s: list[float] = []
    real_open = session_mod.RunSession.open

    def open_and_note_t0(*args, **kwargs):  # the run's clock origin, to place the witness on it
        s = real_open(*args, **kwargs)
        t0s.append(s.history.t0)
        return s
    witness_file = reports / f"witness-{time.time_ns()}.txt"
    witness = subprocess.Popen([sys.executable, str(RESUME_PROBE), target["api_url"], str(witness_file)])
    runner.RunSession = type("RunSession", (), {"open": staticmethod(open_and_note_t0)})
    control.Sampler = functools.partial(Sampler, keep_alive=keep_alive)
    try:
        v = runner.run_one(planned, reports, target_file, runner._Signals(), log=lambda m: None)
    finally:
        runner.RunSession = session_mod.RunSession
        control.Sampler = Sampler
        witness.terminate()
        witness.wait(15)
    events = history.read(Path(v["_run_dir"]) / "history.jsonl")
    fault_start = next((e["t"] for e in events if e["kind"] == "fault" and e["phase"] == "start"), None)
    end = next((e for e in events if e["kind"] == "fault" and e["phase"] == "end"), None)
    if fault_start is None or end is None:  # e.g. no write acknowledged in the warm-up: nothing injected
        return {"status": v["status"], "reason": v.get("reason"), "rto_s": None, "error_s": None, "setup_s": None,
                "held_over_s": None, "resume_s": None, "true_rto_s": None, "bias_s": None, "witness_answers": 0}
    # RTO runs from when the fault says it landed (the SIGSTOP sent), as the checker reads it.
    fault_start = end.get("landed_t", fault_start)
    held = float((end.get("detail") or {}).get("stopped_s") or OUTAGE_S)
    resumed_t = end["t"]  # SIGCONT, to within the few ms the action takes to return
    stopped_t = resumed_t - held
    observe_end = max((e["t"] for e in events if e["kind"] == "marker" and e.get("name") == "observe_end"),
                      default=float("inf"))
    answers = []
    for line in witness_file.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3:
            answers.append((float(parts[1]) - t0s[0], parts[2] == "1"))
    # The witness judged like the sampler: its first success after its last failure in the
    # observation (a restart after the resume, e.g. by the liveness checker, is the service's).
    watched = sorted((t, ok) for t, ok in answers if stopped_t + 0.2 < t <= observe_end)
    last_fail = max((t for t, ok in watched if not ok), default=stopped_t)
    first_ok = min((t for t, ok in watched if ok and t > last_fail), default=None)
    rto = v["measured"]["rto_s"]
    out = {"status": v["status"], "rto_s": rto, "error_s": None if rto is None else rto - OUTAGE_S,
           "setup_s": stopped_t - fault_start, "held_over_s": held - OUTAGE_S, "resume_s": None,
           "true_rto_s": None, "bias_s": None, "witness_answers": len(answers)}
    if first_ok is not None:
        out.update(resume_s=first_ok - resumed_t, true_rto_s=first_ok - fault_start)
        if rto is not None:
            out["bias_s"] = rto - (first_ok - fault_start)
    return out


def at_interval(planned: runner.Planned, interval_s: float) -> runner.Planned:
    """The calibration experiment with the sampler at `interval_s` (extensions.bcp.recorders)."""
    experiment = copy.deepcopy(planned.experiment)
    bcp = next(e for e in experiment["extensions"] if e.get("name") == "bcp")
    bcp.setdefault("recorders", {})["interval_s"] = interval_s
    return runner.Planned(planned.path, experiment, plan_mod.plan(experiment, planned.path))


def _f(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:+.3f}"


def _med(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5, help="calibration freezes per sampling interval")
    ap.add_argument("--intervals", default="0.1,0.02", help="sampling intervals to compare, seconds (the first is "
                                                              "also measured with the sampler as it was)")
    ap.add_argument("--overhead-sampler", choices=("now", "before"), default="now",
                    help="whose cost to measure: the sampler now, or as it was (fresh connections, ready every tick)")
    ap.add_argument("--pairs", type=int, default=7, help="with/without sampler window pairs (at least 5)")
    ap.add_argument("--seconds", type=float, default=9.0, help="length of one throughput window")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("GAMEDAY_PORT_BASE") or 15800))
    ap.add_argument("--rewinds", default="10,30,60", help="PITR rewinds in seconds, comma-separated ('' skips)")
    args = ap.parse_args()
    if args.pairs < 5:
        ap.error(f"--pairs must be at least 5 (one pair on 2 shared cores is noise), got {args.pairs}")
    rewinds = [float(x) for x in args.rewinds.split(",") if x.strip()]
    intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    with bench_stack(args.port_base) as target:
        target_file = Path(target["home"]) / "target.json"
        os.environ["GAMEDAY_TARGET"] = str(target_file)
        scratch = tempfile.TemporaryDirectory(prefix="bench-measure-", dir="/var/tmp")
        reports = Path(scratch.name)

        print(f"== sampler cost: {args.pairs} interleaved pairs of {args.seconds:g} s windows, one continuous load")
        pairs = overhead_pairs(target, args.pairs, args.seconds, reports, before=args.overhead_sampler == "before")
        print(f"   sampler: {'as it was (fresh connection per sample, api + ready every 100 ms)' if args.overhead_sampler == 'before' else 'now (kept-alive connections, api every 100 ms, ready every 1 s, the watcher on api every 1 s)'}")
        for i, p in enumerate(pairs, 1):
            print(f"pair {i}: with sampler {p['with']['acks_per_s']:7.1f} acks/s ({p['with']['samples_per_s']:4.1f} "
                  f"samples/s, harness CPU {p['with']['cpu_pct']:4.1f} %), without {p['without']['acks_per_s']:7.1f} "
                  f"acks/s: ratio {p['ratio']:.3f}")
        ratios = [p["ratio"] for p in pairs]
        median = statistics.median(ratios)
        base = statistics.median(p["without"]["acks_per_s"] for p in pairs)
        sampled = statistics.median(p["with"]["samples_per_s"] for p in pairs)
        print(f"sampler overhead ratio (with/without):  {spread(ratios)}")
        shifted = [p["ratio_next"] for p in pairs if p["ratio_next"] is not None]
        print(f"  drift check, each 'without' paired with the next 'with' instead: {spread(shifted)}")
        shares = [100 * p["with"]["cpu_share"] for p in pairs]
        print(f"  CPU share of the sampler (its requests priced at the server's CPU per request, plus its own "
              f"CPU) in the with-windows, %: {spread(shares)}")
        print(f"  cost {100 * (1 - median):+.1f} % of acknowledged writes/s (objective: at most 5 %); "
              f"the sampler sends {sampled:.1f} requests/s against the load's {base:.0f} acknowledged writes/s "
              f"({100 * sampled / base:.1f} % of the API's work)")

        if args.trials:
            rto_section(args, intervals, target, target_file, reports)

        if rewinds:
            print(f"RPO error vs ground truth (s): {stats(rpo_errors(target_file, reports, rewinds))}")
        scratch.cleanup()


def rto_section(args, intervals: list[float], target: dict, target_file: Path, reports: Path) -> None:
    print(f"== RTO against a {OUTAGE_S:g} s freeze of the whole API: {args.trials} trials per interval, interleaved")
    [planned] = runner.plan([CALIBRATION])
    # (label, planned run, keep-alive): the sampler now at each interval, and as it was at the first.
    variants = [(f"{i * 1000:.0f} ms", at_interval(planned, i), True) for i in intervals]
    variants.insert(1, (f"{intervals[0] * 1000:.0f} ms, as it was", variants[0][1], False))
    trials: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    for n in range(args.trials):
        for label, p, keep_alive in variants:
            r = rto_trial(p, target, target_file, reports, keep_alive=keep_alive)
            trials[label].append(r)
            if r["setup_s"] is None:
                print(f"trial {n + 1} @ {label}: {r['status']}, not counted: {r.get('reason')}", flush=True)
                continue
            rto = "none" if r["rto_s"] is None else f"{r['rto_s']:.3f} s"
            print(f"trial {n + 1} @ {label}: measured RTO {rto} ({r['status']}), error "
                  f"{_f(r['error_s'])} s = fault set-up {_f(r['setup_s'])} + hold overshoot {_f(r['held_over_s'])} "
                  f"+ service resume {_f(r['resume_s'])} + instrument {_f(r['bias_s'])}", flush=True)
    for label, rs in trials.items():
        errors = [r["error_s"] for r in rs if r["error_s"] is not None]
        if errors:
            print(f"RTO error vs ground truth @ {label} (s): {stats(errors)}")
        print(f"  medians @ {label}: fault set-up {_f(_med([r['setup_s'] for r in rs]))} s, "
              f"hold overshoot {_f(_med([r['held_over_s'] for r in rs]))} s, service resume (SIGCONT → the "
              f"witness answered for good) {_f(_med([r['resume_s'] for r in rs]))} s, instrument "
              f"(sampler − witness) {_f(_med([r['bias_s'] for r in rs]))} s")
    print(verdict_on_bias(trials))


def verdict_on_bias(trials: dict[str, list[dict]]) -> str:
    """Whose is the RTO error? Split at the medians into: the fault action's own set-up (the fault
    is stamped before its action runs, and SIGSTOP lands only after the action registered the
    resume in the fault ledger: counted in RTO by definition, but not downtime), the hold's
    overshoot, the service's real resume time (SIGCONT → first answer any client got, from the
    independent witness) and the sampler's bias (its RTO point − the witness's first answer)."""
    lines = []
    for label, rs in trials.items():
        parts = {"fault set-up (stamp → SIGSTOP)": _med([r["setup_s"] for r in rs]),
                 "hold overshoot": _med([r["held_over_s"] for r in rs]),
                 "service resume (SIGCONT → witness answers for good)": _med([r["resume_s"] for r in rs]),
                 "sampler bias (sampler − witness)": _med([r["bias_s"] for r in rs])}
        error = _med([r["error_s"] for r in rs])
        if error is None or any(v is None for v in parts.values()):
            lines.append(f"@ {label}: not enough trials with a witness to tell")
            continue
        largest = max(parts, key=lambda k: abs(parts[k]))
        lines.append(f"@ {label}: median error {error:+.3f} s ≈ " + " + ".join(f"{k} {v:+.3f}" for k, v in parts.items())
                     + f"; the largest part is the {largest}")
    return ("RTO error, whose (medians):\n  " + "\n  ".join(lines) + "\n  fault set-up: the harness stamps the fault "
            "start before the freeze lands (Chaos Toolkit starts the action, which finds the API's processes, registers "
            "the resume in the fault ledger and starts a detached reaper timer before SIGSTOP): counted in RTO by "
            "definition, not downtime. service resume: the service's own "
            "time to answer for good after SIGCONT (the independent witness's first answer after its last failure; "
            "a restart by the liveness checker that the freeze tripped counts here). sampler bias: what the sampler adds (its RTO point is "
            "a sample's arrival: the watcher's request, pending through the freeze on an accepted connection, or "
            "the first tick sent after the resume; a tick sent during the freeze that times out after that answer "
            "was overtaken and is dated when it was sent, so it no longer restarts the stability window).")


if __name__ == "__main__":
    main()
