"""The next command heals and tells: what a harness that died (SIGKILL, OOM, a cancelled CI job)
left behind is undone, reported in one line each, and its abandoned run gets its verdict.

    heal(home)   → lines such as "undid hold:postgres-primary left by run 2026…-database-failure-1a2b
                   (removed …/holds/postgres-primary)"

Called first by `gameday run`, `gameday target up` and `gameday target status`. Entries whose
harness still runs and whose lease has not passed are left alone: that run is still going.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from harness.records import fault_ledger, history as history_mod
from harness.checkers import verdict as compute_verdict
from harness.run.evidence import seal
from harness.run.judge import RUN_FIELDS
from harness.targets import reaper

__all__ = ["heal", "close_abandoned_run"]


def heal(home: str | os.PathLike) -> list[str]:
    """Undo every expired or orphaned ledger entry of this stack home that can be undone without
    the stack (a cold start is left to `target up`), close each abandoned run, say what was done."""
    if not Path(home).is_dir():
        return []
    lines, runs = [], {}
    reaper.reap(home, also_orphaned=True, by="this command")
    # Everything undone since the last command, by the stack's reaper, a detached timer or just now.
    for entry in fault_ledger.settled(home):
        run = entry.get("run_dir")
        lines.append(f"undid {entry.get('what')} left by run {Path(run).name if run else 'unknown'} "
                     f"({entry.get('result')}; by {entry.get('undone_by')})")
        fault_ledger.forget_settled(home, entry["id"])
        if run:
            runs[run] = entry
    for entry in fault_ledger.entries(home):  # orphaned cold starts: `target up` does them
        if entry.get("undo", {}).get("kind") == "cold_start" and fault_ledger.orphaned(entry):
            lines.append(f"{entry.get('what')} left by run {Path(entry.get('run_dir') or 'unknown').name}: "
                         f"the stack needs a cold start ('gameday target up')")
            if entry.get("run_dir"):
                runs[entry["run_dir"]] = entry
    for run, entry in runs.items():
        reason = (f"the harness (pid {entry.get('harness_pid')}) died during the run; "
                  f"its faults were undone afterwards by the fault ledger")
        closed = close_abandoned_run(Path(run), reason, home=home)
        if closed:
            lines.append(f"run {Path(run).name}: verdict INTERRUPTED written ({closed})")
    return lines


def close_abandoned_run(run_dir: Path, reason: str, home: str | os.PathLike | None = None) -> str | None:
    """Give a run folder with no verdict its `interrupted` verdict, judged from its history and the
    plan it recorded at the start (session.json), sealed with the home's key (or
    $GAMEDAY_SIGNING_KEY). Returns where it was written, or None."""
    if (run_dir / "verdict.json").exists() or not (run_dir / "session.json").is_file():
        return None
    plan = json.loads((run_dir / "session.json").read_text())
    with history_mod.History(run_dir / "history.jsonl", t0=0.0) as h:
        # t0=0: the marker's t is not comparable to the run's clock, so give it the last event's t.
        events = history_mod.read(run_dir / "history.jsonl")
        last_t = events[-1]["t"] if events else 0.0
        h.append("marker", t=last_t, name="interrupted", signal="SIGKILL or crash", detail=reason)
    events = history_mod.read(run_dir / "history.jsonl")
    v = compute_verdict(events, plan["objectives"], {k: plan.get(k) for k in RUN_FIELDS})
    v["reason"] = f"{reason}; {v['reason']}"
    (run_dir / "verdict.json").write_text(json.dumps(v, indent=2, default=str) + "\n")
    seal(run_dir, home=home)  # a run that cannot be signed says why in seal-error.txt
    return str(run_dir / "verdict.json")
