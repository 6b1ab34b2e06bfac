"""Findings, followed to closure: what a failed or erred run revealed, the corrective action
recorded against it, and the retest that closes it.

A finding is opened by a run of the plan's scenarios that failed a criterion (one finding per
criterion: RTO and RPO may need different corrective actions) or erred (criterion `error`: the run
reached no verdict, so the scenario was not tested). While it is open, the same criterion failing
again in the same scenario is a recurrence of it, not a new finding. It closes only when both hold:
a corrective action was recorded (`gameday findings close ID --action TEXT --owner NAME`), and a
later run of the same scenario, started after that action, passed: the retest, whose run id the
finding keeps. Negative controls (they must fail), the day's calibration and interrupted runs (an
operator's stop, not a result) open nothing.

Where they live: beside the reports, in `<reports>/findings/`. Findings are evidence about the
plan, made of other evidence: the runs that opened and closed them are in the same reports folder,
named by relative path, and move with it when it is archived or handed to an auditor; the
quarterly manifest lists the corrective actions with the runs and its signature covers them. A
stack home is the wrong place: it belongs to one machine's stack (CI's is thrown away after each
job) while one reports folder collects the runs of every home.

What is stored is only what people say: `actions.jsonl`, one corrective action a line (finding,
action, owner, when), signed after every addition (`actions.jsonl.sig`). Everything else is
computed from the runs' verdicts by `findings_of`, a pure function, so a finding can never
disagree with the runs it names, and the register (`register.json`, rewritten whenever findings
are computed) is a convenience for tools, never a source.

    collect(reports_dir)                   → every run's facts (verdicts only)
    findings_of(runs, actions, now)        → the findings, oldest first (pure)
    load_actions(reports_dir)              → the corrective actions recorded
    record_action(reports_dir, finding, action, owner, key)   appends one and signs the file
    findings(reports_dir, now)             → collect + load_actions + findings_of, register written
    quarter_findings(findings, start, end, now) → opened, closed and still open in a quarter
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from harness.core import signing
from harness.report.page import status_of
from harness.report.rundir import criteria_of, dump_json, find_run_dirs, iso, load_verdict, parse_time, rel_path

__all__ = ["FINDINGS_DIR", "ACTIONS", "REGISTER", "run_facts", "collect", "findings_of", "load_actions",
           "record_action", "findings", "quarter_findings", "FindingError"]

FINDINGS_DIR = "findings"
ACTIONS = "actions.jsonl"
REGISTER = "register.json"
ERROR_CRITERION = "error"


class FindingError(ValueError):
    """A corrective action that cannot be recorded: one line naming the finding and why."""


def run_facts(verdict: dict, path: str) -> dict | None:
    """What findings need of one run (None for a run without a readable start)."""
    started = parse_time(verdict.get("started"))
    if started is None:
        return None
    status = status_of(verdict)
    failed = [{"criterion": str(c.get("name")), "measured": c.get("measured"), "objective": c.get("objective"),
               "detail": str(c.get("detail") or "")}
              for c in criteria_of(verdict) if c.get("passed") is False] if status == "fail" else []
    if status == "error":
        failed = [{"criterion": ERROR_CRITERION, "measured": str(verdict.get("reason") or "no verdict"),
                   "objective": "a run that reaches its verdict", "detail": str(verdict.get("reason") or "")}]
    return {"run_id": str(verdict.get("run_id") or Path(path).name), "path": path, "started": iso(started),
            "scenario": str(verdict.get("scenario") or "unknown"), "status": status, "failed": failed,
            "counts": not (verdict.get("negative_control") or verdict.get("calibration"))}


def collect(reports_dir: str | os.PathLike) -> list[dict]:
    """Every run's facts under `reports_dir` (verdicts only), unreadable runs left out."""
    out = []
    for d in find_run_dirs(reports_dir):
        verdict, problem = load_verdict(d)
        facts = None if problem else run_facts(verdict, rel_path(d, reports_dir))
        if facts:
            out.append(facts)
    return out


