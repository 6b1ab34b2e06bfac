"""Calibration faults: damage of exactly known extent, so a test can hold the measurement against
ground truth (never used in the monthly suite)."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.core.run_context import run_context
from harness.records.shards import run_events
from harness.targets import description as target_mod

__all__ = ["delete_acknowledged_rows", "delete_rows_acknowledged_after_the_fault"]


def delete_acknowledged_rows(count: int = 20, target: str | None = None, seed: int = 7,
                             configuration: dict | None = None) -> dict:
    """Delete `count` rows whose writes the API acknowledged in this run, behind the API's back
    (straight in the database). Returns the deleted keys: exactly what the loss checker must report
    as lost, and nothing else. Needs the run's history: the run session that harness.run.control
    keeps in the Chaos Toolkit configuration (`gameday run`, or `chaos run` with the control)."""
    if not isinstance(count, int) or count <= 0:
        raise ActivityFailed(f"count must be a positive whole number, got {count!r}")
    run_dir = _run_dir(configuration)
    # The history and, with distributed load, the workers' ledger shards.
    acked = [e["key"] for e in run_events(Path(run_dir) / "history.jsonl")
             if e["kind"] == "op" and e["type"] == "ok" and e.get("f") == "write"]
    if len(acked) < count:
        raise ActivityFailed(f"only {len(acked)} acknowledged writes so far, fewer than count={count}")
    keys = sorted(random.Random(seed).sample(acked, count))
    t = target_mod.load(target)
    with psycopg.connect(t["app_dsn"], autocommit=True) as c:
        deleted = c.execute("delete from optimization_results where request_id = any(%s) returning request_id",
                            (keys,)).fetchall()
    deleted_keys = sorted(r[0] for r in deleted)
    (Path(run_dir) / "ground-truth-deleted.json").write_text(json.dumps(deleted_keys) + "\n")
    return {"deleted": len(deleted_keys), "keys": deleted_keys,
            "effect": {"observed": len(deleted_keys) == count,
                       "detail": f"{len(deleted_keys)} of {count} acknowledged rows deleted"}}


def delete_rows_acknowledged_after_the_fault(seconds: float = 5.0, target: str | None = None,
                                            configuration: dict | None = None) -> dict:
    """Let the load write for `seconds` after this fault started, then delete, behind the API's
    back, every row of this run acknowledged since: a split brain's loss of exactly known extent.
    Writes `ground-truth-deleted-after.json` in the run folder: the keys, and the span of
    acknowledged time they cover (the fault start to the last of them)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 60:
        raise ActivityFailed(f"seconds must be above 0 and at most 60, got {seconds!r}")
    run_dir = _run_dir(configuration)
    time.sleep(seconds)
    events = run_events(Path(run_dir) / "history.jsonl")
    fault_t = max(e["t"] for e in events if e["kind"] == "fault" and e.get("phase") == "start")
    acked = {e["key"]: e["t"] for e in events
             if e["kind"] == "op" and e["type"] == "ok" and e.get("f") == "write" and e["t"] > fault_t}
    if not acked:
        raise ActivityFailed(f"no write was acknowledged in the {seconds:g} s after the fault")
    t = target_mod.load(target)
    with psycopg.connect(t["app_dsn"], autocommit=True) as c:
        deleted = c.execute("delete from optimization_results where request_id = any(%s) returning request_id",
                            (sorted(acked),)).fetchall()
    keys = sorted(r[0] for r in deleted)
    span = max(acked[k] for k in keys) - fault_t if keys else 0.0
    (Path(run_dir) / "ground-truth-deleted-after.json").write_text(json.dumps({"keys": keys, "span_s": span}) + "\n")
    return {"deleted": len(keys), "span_s": round(span, 6),
            "effect": {"observed": len(keys) == len(acked),
                       "detail": f"{len(keys)} rows acknowledged in the {span:.3f} s after the fault deleted"}}


# Internals ---------------------------------------------------------------------------------

def _run_dir(configuration: dict | None) -> Path:
    run = run_context(configuration)
    if run is None:
        raise ActivityFailed("no run session in the configuration: run this experiment with harness.run.control "
                             "in its controls, through `gameday run` or `chaos run`")
    return Path(run.run_dir)
