"""The game day's plan, approved before the exercise: what may be injected, where, when, against
which objectives, on whose approval.

`gameday plan create` writes `plan.json` and signs it (`plan.json.sig`, harness/core/signing.py):
the scenarios (each experiment file with its SHA-256, its fault and recovery steps, and its
objectives resolved from bcp.yaml as they will be judged), the target, the blast radius (a
statement in the approver's words and the components the faults act on), the window, the day's
calibration freeze, and the approver. `gameday run --plan P` then runs only what was approved: a
plan not signed by an allowed signer, outside its window, on another target, or an experiment
that is not in it, was edited since, or would be judged against other objectives, is refused
with one line before anything is injected (exit 2). The game day keeps a copy of the plan and its
signature in its folder, and its index sets the plan and the results side by side
(harness/report/plan_results.py).

    create(paths, target, approver, blast_radius, start, end, calibration_s) → the plan (dict)
    write(plan, path, key)                                                   → plan.json + .sig
    load(path, allowed)                 → (plan, signer); PlanRefused naming the problem
    refusal(plan, planned, target, now, calibration_s) → None, or the one line saying why not
"""
from __future__ import annotations

import json
import os
import secrets as _secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.core import signing
from harness.core.checksums import sha256_file
from harness.core.paths import PROJECT_ROOT
from harness.run.runner import Planned
from harness.targets import Target

__all__ = ["KIND", "PLAN_FILE", "PlanRefused", "create", "write", "load", "refusal", "parse_window"]

KIND = "svgai-gameday-plan"
VERSION = 1
PLAN_FILE = "plan.json"
# What the plan records of each scenario's objectives: what the run is judged against.
JUDGED = ("rto_s", "rpo_s", "max_lost_writes", "timeout_s", "stability_s", "critical_functions",
          "integrity_checks", "detection", "severity", "recovery")


class PlanRefused(ValueError):
    """A plan that does not allow this run: one line naming why (exit 2, nothing injected)."""