def findings_of(runs: list[dict], actions: list[dict], now: datetime) -> list[dict]:
    """The findings the runs opened, with their corrective actions and retests (a pure function
    of its arguments). Each: id, scenario, criterion, measured, objective, detail, opened (time),
    opened_by (run id and path), recurrences, actions, status open | awaiting retest | closed,
    closed, retest (run id and path), age_s (to its closing, or to `now`)."""
    events = [(parse_time(r["started"]), 1, r) for r in runs if r["counts"] and r["status"] in ("pass", "fail", "error")]
    events += [(parse_time(a.get("wall")), 0, a) for a in actions if parse_time(a.get("wall"))]
    events.sort(key=lambda e: (e[0], e[1]))
    found: dict[str, dict] = {}
    open_by_key: dict[tuple[str, str], dict] = {}
    for when, is_run, item in events:
        if not is_run:
            f = found.get(str(item.get("finding")))
            if f is not None and f["status"] != "closed":
                f["actions"].append({k: item.get(k) for k in ("action", "owner", "wall")})
                f["status"] = "awaiting retest"
            continue
        run = item
        if run["status"] == "pass":
            for key, f in list(open_by_key.items()):
                if key[0] == run["scenario"] and f["actions"] and parse_time(f["actions"][-1]["wall"]) <= when:
                    f.update(status="closed", closed=run["started"], retest={"run_id": run["run_id"], "path": run["path"]})
                    del open_by_key[key]
            continue
        for c in run["failed"]:
            key = (run["scenario"], c["criterion"])
            if key in open_by_key:
                open_by_key[key]["recurrences"].append({"run_id": run["run_id"], "path": run["path"],
                                                        "started": run["started"], "measured": c["measured"]})
                continue
            fid = "F-" + hashlib.sha256(f"{run['run_id']}:{c['criterion']}".encode()).hexdigest()[:8]
            f = {"id": fid, "scenario": run["scenario"], **c, "opened": run["started"],
                 "opened_by": {"run_id": run["run_id"], "path": run["path"], "status": run["status"]},
                 "recurrences": [], "actions": [], "status": "open", "closed": None, "retest": None}
            found[fid] = open_by_key[key] = f
    for f in found.values():
        end = parse_time(f["closed"]) if f["closed"] else now
        f["age_s"] = max(0.0, (end - parse_time(f["opened"])).total_seconds())
    return sorted(found.values(), key=lambda f: (f["opened"], f["id"]))


def load_actions(reports_dir: str | os.PathLike) -> list[dict]:
    """The corrective actions recorded under `reports_dir`, in the order they were recorded."""
    path = Path(reports_dir) / FINDINGS_DIR / ACTIONS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line: verify reports the file changed after it was signed
        if isinstance(item, dict):
            out.append(item)
    return out


def record_action(reports_dir: str | os.PathLike, finding_id: str, action: str, owner: str,
                  key: str | os.PathLike | None, now: datetime | None = None) -> dict:
    """Record the corrective action for an open finding and sign the actions file again with
    `key`. Returns the finding as it stands (awaiting its retest). FindingError for an unknown or
    closed finding, or an empty action or owner."""
    action, owner = " ".join(str(action).split()), " ".join(str(owner).split())
    if not action or not owner:
        raise FindingError("findings close: --action and --owner must say something")
    now = now or datetime.now(timezone.utc)
    current = {f["id"]: f for f in findings(reports_dir, now)}
    f = current.get(finding_id)
    if f is None:
        known = ", ".join(i for i, x in current.items() if x["status"] != "closed") or "none"
        raise FindingError(f"findings close: no finding {finding_id!r} (open ones: {known})")
    if f["status"] == "closed":
        raise FindingError(f"findings close: {finding_id} is closed already (retest {f['retest']['run_id']})")
    folder = Path(reports_dir) / FINDINGS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"finding": finding_id, "action": action, "owner": owner, "wall": iso(now)}
    with open(folder / ACTIONS, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    if key is not None:
        signing.sign(folder / ACTIONS, key)
    return {f["id"]: f for f in findings(reports_dir, now)}[finding_id]


def findings(reports_dir: str | os.PathLike, now: datetime | None = None, runs: list[dict] | None = None) -> list[dict]:
    """The findings of every run under `reports_dir`; writes the register beside the actions."""
    now = now or datetime.now(timezone.utc)
    result = findings_of(runs if runs is not None else collect(reports_dir), load_actions(reports_dir), now)
    folder = Path(reports_dir) / FINDINGS_DIR
    if result or folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / REGISTER).write_text(dump_json({"generated": iso(now), "findings": result}), encoding="utf-8")
    return result


def quarter_findings(all_findings: list[dict], start: datetime, end: datetime, now: datetime) -> dict:
    """The quarter's view: findings opened in it, closed in it (with the retest's run id), and
    those still open at its end (or now, if sooner), with their age then."""
    until = min(end, now)
    opened = [f for f in all_findings if start <= parse_time(f["opened"]) < end]
    closed = [f for f in all_findings if f["closed"] and start <= parse_time(f["closed"]) < end]
    still_open = []
    for f in all_findings:
        opened_at = parse_time(f["opened"])
        if opened_at < end and not (f["closed"] and parse_time(f["closed"]) < end):
            still_open.append({**f, "age_s": (until - opened_at).total_seconds(),
                               "status": "awaiting retest" if any(parse_time(a["wall"]) < end for a in f["actions"])
                               else "open"})
    return {"opened": opened, "closed": closed, "still_open": still_open,
            "counts": {"opened": len(opened), "closed": len(closed), "still_open": len(still_open)}}

