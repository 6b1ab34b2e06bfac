"""Calibration faults: damage of exactly known extent, so a test can hold the measurement against
ground truth (never used in the monthly suite)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness import target as target_mod
from harness.ledger_shards import run_events

__all__ = ["delete_acknowledged_rows"]

# harness.session.SESSION_KEY: the run session sits above the faults, so its key is named here,
# not imported. Chaos Toolkit hands the configuration to an activity that takes `configuration`.
RUN_SESSION_KEY = "gameday_session"


def delete_acknowledged_rows(count: int = 20, target: str | None = None, seed: int = 7,
                             configuration: dict | None = None) -> dict:
    """Delete `count` rows whose writes the API acknowledged in this run, behind the API's back
    (straight in the database). Returns the deleted keys: exactly what the loss checker must report
    as lost, and nothing else. Needs the run's history: the run session that harness.control
    keeps in the Chaos Toolkit configuration (`gameday run`, or `chaos run` with the control)."""
    if not isinstance(count, int) or count <= 0:
        raise ActivityFailed(f"count must be a positive whole number, got {count!r}")
    run_dir = getattr((configuration or {}).get(RUN_SESSION_KEY), "run_dir", None)
    if not run_dir:
        raise ActivityFailed(f"no run session in the configuration ({RUN_SESSION_KEY}): run this experiment "
                             f"with harness.control in its controls, through `gameday run`")
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