def create(planned: list[Planned], target: Target, approver: str, blast_radius: str, start: datetime,
           end: datetime, calibration_s: float) -> dict:
    """The plan for `planned` experiments (already validated) on `target`, not yet signed."""
    if not approver.strip():
        raise PlanRefused("plan create: --approver must name who approves the game day")
    if not blast_radius.strip():
        raise PlanRefused("plan create: --blast-radius must say what the game day may affect")
    if end <= start:
        raise PlanRefused(f"plan create: the window ends ({_iso(end)}) before it starts ({_iso(start)})")
    scenarios = [_scenario(p) for p in planned]
    names = [s["scenario"] for s in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PlanRefused(f"plan create: scenario {dupes[0]} is planned twice")
    created = datetime.now(timezone.utc)
    return {
        "kind": KIND, "version": VERSION,
        "id": f"plan-{created:%Y%m%dT%H%M%SZ}-{_secrets.token_hex(2)}",
        "created": _iso(created),
        "approver": " ".join(approver.split()),
        "window": {"start": _iso(start), "end": _iso(end)},
        "target": _target(target),
        "blast_radius": {"statement": " ".join(blast_radius.split()),
                         "components": sorted({c for s in scenarios for c in s["touches"]})},
        "calibration_s": calibration_s,
        "scenarios": scenarios,
    }


def write(plan: dict, path: str | os.PathLike, key: str | os.PathLike) -> Path:
    """plan.json at `path` (a file, or a folder to hold plan.json) and its signature."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    signing.sign(path, key)
    return path


def load(path: str | os.PathLike, allowed: signing.AllowedSigners) -> tuple[dict, signing.Signer]:
    """The plan at `path` and who signed it; PlanRefused when it cannot be read or its signature
    does not come from an allowed signer."""
    path = Path(path)
    if path.is_dir():
        path = path / PLAN_FILE
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanRefused(f"--plan {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PlanRefused(f"--plan {path}: cannot be read ({e})") from None
    if not isinstance(plan, dict) or plan.get("kind") != KIND:
        raise PlanRefused(f"--plan {path}: not a game-day plan (its kind is not {KIND!r})")
    try:
        signer = signing.check(path, allowed)
    except signing.SignatureProblem as e:
        raise PlanRefused(f"--plan {path}: not approved: {e}") from None
    return plan, signer


def refusal(plan: dict, planned: list[Planned], target: Target, now: datetime, calibration_s: float) -> str | None:
    """Why this run is not what the plan approved (one line), or None when it is."""
    window = plan.get("window") or {}
    start, end = _time(window.get("start")), _time(window.get("end"))
    if not start or not end or not start <= now < end:
        return (f"plan {plan.get('id')}: now ({_iso(now)}) is outside its approved window "
                f"{window.get('start')} to {window.get('end')}")
    planned_target, here = plan.get("target") or {}, _target(target)
    if (planned_target.get("kind"), planned_target.get("where")) != (here["kind"], here["where"]):
        return (f"plan {plan.get('id')}: approved for the {planned_target.get('kind')} target at "
                f"{planned_target.get('where')}, not the {here['kind']} target at {here['where']}")
    if float(plan.get("calibration_s", 0)) != float(calibration_s):
        return (f"plan {plan.get('id')}: approves a calibration freeze of {plan.get('calibration_s')} s, "
                f"not {calibration_s:g} s (--calibration-s)")
    approved = {s.get("experiment"): s for s in plan.get("scenarios") or []}
    for p in planned:
        mine = _scenario(p)
        theirs = approved.get(mine["experiment"])
        if theirs is None:
            return (f"plan {plan.get('id')}: {mine['experiment']} (scenario {mine['scenario']}) is not in the plan; "
                    f"approved: {', '.join(approved) or 'nothing'}")
        if theirs.get("sha256") != mine["sha256"]:
            return f"plan {plan.get('id')}: {mine['experiment']} was changed after the plan was approved"
        if theirs.get("objectives") != mine["objectives"]:
            changed = sorted(k for k in JUDGED if (theirs.get("objectives") or {}).get(k) != mine["objectives"].get(k))
            return (f"plan {plan.get('id')}: {mine['scenario']} would be judged against other objectives than "
                    f"approved ({', '.join(changed) or 'objectives'} changed since, e.g. in bcp.yaml)")
    return None


def parse_window(start: str | None, hours: float) -> tuple[datetime, datetime]:
    """The window from --start (ISO, default now) and --hours; ValueError with one line."""
    begin = _time(start) if start else datetime.now(timezone.utc)
    if begin is None:
        raise ValueError(f"--start must be an ISO time such as 2026-12-07T09:00Z, got {start!r}")
    if not 0 < hours <= 24 * 14:
        raise ValueError(f"--hours must be above 0 and at most two weeks (336), got {hours:g}")
    return begin, begin + timedelta(hours=hours)


# Internals ------------------------------------------------------------------------------------

def _scenario(p: Planned) -> dict:
    """A planned experiment as the plan records it (and as a run is compared with it)."""
    experiment = p.experiment
    steps = [(a.get("name"), a.get("tags") or [], a.get("provider") or {}) for a in experiment.get("method") or []]
    faults = [name for name, tags, _ in steps if "fault" in tags]
    return {
        "scenario": p.scenario,
        "experiment": _shown(p.path),
        "sha256": sha256_file(p.path),
        "title": experiment.get("title"),
        "faults": faults,
        "recovery": [name for name, tags, _ in steps if "recovery" in tags],
        "touches": sorted({f"{prov.get('module', prov.get('type'))}.{prov.get('func', '')}".rstrip(".")
                           for _, tags, prov in steps if "fault" in tags}),
        "objectives": json.loads(json.dumps({k: p.plan.objectives.get(k) for k in JUDGED}, default=str)),
    }


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _target(target: Target) -> dict:
    return {"kind": target.kind, "label": target.label, "where": str(target.home)}


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _time(value) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)

