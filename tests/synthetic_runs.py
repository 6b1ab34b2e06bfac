"""Synthetic run dirs for the report layer's tests, its fixtures and bench/quarterly.py.

`make_run` writes what a real run leaves behind (history.jsonl, verdict.json, journal.json) for a
fault of known shape: health probes sampled every `sample_interval_s`, a load generator writing
uniquely keyed records (each acknowledgement with the digest of what it stored, read back
intact), an outage of `outage_s` starting at `fault_at_s` (None: never recovered),
the last `lost` acknowledged writes before the fault missing from the final read (a restore from
an older backup). `make_error_run` writes a run whose target was unhealthy before the fault.

The verdict is the real one: harness.checkers.verdict judges the synthetic history, so a report
drawn from the history always agrees with its verdict and there is one verdict author. Every
event is checked with harness.records.history.validate_event. Deterministic for a seed.

(tests/synthetic.py builds the short histories the checkers' own tests judge.)
"""
from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness.checkers.verdict import verdict as judge
from harness.records.history import validate_event
from harness.report.rundir import iso

__all__ = ["make_run", "make_error_run", "make_backup_record", "DEFAULT_OBJECTIVES"]

DEFAULT_OBJECTIVES = {  # bcp.yaml's defaults with database-failure's detection
    "rto_s": 900.0, "rpo_s": 300.0, "stability_s": 5.0, "timeout_s": 180.0, "max_lost_writes": 0,
    "critical_functions": ["ready", "optimize", "history"],
    "integrity_checks": ["amcheck", "models", "config"],
    "detection": {"alert": "SvgAiDatabaseDown", "max_latency_s": 30.0, "min_outage_s": 5.0},
}


class _History:
    """Events of one synthetic run, stamped with run time and the matching wall-clock time."""

    def __init__(self, started: datetime):
        self.started = started
        self.events: list[dict] = []

    def add(self, kind: str, t: float, **fields: Any) -> None:
        wall = iso(self.started + timedelta(seconds=t))
        self.events.append(validate_event({"kind": kind, "t": round(t, 6), "wall": wall, **fields}))

    def write(self, run_dir: Path) -> list[dict]:
        """history.jsonl, sorted by t as harness.records.history.read returns it; returns the sorted events."""
        self.events.sort(key=lambda e: e["t"])
        with open(run_dir / "history.jsonl", "w", encoding="utf-8") as f:
            for e in self.events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
        return self.events


