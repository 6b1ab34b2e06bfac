"""Calibration faults: damage of exactly known extent, so a test can hold the measurement against
ground truth (never used in the monthly suite)."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness import history as history_mod, target as target_mod

__all__ = ["delete_acknowledged_rows"]


def delete_acknowledged_rows(count: int = 20, target: str | None = None, seed: int = 7) -> dict:
    """Delete `count` rows whose writes the API acknowledged in this run, behind the API's back
    (straight in the database). Returns the deleted keys: exactly what the loss checker must report
    as lost, and nothing else. Needs the run's history ($GAMEDAY_RUN_DIR, set by the runner)."""
    if not isinstance(count, int) or count <= 0:
        raise ActivityFailed(f"count must be a positive whole number, got {count!r}")
    run_dir = os.environ.get("GAMEDAY_RUN_DIR")
    if not run_dir:
        raise ActivityFailed("GAMEDAY_RUN_DIR is not set: run this through `gameday run`")
    acked = [e["key"] for e in history_mod.read(Path(run_dir) / "history.jsonl")
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
    return {"deleted": len(deleted_keys), "keys": deleted_keys}
