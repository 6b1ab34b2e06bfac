"""Synthetic run dirs for tests, benchmarks and demos of the report layer.

`make_run` writes what a real run leaves behind (history.jsonl, verdict.json, journal.json) for a
fault of known shape: health probes sampled every `sample_interval_s`, a load generator writing
uniquely keyed records, an outage of `outage_s` starting at `fault_at_s` (None: never recovered),
the last `lost` acknowledged writes before the fault missing from the final read (a restore from
an older backup). The verdict is computed from those same numbers, following the definitions in
ARCHITECTURE.md, so a report drawn from the history agrees with it. Deterministic for a seed.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness.report.rundir import iso

__all__ = ["make_run", "make_error_run", "make_backup_record", "DEFAULT_OBJECTIVES"]

DEFAULT_OBJECTIVES = {  # bcp.yaml's defaults with database-failure's detection
    "rto_s": 900.0, "rpo_s": 300.0, "stability_s": 5.0, "timeout_s": 180.0, "max_lost_writes": 0,
    "critical_functions": ["ready", "optimize", "history"],
    "integrity_checks": ["amcheck", "models", "config"],
    "detection": {"alert": "SvgAiDatabaseDown", "max_latency_s": 30.0, "min_outage_s": 5.0},
}


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def make_run(run_dir: str | Path, *, scenario: str = "database-failure", started: datetime | None = None,
             fault_name: str = "kill_postgres_primary", recovery_name: str | None = "restore_latest",
             duration_s: float = 120.0, fault_at_s: float = 30.0, fault_len_s: float = 1.0,
             outage_s: float | None = 25.0, lost: int = 0, unexpected: int = 0, in_doubt: int = 3,
             sample_interval_s: float = 0.5, write_rate: float = 4.0,
             probes: tuple[str, ...] = ("api", "ready"),
             detection_latency_s: float | None = 2.4, functions_ok: bool = True, integrity_ok: bool = True,
             objectives: dict | None = None, key_prefix: str = "req-", seed: int = 1,
             title: str | None = None, target: str = "local reference stack", judge=None) -> dict:
    """Write a synthetic run into run_dir; returns its verdict.

    judge: optional callable(events, objectives, run_info) -> verdict (e.g. the real
    harness.checkers.verdict.verdict) used instead of this module's own arithmetic."""
    rnd = random.Random(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = started or datetime(2026, 11, 27, 3, 50, tzinfo=timezone.utc)
    obj = {**DEFAULT_OBJECTIVES, **(objectives or {})}
    stability = obj["stability_s"]
    never = outage_s is None
    outage_end = duration_s + 1 if never else fault_at_s + outage_s
    if not never:
        duration_s = max(duration_s, outage_end + stability + 10)
    events: list[dict] = []

    def ev(kind: str, t: float, **fields: Any) -> None:
        events.append({"kind": kind, "t": round(t, 6), "wall": iso(started + timedelta(seconds=t)), **fields})

    ev("marker", 0.2, name="steady_state", met=True, phase="before")
    ev("fault", fault_at_s, phase="start", name=fault_name, detail=f"{scenario}: injected by the experiment")
    ev("fault", fault_at_s + fault_len_s, phase="end", name=fault_name, ok=True)
    if recovery_name and not never:
        rs = fault_at_s + min(5.0, outage_s / 3)
        ev("recovery", rs, phase="start", name=recovery_name)
        ev("recovery", max(rs + 0.5, outage_end - 1.0), phase="end", name=recovery_name, ok=True)
    elif recovery_name:
        ev("recovery", fault_at_s + 5, phase="start", name=recovery_name)
        ev("recovery", fault_at_s + 65, phase="end", name=recovery_name, ok=False)

    down = lambda t: fault_at_s <= t < outage_end  # noqa: E731
    failed_samples = 0
    for pi, probe in enumerate(probes):
        t = 0.5 + pi * sample_interval_s / len(probes)
        while t < duration_s:
            if down(t):
                failed_samples += 1
                lat = 2.0 if rnd.random() < 0.3 else round(rnd.uniform(0.001, 0.004), 4)
                ev("sample", t, probe=probe, ok=False, latency_s=lat,
                   error="timeout after 2.0 s" if lat == 2.0 else "connection refused")
            else:
                slow = 1.0 + (4.0 if (not never and 0 <= t - outage_end < 6) else 0.0)
                ev("sample", t, probe=probe, ok=True, latency_s=round(rnd.uniform(0.008, 0.03) * slow * (pi + 1), 4))
            t += sample_interval_s

    keys_ok: list[tuple[str, float]] = []
    info_keys: list[str] = []
    failed = 0
    n = 0
    t = 0.6
    while t < duration_s - 2:
        key = f"{key_prefix}{n:06d}"
        n += 1
        ev("op", t, type="invoke", f="write", key=key, process=n % 4)
        if down(t):
            if len(info_keys) < in_doubt and rnd.random() < 0.2:
                ev("op", t + 2.0, type="info", f="write", key=key, process=n % 4, error="timeout during commit")
                info_keys.append(key)
            else:
                ev("op", t + 0.003, type="fail", f="write", key=key, process=n % 4, error="connection refused")
                failed += 1
        else:
            done = t + rnd.uniform(0.005, 0.04)
            ev("op", done, type="ok", f="write", key=key, process=n % 4)
            keys_ok.append((key, done))
        t += 1.0 / write_rate

    before_fault = [k for k in keys_ok if k[1] < fault_at_s]
    lost_pairs = before_fault[-lost:] if lost else []
    lost_set = {k for k, _ in lost_pairs}
    recovered = info_keys[: (len(info_keys) + 1) // 2]
    unexpected_keys = [f"{key_prefix}ghost-{i:03d}" for i in range(unexpected)]
    final_keys = [k for k, _ in keys_ok if k not in lost_set] + recovered + unexpected_keys
    end_t = duration_s
    ev("marker", end_t - 1.5, name="observe_end")
    ev("final_read", end_t - 1.0, keys=final_keys, ok=True)
    function_names = obj["critical_functions"]
    functions = {}
    for i, name in enumerate(function_names):
        ok = functions_ok or i != 0
        detail = "200 OK in 41 ms" if ok else "HTTP 503 from /api/v1/optimization/optimize"
        t_check = round(end_t - 0.8 + i * 0.05, 6)
        functions[name] = {"ok": ok, "detail": detail, "t": t_check}
        ev("function", t_check, name=name, ok=ok, detail=detail)
    integrity = {}
    for i, name in enumerate(obj["integrity_checks"]):
        ok = integrity_ok or i != 0
        detail = "clean" if ok else "bt_index_check: index \"optimization_results_pkey\" lacks a heap tuple"
        t_check = round(end_t - 0.5 + i * 0.05, 6)
        integrity[name] = {"ok": ok, "detail": detail, "t": t_check}
        ev("integrity", t_check, check=name, ok=ok, detail=detail)
    detected = detection_latency_s is not None
    if detected:
        ev("detection", fault_at_s + detection_latency_s, alert=obj["detection"]["alert"], fired=True,
           latency_s=detection_latency_s, resolved=not never)
    ev("marker", end_t - 0.2, name="run_end")
    events.sort(key=lambda e: e["t"])
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")

    # The verdict, by the definitions the checkers implement.
    rto = None if never else round(outage_end - fault_at_s + rnd.uniform(0.0, sample_interval_s), 3)
    recovered_at = None if never else round(fault_at_s + rto, 3)
    rpo = round(fault_at_s - lost_pairs[0][1], 3) if lost_pairs else 0.0
    window = ({"earliest_t": round(lost_pairs[0][1] - fault_at_s, 6), "latest_t": round(lost_pairs[-1][1] - fault_at_s, 6),
               "earliest_ack_t": round(lost_pairs[0][1], 6), "latest_ack_t": round(lost_pairs[-1][1], 6)}
              if lost_pairs else None)
    total_samples = sum(1 for e in events if e["kind"] == "sample")
    downtime = (duration_s - fault_at_s) if never else outage_s
    crit = []
    crit.append({"name": "rto", "passed": rto is not None and rto <= obj["rto_s"], "measured": rto,
                 "objective": obj["rto_s"],
                 "detail": (f"service stable again {rto:.1f} s after the fault started" if rto is not None else
                            f"service never stable for {stability:g} s before the {obj['timeout_s']:g} s timeout")})
    rpo_ok = rpo <= obj["rpo_s"] and len(lost_pairs) <= obj["max_lost_writes"]
    crit.append({"name": "rpo", "passed": rpo_ok, "measured": rpo, "objective": obj["rpo_s"],
                 "detail": (f"{len(lost_pairs)} acknowledged writes lost, reaching {rpo:.1f} s before the fault"
                            if lost_pairs else "no acknowledged write lost")})
    bad_f = [k for k, v in functions.items() if not v["ok"]]
    crit.append({"name": "critical_functions", "passed": not bad_f, "measured": {k: v["ok"] for k, v in functions.items()},
                 "objective": function_names,
                 "detail": "all critical functions pass after recovery" if not bad_f else f"failing: {', '.join(bad_f)}"})
    bad_i = [k for k, v in integrity.items() if not v["ok"]]
    crit.append({"name": "data_integrity", "passed": not bad_i and not unexpected_keys,
                 "measured": {k: v["ok"] for k, v in integrity.items()}, "objective": obj["integrity_checks"],
                 "detail": "all integrity checks clean" if not bad_i and not unexpected_keys else
                 f"failed: {', '.join(bad_i + (['unexpected records'] if unexpected_keys else []))}"})
    det_obj = obj.get("detection")
    if det_obj:
        det_ok = detected and detection_latency_s <= det_obj["max_latency_s"]
        crit.append({"name": "detection", "passed": det_ok, "measured": detection_latency_s, "objective": det_obj,
                     "detail": (f"{det_obj['alert']} fired {detection_latency_s:.1f} s after the fault" if detected
                                else f"{det_obj['alert']} never fired")})
    passed = all(c["passed"] for c in crit)
    failing = [c["name"] for c in crit if not c["passed"]]
    ended = started + timedelta(seconds=end_t)
    verdict = {
        "scenario": scenario,
        "status": "pass" if passed else "fail",
        "reason": "all criteria passed" if passed else f"criteria not met: {', '.join(failing)}",
        "run_id": run_dir.name,
        "experiment": f"experiments/local/{scenario}.yaml",
        "title": title or f"{scenario.replace('-', ' ').capitalize()}: {fault_name} under load",
        "target": target,
        "started": iso(started),
        "ended": iso(ended),
        "objectives": obj,
        "measured": {
            "rto_s": rto, "ttd_s": round(sample_interval_s / 2, 3), "rpo_s": rpo,
            "downtime_s": round(downtime, 3), "error_count": failed_samples,
            "availability_pct": round(100.0 * (total_samples - failed_samples) / max(total_samples, 1), 3),
            "acked_writes": len(keys_ok), "lost_writes": len(lost_pairs), "unexpected_writes": len(unexpected_keys),
            "recovered_writes": len(recovered), "duplicate_writes": 0, "failed_writes": failed,
            "in_doubt_writes": len(info_keys), "detection_latency_s": detection_latency_s,
            "fault_start_t": fault_at_s, "fault_end_t": fault_at_s + fault_len_s, "recovered_at_t": recovered_at,
        },
        "criteria": crit,
        "loss": {"known": True, "error": None, "lost_keys": sorted(k for k, _ in lost_pairs)[:50],
                 "unexpected_keys": unexpected_keys[:50],
                 "recovered_keys": recovered[:50], "duplicate_keys": [], "loss_window": window},
        "integrity": {"checks": integrity, "all_ok": not bad_i, "failed": bad_i},
        "functions": {"checks": functions, "all_ok": not bad_f, "failed": bad_f},
        "flags": ([] if not info_keys else [f"{len(info_keys)} writes in doubt (info): counted as neither lost nor acked"])
        + (["never recovered: RTO unbounded"] if never else []),
    }
    if judge is not None:
        verdict = judge(events, {**obj, "scenario": scenario, "probe": probes[0]},
                        {k: verdict[k] for k in ("run_id", "experiment", "title", "started", "ended")})
    _dump(run_dir / "verdict.json", verdict)
    _dump(run_dir / "journal.json", _journal(verdict, fault_name, started, fault_at_s, fault_len_s, recovery_name, outage_end, ended))
    return verdict


def make_error_run(run_dir: str | Path, *, scenario: str = "api-crash-all", started: datetime | None = None,
                   reason: str = "target not healthy before fault: the steady-state hypothesis did not hold, "
                                 "so nothing was tested", seed: int = 3, judge=None) -> dict:
    """A run that stopped before its fault: the steady state was not met."""
    rnd = random.Random(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = started or datetime(2026, 11, 27, 4, 20, tzinfo=timezone.utc)
    lines = []
    t = 0.5
    while t < 12:
        ok = t < 3
        lines.append({"kind": "sample", "t": round(t, 3), "wall": iso(started + timedelta(seconds=t)),
                      "probe": "api", "ok": ok, "latency_s": round(rnd.uniform(0.01, 0.03), 4) if ok else 0.002,
                      **({} if ok else {"error": "HTTP 503 from /ready"})})
        t += 0.5
    lines.append({"kind": "marker", "t": 12.1, "wall": iso(started + timedelta(seconds=12.1)), "name": "steady_state",
                  "met": False, "phase": "before"})
    with open(run_dir / "history.jsonl", "w", encoding="utf-8") as f:
        for e in lines:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
    ended = started + timedelta(seconds=12.5)
    verdict = {
        "scenario": scenario, "status": "error", "reason": reason, "run_id": run_dir.name,
        "experiment": f"experiments/local/{scenario}.yaml", "title": "API service crash: kill all replicas",
        "target": "local reference stack", "started": iso(started), "ended": iso(ended),
        "objectives": {**DEFAULT_OBJECTIVES, "detection": None},
        "measured": {k: None for k in ("rto_s", "ttd_s", "rpo_s", "downtime_s", "availability_pct",
                                       "detection_latency_s", "fault_start_t", "fault_end_t", "recovered_at_t")}
        | {"error_count": 18, "acked_writes": 0, "lost_writes": 0, "unexpected_writes": 0, "recovered_writes": 0,
           "duplicate_writes": 0, "failed_writes": 0, "in_doubt_writes": 0},
        "criteria": [  # computed as far as possible, as the checkers do for a run that proves nothing
            {"name": "rto", "passed": False, "measured": None, "objective": DEFAULT_OBJECTIVES["rto_s"],
             "detail": "cannot measure RTO: no fault start in the history"},
            {"name": "rpo", "passed": False, "measured": None, "objective": DEFAULT_OBJECTIVES["rpo_s"],
             "detail": "no final read: loss unknown"},
            {"name": "critical_functions", "passed": False,
             "measured": {n: None for n in DEFAULT_OBJECTIVES["critical_functions"]},
             "objective": DEFAULT_OBJECTIVES["critical_functions"],
             "detail": "critical functions not restored: "
                       + "; ".join(f"{n} never checked after the fault" for n in DEFAULT_OBJECTIVES["critical_functions"])},
            {"name": "data_integrity", "passed": False,
             "measured": {n: None for n in DEFAULT_OBJECTIVES["integrity_checks"]},
             "objective": DEFAULT_OBJECTIVES["integrity_checks"],
             "detail": "data integrity not verified: "
                       + "; ".join(f"{n} never checked after the fault" for n in DEFAULT_OBJECTIVES["integrity_checks"])},
        ],
        "loss": {"known": False, "error": "no final read", "lost_keys": [], "unexpected_keys": [], "recovered_keys": [], "duplicate_keys": [],
                 "loss_window": None},
        "integrity": {"checks": {}, "all_ok": False, "failed": []},
        "functions": {"checks": {}, "all_ok": False, "failed": []},
        "flags": ["loss unknown: no final read"],
    }
    if judge is not None:
        verdict = judge(lines, {**verdict["objectives"], "scenario": scenario, "probe": "api"},
                        {k: verdict[k] for k in ("run_id", "experiment", "title", "started", "ended")})
    _dump(run_dir / "verdict.json", verdict)
    journal = {"chaoslib-version": "1.44.0", "platform": "Linux", "node": "gameday-host",
               "experiment": {"title": verdict["title"], "description": "Kill every API replica under load."},
               "start": iso(started)[:-1], "end": iso(ended)[:-1], "status": "completed", "deviated": False,
               "steady_states": {"before": {"steady_state_met": False, "probes": []}, "after": None, "during": []},
               "run": [], "rollbacks": [], "duration": 12.5}
    _dump(run_dir / "journal.json", journal)
    return verdict


def make_backup_record(reports_dir: str | Path, wall: datetime, *, backup_id: str | None = None,
                       restore_s: float = 41.7, age_s: float = 212.0, integrity_ok: bool = True,
                       detail: str = "restored into a scratch cluster; amcheck clean") -> Path:
    folder = Path(reports_dir) / "backup-verify"
    folder.mkdir(parents=True, exist_ok=True)
    backup_id = backup_id or f"db_backup_{wall:%Y%m%d_%H%M%S}"
    record = {"kind": "backup-verify", "wall": iso(wall), "backup_id": backup_id, "restore_s": restore_s,
              "newest_restorable_point": iso(wall - timedelta(seconds=age_s)), "age_s": age_s,
              "integrity_ok": integrity_ok, "detail": detail}
    path = folder / f"{wall:%Y%m%dT%H%M%SZ}-{backup_id}.json"
    _dump(path, record)
    return path


def _journal(verdict: dict, fault_name: str, started: datetime, fault_at_s: float, fault_len_s: float, recovery_name: str | None,
             outage_end: float, ended: datetime) -> dict:
    def at(s: float) -> str:
        return iso(started + timedelta(seconds=s))[:-1]  # Chaos Toolkit writes naive UTC times

    run = [{"activity": {"type": "action", "name": fault_name.replace("_", "-"),
                         "tags": ["fault"], "provider": {"type": "python", "module": "harness.faults"}},
            "output": None, "status": "succeeded", "start": at(fault_at_s), "end": at(fault_at_s + fault_len_s),
            "duration": fault_len_s}]
    if recovery_name:
        rec_ok = verdict["measured"]["rto_s"] is not None
        run.append({"activity": {"type": "action", "name": recovery_name.replace("_", "-"), "tags": ["recovery"],
                                 "provider": {"type": "python", "module": "harness.recovery"}},
                    "output": None, "status": "succeeded" if rec_ok else "failed",
                    "start": at(fault_at_s + 5), "end": at(min(outage_end, fault_at_s + 65)),
                    "duration": round(min(outage_end, fault_at_s + 65) - fault_at_s - 5, 3)})
    return {"chaoslib-version": "1.44.0", "platform": "Linux", "node": "gameday-host",
            "experiment": {"title": verdict["title"], "description": f"BCP scenario {verdict['scenario']}",
                           "extensions": [{"name": "bcp", "scenario": verdict["scenario"]}]},
            "start": at(0), "end": ended.isoformat()[:-6], "status": "completed", "deviated": False,
            "steady_states": {"before": {"steady_state_met": True}, "after": {"steady_state_met": True}, "during": []},
            "run": run, "rollbacks": [], "duration": (ended - started).total_seconds()}
