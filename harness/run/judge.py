"""The verdict of one run, decided once, by one author.

    judge(session)     the run's history + its resolved objectives → the verdict (status pass |
                       fail | error | interrupted, criteria with evidence); the session's owner
                       calls it once, after the run has ended and any interruption is recorded
                       in the history, and writes every artifact from what it returns
    rejudge(run_dir)   the same judgement recomputed from what a run left on disk (Jepsen's
                       re-analysis): (verdict now, differences from the stored verdict)

The judgement itself is harness.checkers.verdict, a pure function; this module only reads.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.checkers import verdict as compute_verdict
from harness.records.shards import run_events

__all__ = ["judge", "rejudge", "differences", "RUN_FIELDS"]

# The run's own fields a verdict carries; rejudge takes them from the stored verdict.
RUN_FIELDS = ("run_id", "experiment", "title", "started", "ended", "negative_control", "expect_failure",
              "calibration")


def judge(session) -> dict:
    """The verdict of a run session (harness.run.session.RunSession) from its history."""
    events = run_events(session.history.path)  # with distributed load's ledger shards merged
    return compute_verdict(events, session.objectives, session.info())


def rejudge(run_dir: str | os.PathLike) -> tuple[dict, list[str]]:
    """Recompute a run's verdict from its stored history.jsonl and the objectives recorded in its
    verdict.json. Raises HistoryError / ValueError naming the file when either cannot be read."""
    run_dir = Path(run_dir)
    stored = json.loads((run_dir / "verdict.json").read_text())
    if not isinstance(stored, dict) or not isinstance(stored.get("objectives"), dict):
        raise ValueError(f"{run_dir / 'verdict.json'}: holds no objectives to judge against")
    objectives = {"scenario": stored.get("scenario"), **stored["objectives"]}
    events = run_events(run_dir / "history.jsonl")
    fresh = compute_verdict(events, objectives, {k: stored.get(k) for k in RUN_FIELDS})
    return fresh, differences(stored, fresh)


def differences(old: dict, new: dict) -> list[str]:
    """One line per figure or criterion that differs between two verdicts of the same run."""
    out = []
    if old.get("status") != new.get("status"):
        out.append(f"status: {old.get('status')} -> {new.get('status')}")
    old_m, new_m = old.get("measured") or {}, new.get("measured") or {}
    for key in sorted(set(old_m) | set(new_m)):
        if not _same(old_m.get(key), new_m.get(key)):
            out.append(f"measured.{key}: {old_m.get(key)!r} -> {new_m.get(key)!r}")
    old_c = {c.get("name"): c for c in old.get("criteria") or [] if isinstance(c, dict)}
    new_c = {c.get("name"): c for c in new.get("criteria") or [] if isinstance(c, dict)}
    for name in list(dict.fromkeys([*old_c, *new_c])):
        a, b = old_c.get(name), new_c.get(name)
        if a is None or b is None:
            out.append(f"criterion {name}: {'added' if a is None else 'gone'}")
        elif a.get("passed") != b.get("passed"):
            out.append(f"criterion {name}: {'passed' if a.get('passed') else 'failed'} -> "
                       f"{'passed' if b.get('passed') else 'failed'} ({b.get('detail')})")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) < 1e-6
    return a == b