def make_run(run_dir: str | Path, *, scenario: str = "database-failure", started: datetime | None = None,
             fault_name: str = "kill_postgres_primary", recovery_name: str | None = "restore_latest",
             duration_s: float = 120.0, fault_at_s: float = 30.0, fault_len_s: float = 1.0,
             outage_s: float | None = 25.0, lost: int = 0, unexpected: int = 0, in_doubt: int = 3,
             sample_interval_s: float = 0.5, write_rate: float = 4.0,
             probes: tuple[str, ...] = ("api", "ready"),
             detection_latency_s: float | None = 2.4, functions_ok: bool = True, integrity_ok: bool = True,
             objectives: dict | None = None, key_prefix: str = "req-", seed: int = 1,
             title: str | None = None) -> dict:
    """Write a synthetic run into run_dir; returns its verdict."""
    rnd = random.Random(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = started or datetime(2026, 11, 27, 3, 50, tzinfo=timezone.utc)
    obj = {**DEFAULT_OBJECTIVES, **(objectives or {})}
    never = outage_s is None
    outage_end = duration_s + 1 if never else fault_at_s + outage_s
    if not never:
        duration_s = max(duration_s, outage_end + obj["stability_s"] + 10)
    end_t = duration_s
    h = _History(started)

    h.add("marker", 0.2, name="steady_state", met=True, phase="before")
    _fault_and_recovery(h, scenario, fault_name, recovery_name, fault_at_s, fault_len_s, outage_s, outage_end)
    down = lambda t: fault_at_s <= t < outage_end  # noqa: E731
    _samples(h, rnd, probes, sample_interval_s, duration_s, down, None if never else outage_end)
    keys_ok, info_keys = _writes(h, rnd, key_prefix, write_rate, duration_s, down, in_doubt)

    before_fault = [k for k, t in keys_ok if t < fault_at_s]
    lost_set = set(before_fault[-lost:]) if lost else set()
    recovered = info_keys[: (len(info_keys) + 1) // 2]
    unexpected_keys = [f"{key_prefix}ghost-{i:03d}" for i in range(unexpected)]
    h.add("marker", end_t - 1.5, name="observe_end")
    kept = [k for k, _ in keys_ok if k not in lost_set]
    h.add("fingerprint", fault_at_s - 0.1, phase="before", ok=True, rows=400, taken_t=fault_at_s - 0.2,
          taken_epoch=started.timestamp() + fault_at_s - 0.2)
    # The heartbeat ledger: one acknowledged write a second, from a minute before the fault (the
    # witnesses every real run has, whenever its own load began).
    beats = [(f"hb-{i:04d}", round(fault_at_s - 60 + i, 3)) for i in range(int(end_t - fault_at_s + 58))]
    h.add("heartbeat", end_t - 1.1, acked=[[k, at, _digest(k)] for k, at in beats], window_s=600.0, ok=True)
    kept += [k for k, _ in beats]
    h.add("final_read", end_t - 1.0, keys=kept + recovered + unexpected_keys, ok=True,
          digests={k: _digest(k) for k in kept})
    h.add("fingerprint", end_t - 0.9, phase="after", ok=True, rows_before=400, rows_now=400 + len(kept), lost=0,
          lost_sample=[], lost_created_epoch=[], lost_created_complete=True, changed=0, changed_sample=[])
    _checks_after_recovery(h, end_t, obj, functions_ok, integrity_ok)
    if detection_latency_s is not None:
        h.add("detection", fault_at_s + detection_latency_s, alert=obj["detection"]["alert"], fired=True,
              latency_s=detection_latency_s, resolved=not never)
    h.add("marker", end_t - 0.3, name="steady_state", met=not never, phase="after")
    h.add("marker", end_t - 0.2, name="run_end")
    h.add("after_rollbacks", end_t - 0.1, steady_state={"met": not never, "detail": "synthetic"},
          read={"ok": True, "digests": {k: _digest(k) for k in kept}},
          fingerprint={"ok": True, "lost": 0, "changed": 0, "lost_sample": [], "changed_sample": []})
    events = h.write(run_dir)

    run = {"run_id": run_dir.name, "experiment": f"experiments/local/{scenario}.yaml",
           "title": title or f"{scenario.replace('-', ' ').capitalize()}: {fault_name} under load",
           "started": iso(started), "ended": iso(started + timedelta(seconds=end_t))}
    verdict = judge(events, {**obj, "scenario": scenario, "probe": probes[0]}, run)
    _dump(run_dir / "verdict.json", verdict)
    _dump(run_dir / "journal.json", _journal(verdict, fault_name, started, fault_at_s, fault_len_s, recovery_name,
                                             outage_end, started + timedelta(seconds=end_t)))
    return verdict


def make_error_run(run_dir: str | Path, *, scenario: str = "api-crash-all", started: datetime | None = None,
                   seed: int = 3) -> dict:
    """A run that stopped before its fault: the steady state was not met."""
    rnd = random.Random(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = started or datetime(2026, 11, 27, 4, 20, tzinfo=timezone.utc)
    h = _History(started)
    t = 0.5
    while t < 12:
        if t < 3:
            h.add("sample", round(t, 3), probe="api", ok=True, latency_s=round(rnd.uniform(0.01, 0.03), 4))
        else:
            h.add("sample", round(t, 3), probe="api", ok=False, latency_s=0.002, error="HTTP 503 from /ready")
        t += 0.5
    h.add("marker", 12.1, name="steady_state", met=False, phase="before")
    events = h.write(run_dir)
    ended = started + timedelta(seconds=12.5)
    run = {"run_id": run_dir.name, "experiment": f"experiments/local/{scenario}.yaml",
           "title": "API service crash: kill all replicas", "started": iso(started), "ended": iso(ended)}
    verdict = judge(events, {**DEFAULT_OBJECTIVES, "detection": None, "scenario": scenario, "probe": "api"}, run)
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
    """A weekly backup verification record, as `backup verify` leaves it beside the runs."""
    folder = Path(reports_dir) / "backup-verify"
    folder.mkdir(parents=True, exist_ok=True)
    backup_id = backup_id or f"db_backup_{wall:%Y%m%d_%H%M%S}"
    record = {"kind": "backup-verify", "wall": iso(wall), "backup_id": backup_id, "restore_s": restore_s,
              "newest_restorable_point": iso(wall - timedelta(seconds=age_s)), "age_s": age_s,
              "integrity_ok": integrity_ok, "detail": detail}
    path = folder / f"{wall:%Y%m%dT%H%M%SZ}-{backup_id}.json"
    _dump(path, record)
    return path


# Internals ------------------------------------------------------------------------------------

def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _digest(key: str) -> str:
    """Stands for harness.core.api_contract.stored_digest of the row a write stored."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _fault_and_recovery(h: _History, scenario: str, fault_name: str, recovery_name: str | None, fault_at_s: float,
                        fault_len_s: float, outage_s: float | None, outage_end: float) -> None:
    h.add("step", fault_at_s, phase="start", name=fault_name, section="method", index=1, type="action",
          provider="python", tags=["fault"])
    h.add("fault", fault_at_s, phase="start", name=fault_name, detail=f"{scenario}: injected by the experiment")
    h.add("step", fault_at_s + fault_len_s, phase="end", name=fault_name, section="method", index=1, ok=True)
    h.add("fault", fault_at_s + fault_len_s, phase="end", name=fault_name, ok=True)
    if recovery_name:
        if outage_s is None:  # the restore fails: never recovered
            rs, re, ok = fault_at_s + 5, fault_at_s + 65, False
        else:
            rs, ok = fault_at_s + min(5.0, outage_s / 3), True
            re = max(rs + 0.5, outage_end - 1.0)
        h.add("step", rs, phase="start", name=recovery_name, section="method", index=2, type="action",
              provider="python", tags=["recovery"])
        h.add("recovery", rs, phase="start", name=recovery_name)
        h.add("step", re, phase="end", name=recovery_name, section="method", index=2, ok=ok,
              **({} if ok else {"detail": "ActivityFailed: the restore did not complete"}))
        h.add("recovery", re, phase="end", name=recovery_name, ok=ok)


def _samples(h: _History, rnd: random.Random, probes: tuple[str, ...], interval_s: float, duration_s: float,
             down, outage_end: float | None) -> None:
    """Each probe sampled every interval_s: failures (some timing out) while down, slow for 6 s
    after recovery."""
    for pi, probe in enumerate(probes):
        t = 0.5 + pi * interval_s / len(probes)
        while t < duration_s:
            if down(t):
                lat = 2.0 if rnd.random() < 0.3 else round(rnd.uniform(0.001, 0.004), 4)
                h.add("sample", t, probe=probe, ok=False, latency_s=lat,
                      error="timeout after 2.0 s" if lat == 2.0 else "connection refused")
            else:
                slow = 1.0 + (4.0 if (outage_end is not None and 0 <= t - outage_end < 6) else 0.0)
                h.add("sample", t, probe=probe, ok=True, latency_s=round(rnd.uniform(0.008, 0.03) * slow * (pi + 1), 4))
            t += interval_s


def _writes(h: _History, rnd: random.Random, key_prefix: str, rate: float, duration_s: float, down,
            in_doubt: int) -> tuple[list[tuple[str, float]], list[str]]:
    """The load generator: one uniquely keyed write every 1/rate s, failing (a few in doubt)
    while down. Returns the acknowledged (key, t) and the in-doubt keys."""
    keys_ok: list[tuple[str, float]] = []
    info_keys: list[str] = []
    n, t = 0, 0.6
    while t < duration_s - 2:
        key = f"{key_prefix}{n:06d}"
        n += 1
        h.add("op", t, type="invoke", f="write", key=key, process=n % 4)
        if not down(t):
            done = t + rnd.uniform(0.005, 0.04)
            h.add("op", done, type="ok", f="write", key=key, process=n % 4, digest=_digest(key))
            keys_ok.append((key, done))
        elif len(info_keys) < in_doubt and rnd.random() < 0.2:
            h.add("op", t + 2.0, type="info", f="write", key=key, process=n % 4, error="timeout during commit")
            info_keys.append(key)
        else:
            h.add("op", t + 0.003, type="fail", f="write", key=key, process=n % 4, error="connection refused")
        t += 1.0 / rate
    return keys_ok, info_keys


def _checks_after_recovery(h: _History, end_t: float, obj: dict, functions_ok: bool, integrity_ok: bool) -> None:
    """Critical functions and integrity checks after recovery; the first of each fails when asked to."""
    for i, name in enumerate(obj["critical_functions"]):
        ok = functions_ok or i != 0
        h.add("function", round(end_t - 0.8 + i * 0.05, 6), name=name, ok=ok,
              detail="200 OK in 41 ms" if ok else "HTTP 503 from /api/v1/optimization/optimize")
    for i, name in enumerate(obj["integrity_checks"]):
        ok = integrity_ok or i != 0
        h.add("integrity", round(end_t - 0.5 + i * 0.05, 6), check=name, ok=ok,
              detail="clean" if ok else "bt_index_check: index \"optimization_results_pkey\" lacks a heap tuple")


def _journal(verdict: dict, fault_name: str, started: datetime, fault_at_s: float, fault_len_s: float,
             recovery_name: str | None, outage_end: float, ended: datetime) -> dict:
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
