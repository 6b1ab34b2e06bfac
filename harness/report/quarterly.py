"""The quarterly BCP review's evidence: every game-day run of the quarter, judged against the
plan's success criteria, with the backup verifications, in one page plus its numbers and an
evidence manifest.

`build_quarterly(reports_dir, "2026Q4")` finds every run dir (a dir with verdict.json, at any
depth: game days hold run dirs) whose `started` falls in the quarter (UTC) and writes, into
`reports_dir/quarterly-2026Q4/` (or `out_dir`):
  index.html     the review page (templates/quarterly.html.j2): the BCP success criteria table (runs proving / breaking each,
                 with links to the breaking runs), per scenario runs, pass rate, RTO and RPO
                 (median, p95, max) against objectives and a monthly trend chart, backup
                 verification records, failures with links to their reports;
  evidence.json  the same numbers, for tools;
  manifest.json  SHA-256 hash chain over every file the page rests on (see manifest.py), signed.
The page also lists the quarter's findings (opened, closed with their retest, still open with
their age: findings.py), the game days' approved plans beside their results (plan_results.py),
and which part of it answers which control (controls.py).
Only verdicts are read (not histories), so a quarter of a thousand runs builds in about a second.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from markupsafe import Markup

from harness.report import manifest as _manifest
from harness.report.page import (BCP_CRITERIA, STATUS_COLOURS, STATUSES, esc, fmt_criterion_value, fmt_s, is_number,
                                 render, status_of)
from harness.checkers import error_budget
from harness.report import controls
from harness.report.exposure import quarter_exposure
from harness.report.findings import ACTIONS, FINDINGS_DIR, findings_of, load_actions, quarter_findings, run_facts
from harness.report.plan_results import plan_vs_results
from harness.report.seal import SEAL, SEAL_SIG, read_seal
from harness.report.timeline.phases_bar import PHASES
from harness.report.rundir import (
    REPORT_HTML, RUN_FILES, VERDICT, criteria_of, dump_json, find_run_dirs, iso, read_json, rel_path,
    load_backup_records, load_verdict, measured, objectives, parse_quarter, parse_time,
)

__all__ = ["build_quarterly", "parse_quarter", "percentile"]

BREAKING_LINKS_SHOWN = 10


def build_quarterly(reports_dir: str | os.PathLike, quarter: str, out_dir: str | os.PathLike | None = None,
                    prometheus_url: str | None = None, key: str | os.PathLike | None = None) -> Path:
    """Build the quarter's evidence; returns the path of its index.html. With `prometheus_url`, the
    standing RPO exposure of the quarter is read from it (harness/report/exposure.py). With `key`,
    the manifest is signed (harness/core/signing.py).
    ValueError for a bad quarter; FileNotFoundError for a reports dir that does not exist."""
    start, end = parse_quarter(quarter)
    quarter = quarter.strip().upper()
    if not Path(reports_dir).is_dir():
        raise FileNotFoundError(f"{reports_dir}: no such reports directory")
    reports_dir = Path(os.path.abspath(reports_dir))  # absolute once: the manifest joins 60,000 paths to it
    out = Path(out_dir) if out_dir else reports_dir / f"quarterly-{quarter}"
    out.mkdir(parents=True, exist_ok=True)

    runs, unreadable, negatives, calibrations, facts, apart = [], [], [], [], [], []
    up = rel_path(reports_dir, os.path.abspath(out))  # from the page to the runs: ".."
    for d in find_run_dirs(reports_dir):
        verdict, problem = load_verdict(d)
        rel = rel_path(d, reports_dir)
        started = parse_time(verdict.get("started"))
        if problem or started is None:
            unreadable.append({"run": rel, "problem": problem or f"{VERDICT} has no readable 'started' time"})
            continue
        if started < end:  # findings opened earlier may still be open, or close, in this quarter
            facts.append(run_facts(verdict, rel))
        if start <= started < end:
            if verdict.get("calibration"):
                # The day's instrument check: its error is evidence about the harness, not the plan.
                calibrations.append(verdict.get("measured", {}).get("rto_s"))
                apart.append({"path": rel})  # still in the manifest: evidence all the same
                continue
            if verdict.get("negative_control"):
                # A twin run with recovery disabled proves the harness can fail, not the plan:
                # counted apart, never as evidence for or against the BCP's criteria.
                negatives.append(status_of(verdict))
                apart.append({"path": rel})
                continue
            runs.append(_run_record(d, rel, verdict, started, up))
    runs.sort(key=lambda r: (r["started"], r["path"]))
    records, record_problems = load_backup_records(reports_dir)
    backups = []
    for path, rec in records:
        wall = parse_time(rec.get("wall"))
        if wall and start <= wall < end:
            backups.append((path, rec))

    evidence = _evidence(quarter, start, end, runs, backups, unreadable + [{"run": p.split(":")[0], "problem": p}
                                                                            for p in record_problems])
    evidence["negative_controls"] = {"runs": len(negatives), "failed_as_required": negatives.count("fail")}
    evidence["calibration_runs"] = len(calibrations)
    evidence["error_budget"] = error_budget([r.get("downtime_s") for r in runs], months=3)
    evidence["phases"] = _phases(runs)
    # Damage nobody judged: heartbeats a run found already lost or changed at its start.
    evidence["unjudged_damage"] = [{k: r[k] for k in ("run_id", "scenario", "started", "report", "heartbeat_set_aside")}
                                   for r in runs if r.get("heartbeat_set_aside")]
    now = datetime.now(timezone.utc)
    actions = [a for a in load_actions(reports_dir) if (parse_time(a.get("wall")) or end) < end]
    evidence["findings"] = quarter_findings(findings_of(facts, actions, now), start, end, now)
    for group in ("opened", "closed", "still_open"):
        for f in evidence["findings"][group]:
            f["opened_report"] = rel_path(reports_dir / f["opened_by"]["path"] / REPORT_HTML, out)
            f["measured_text"] = fmt_criterion_value(f["criterion"], f["measured"])
            f["objective_text"] = fmt_criterion_value(f["criterion"], f["objective"], "objective")
            if f.get("retest"):
                f["retest_report"] = rel_path(reports_dir / f["retest"]["path"] / REPORT_HTML, out)
    plans, plan_files = _plans(reports_dir, runs, out)
    evidence["plans"] = plans
    evidence["controls"] = {"note": controls.NOTE, "rows": list(controls.CONTROLS)}
    if prometheus_url:
        evidence["rpo_exposure"] = quarter_exposure(prometheus_url, start, end)
    else:
        evidence["rpo_exposure"] = {"ways": {}, "error": "not read: no Prometheus was given"}
    (out / "evidence.json").write_text(dump_json(evidence), encoding="utf-8")
    index = out / "index.html"
    index.write_text(_render(evidence), encoding="utf-8")

    files, known = _run_files(reports_dir, runs + apart)
    files.extend(plan_files)
    files.extend(reports_dir / FINDINGS_DIR / name for name in (ACTIONS, ACTIONS + ".sig"))
    files.extend(p for p, _ in backups)
    files.extend([index, out / "evidence.json"])
    _manifest.write_manifest(out, reports_dir, files, scope={"quarter": quarter}, known=known, key=key)
    return index


def _plans(reports_dir: Path, runs: list[dict], out: Path) -> tuple[list[dict], list[Path]]:
    """Each game day of the quarter that ran under an approved plan: the plan beside its results,
    and the plan's files (plan.json and its signature) for the manifest."""
    by_folder: dict[str, list[dict]] = {}
    for r in runs:
        by_folder.setdefault(r["path"].rpartition("/")[0], []).append(r)
    plans, files = [], []
    for folder, rows in sorted(by_folder.items()):
        plan, problem = read_json(reports_dir / folder / "plan.json") if folder else (None, "none")
        if problem or not isinstance(plan, dict):
            continue
        side = plan_vs_results(plan, rows)
        plans.append({**{k: side[k] for k in ("id", "approver", "window", "not_run", "unplanned")},
                      "gameday": folder, "index": rel_path(reports_dir / folder / "index.html", out),
                      "planned": len(plan.get("scenarios") or []), "ran": len(rows),
                      "passed": sum(1 for r in rows if r["status"] == "pass")})
        files += [reports_dir / folder / "plan.json", reports_dir / folder / "plan.json.sig"]
    return plans, files


def _run_files(reports_dir: Path, runs: list[dict]) -> tuple[list[str], dict[str, str]]:
    """Every evidence file of the runs, and the hashes their seals hold (hashed when each run was
    written, so the manifest does not hash them again). An unsealed run lists its RUN_FILES."""
    files, known = [], {}
    for r in runs:
        d = f"{reports_dir}/{r['path']}"  # strings: pathlib costs more than the rest of the build
        try:
            with open(f"{d}/{SEAL}", "rb") as f:
                data = f.read()
        except OSError:
            data = None
        sealed, problem = read_seal(d, data.decode("utf-8", errors="replace")) if data is not None else ({}, "none")
        if problem:
            files.extend(f"{d}/{name}" for name in RUN_FILES)
            continue
        for rel, digest in sealed.items():
            known[f"{d}/{rel}"] = digest
            files.append(f"{d}/{rel}")
        known[f"{d}/{SEAL}"] = hashlib.sha256(data).hexdigest()  # read already
        files.extend([f"{d}/{SEAL}", f"{d}/{SEAL_SIG}"])
    return files, known


# Numbers --------------------------------------------------------------------------------------

def _run_record(d: Path, rel: str, verdict: dict, started: datetime, up: str) -> dict:
    """One run's numbers; `up` is the path from the page's folder to the reports dir."""
    m, o = measured(verdict), objectives(verdict)
    linked = REPORT_HTML if os.path.exists(f"{d}/{REPORT_HTML}") else VERDICT
    return {
        "run_id": str(verdict.get("run_id") or d.name),
        "scenario": str(verdict.get("scenario") or "unknown"),
        "status": status_of(verdict),
        "reason": str(verdict.get("reason") or ""),
        "started": iso(started),
        "month": f"{started:%Y-%m}",
        "path": rel,
        "report": f"{up}/{rel}/{linked}" if up != "." else f"{rel}/{linked}",
        "had_fault": is_number(m.get("fault_start_t")) or is_number(m.get("rto_s")),
        "rto_s": m.get("rto_s") if is_number(m.get("rto_s")) else None,
        "downtime_s": m.get("downtime_s") if is_number(m.get("downtime_s")) else None,
        "rto_objective_s": o.get("rto_s") if is_number(o.get("rto_s")) else None,
        # The loss the RPO criterion judged (recovery point plus what was lost after the fault).
        "rpo_s": (m["data_loss_s"] if is_number(m.get("data_loss_s")) else
                  m.get("rpo_s") if is_number(m.get("rpo_s")) else None),
        "rpo_objective_s": o.get("rpo_s") if is_number(o.get("rpo_s")) else None,
        "heartbeat_set_aside": int(m.get("heartbeat_set_aside") or 0),
        "lost_writes": m.get("lost_writes"),
        "acked_writes": m.get("acked_writes"),
        "phases": m.get("phases") if isinstance(m.get("phases"), dict) else {},
        # A run that errored or was interrupted proves nothing either way (its verdict may still
        # list criteria computed as far as possible): it is "not judged", and listed in Failures.
        "criteria": ({str(c.get("name")): bool(c.get("passed")) for c in criteria_of(verdict)}
                     if status_of(verdict) in ("pass", "fail") else {}),
    }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): always one of the measured values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


# Criteria from other parts of the plan than its Success Criteria, in its words.
PLAN_CRITERIA = {
    "notification": "Escalation Matrix: Notification time for the scenario's severity",
    "response": "Escalation Matrix: Response Time for the scenario's severity",
    "rpo_warning": "RPO < 5 minutes maintained: warned while the recovery point was still within it",
}
# The recovery phases (harness/checkers/phases.py), in the order an incident goes through them.
PHASE_KEYS = ("detect_s", "notify_s", "respond_s", "restore_s")


def _phases(runs: list[dict]) -> dict:
    """Each phase's median, p95 and max over the quarter's runs that measured it."""
    out = {}
    for key in PHASE_KEYS:
        values = [r["phases"][key] for r in runs if is_number(r["phases"].get(key))]
        out[key] = {"n": len(values), "median_s": percentile(values, 50), "p95_s": percentile(values, 95),
                    "max_s": max(values) if values else None}
    return out


def _distribution(runs: list[dict], key: str, none_label: str) -> dict:
    values = [r[key] for r in runs if r[key] is not None]
    objective_counts = Counter(r[f"{key[:-2]}_objective_s"] for r in runs if r[f"{key[:-2]}_objective_s"] is not None)
    objective = objective_counts.most_common(1)[0][0] if objective_counts else None
    within = sum(1 for r in runs if r[key] is not None and r[f"{key[:-2]}_objective_s"] is not None
                 and r[key] <= r[f"{key[:-2]}_objective_s"])
    return {
        "objective_s": objective,
        "objectives_vary": len(objective_counts) > 1,
        "n": len(values),
        "median_s": percentile(values, 50),
        "p95_s": percentile(values, 95),
        "max_s": max(values) if values else None,
        "within_objective": within,
        none_label: sum(1 for r in runs if r["had_fault"] and r[key] is None),
    }


def _months(start: datetime, end: datetime) -> list[str]:
    out, y, m = [], start.year, start.month
    while datetime(y, m, 1, tzinfo=timezone.utc) < end:
        out.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _evidence(quarter: str, start: datetime, end: datetime, runs: list[dict], backups: list, unreadable: list) -> dict:
    months = _months(start, end)
    statuses = Counter(r["status"] for r in runs)
    scenarios = {}
    for name in sorted({r["scenario"] for r in runs}):
        sr = [r for r in runs if r["scenario"] == name]
        monthly = []
        for month in months:
            mr = [r for r in sr if r["month"] == month]
            rto = [r["rto_s"] for r in mr if r["rto_s"] is not None]
            monthly.append({"month": month, "runs": len(mr), "passed": sum(1 for r in mr if r["status"] == "pass"),
                            "rto_median_s": percentile(rto, 50), "rto_p95_s": percentile(rto, 95),
                            "rto_max_s": max(rto) if rto else None,
                            "unrecovered": sum(1 for r in mr if r["had_fault"] and r["rto_s"] is None)})
        passed = sum(1 for r in sr if r["status"] == "pass")
        scenarios[name] = {
            "runs": len(sr), "passed": passed, "pass_rate": passed / len(sr),
            "statuses": {s: sum(1 for r in sr if r["status"] == s) for s in STATUSES},
            "rto": _distribution(sr, "rto_s", "unrecovered"),
            "rpo": _distribution(sr, "rpo_s", "unknown"),
            "monthly": monthly,
        }
    names = list(BCP_CRITERIA) + [n for n in ("detection", *PLAN_CRITERIA) if any(n in r["criteria"] for r in runs)]
    criteria = []
    for name in names:
        breaking = [r for r in runs if r["criteria"].get(name) is False]
        criteria.append({
            "name": name,
            "bcp": BCP_CRITERIA.get(name) or PLAN_CRITERIA.get(
                name, "Monitoring detected the incident (harness objective, not in the BCP)"),
            "proving": sum(1 for r in runs if r["criteria"].get(name) is True),
            "breaking": len(breaking),
            "not_judged": sum(1 for r in runs if name not in r["criteria"]),
            "breaking_runs": [{"run_id": r["run_id"], "scenario": r["scenario"], "report": r["report"]}
                              for r in breaking],
        })
    records = []
    for path, rec in backups:
        records.append({
            "file": path.name, "wall": rec.get("wall"), "backup_id": rec.get("backup_id"),
            "restore_s": rec.get("restore_s"), "newest_restorable_point": rec.get("newest_restorable_point"),
            "age_s": rec.get("age_s"), "integrity_ok": rec.get("integrity_ok"), "detail": rec.get("detail"),
            # The standing exposure the monitoring saw when the verification ran (older records: none).
            "rpo_exposure_max_s": max((v for v in (rec.get("rpo_exposure_s") or {}).values() if is_number(v)),
                                      default=None),
        })
    weeks_total = {tuple(datetime.fromordinal(d).isocalendar()[:2])
                   for d in range(start.toordinal(), end.toordinal())}
    weeks_seen = {tuple(parse_time(r["wall"]).isocalendar()[:2]) for r in records if parse_time(r["wall"])}
    return {
        "quarter": quarter,
        "period": {"start": iso(start), "end": iso(end)},
        "generated": iso(datetime.now(timezone.utc)),
        "runs_total": len(runs),
        "statuses": {s: statuses.get(s, 0) for s in STATUSES},
        "passed_all": bool(runs) and statuses.get("pass", 0) == len(runs),
        "months": months,
        "monthly_statuses": [{"month": mo, **{s: sum(1 for r in runs if r["month"] == mo and r["status"] == s)
                                              for s in STATUSES}} for mo in months],
        "scenarios": scenarios,
        "criteria": criteria,
        "backup_verification": {
            "records": records,
            "count": len(records),
            "integrity_failures": sum(1 for r in records if r["integrity_ok"] is not True),
            "weeks_with_record": len(weeks_seen & weeks_total),
            "weeks_in_quarter": len(weeks_total),
            "max_age_s": max((r["age_s"] for r in records if is_number(r["age_s"])), default=None),
            "max_restore_s": max((r["restore_s"] for r in records if is_number(r["restore_s"])), default=None),
        },
        "failures": [{k: r[k] for k in ("run_id", "scenario", "status", "reason", "started", "report")}
                     for r in runs if r["status"] != "pass"],
        "unreadable": unreadable,
        "runs": [{k: v for k, v in r.items() if k != "had_fault"} for r in runs],
    }


# Page -----------------------------------------------------------------------------------------

def _render(ev: dict) -> str:
    """The review page (templates/quarterly.html.j2) from the evidence numbers."""
    scenarios = []
    for i, (name, sc) in enumerate(ev["scenarios"].items()):
        scenarios.append({**sc, "name": name, "short_of_objectives": _short_of_objectives(sc),
                          "trend": Markup(_trend_svg(i, sc))})  # our own SVG, its texts escaped
    return render(
        "quarterly.html.j2",
        title=f"BCP quarterly evidence {ev['quarter']}",
        ev=ev,
        tally=", ".join(f"{c} {s}" for s, c in ev["statuses"].items() if c),
        negatives={"runs": 0, "failed_as_required": 0, **(ev.get("negative_controls") or {})},
        budget=_budget_words(ev.get("error_budget")),
        breaking_links_shown=BREAKING_LINKS_SHOWN,
        status_bars=Markup(_status_bars_svg(ev)) if ev["runs_total"] else "",
        status_colours=[(s, STATUS_COLOURS[s][0]) for s in STATUSES],
        scenarios=scenarios,
        phase_rows=[{"label": label, "meaning": meaning, **(ev.get("phases") or {}).get(key, {"n": 0})}
                    for key, label, _, meaning in PHASES],
    )


def _budget_words(b: dict | None) -> str | None:
    if not b:
        return None
    return (f"Error budget burn: {b['consumed_s']:.1f} s of downtime measured in the quarter's game days, "
            f"{b['consumed_pct']:.3f} % of the {b['budget_s']:.0f} s that {100 * b['uptime_objective']:g} % "
            f"uptime allows over three months.")


def _short_of_objectives(sc: dict) -> bool:
    """A scenario with a failed run, or an RTO / RPO beyond its objective or never measured."""
    rto, rpo = sc["rto"], sc["rpo"]
    rto_bad = rto["unrecovered"] or (rto["max_s"] is not None and rto["objective_s"] is not None
                                     and rto["max_s"] > rto["objective_s"])
    rpo_bad = rpo["unknown"] or (rpo["max_s"] is not None and rpo["objective_s"] is not None
                                 and rpo["max_s"] > rpo["objective_s"])
    return bool(rto_bad or rpo_bad or sc["passed"] < sc["runs"])


# Charts ---------------------------------------------------------------------------------------

def _status_bars_svg(ev: dict) -> str:
    """Runs per month, stacked by status."""
    w, h, ml, mb, mt = 720, 190, 44, 28, 12
    months = ev["monthly_statuses"]
    top = max((sum(m[s] for s in STATUSES) for m in months), default=0)
    ymax = _nice_int(top)
    ph = h - mb - mt
    slot = (w - ml - 10) / max(len(months), 1)
    bw = min(90.0, slot * 0.55)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="monthly-status" viewBox="0 0 {w} {h}" width="{w}" '
             f'height="{h}" role="img" aria-label="Runs per month by status" font-size="11" '
             'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif">']
    for frac in (0, 0.5, 1):
        y = mt + ph - frac * ph
        parts.append(f'<path d="M{ml},{y:.1f}H{w - 10}" stroke="#eaeef2"/>'
                     f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#59636e">{ymax * frac:g}</text>')
    for i, m in enumerate(months):
        x = ml + slot * i + (slot - bw) / 2
        y = mt + ph
        total = sum(m[s] for s in STATUSES)
        for s in STATUSES:
            if m[s]:
                bh = m[s] / ymax * ph
                y -= bh
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                             f'fill="{STATUS_COLOURS[s][0]}"><title>{esc(m["month"])}: {m[s]} {s}</title></rect>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{h - 10}" text-anchor="middle">{esc(m["month"])}</text>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" fill="#59636e">'
                     f'{m.get("pass", 0)}/{total} pass</text>' if total else "")
    parts.append("</svg>")
    return "".join(parts)


def _nice_int(v: float) -> float:
    if v <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(v))
    for f in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if f * exp >= v:
            return f * exp
    return 10 * exp


LOG_TICKS_S = (1, 10, 60, 300, 900, 3600, 4 * 3600)


def _trend_svg(i: int, s: dict) -> str:
    """Monthly RTO (median, p95, max) on a log axis against the objective."""
    w, h, ml, mr, mt, mb = 380, 190, 52, 10, 18, 34
    objective = s["rto"]["objective_s"]
    values = [v for m in s["monthly"] for v in (m["rto_max_s"], m["rto_p95_s"]) if v]
    hi = max(values + ([objective * 1.5] if objective else []) + [60.0])
    lo = max(0.1, min([v for m in s["monthly"] for v in (m["rto_median_s"],) if v] + [1.0]) / 1.5)
    llo, lhi = math.log10(lo), math.log10(hi)
    ph = h - mt - mb

    def y(v: float) -> float:
        v = min(max(v, lo), hi)
        return mt + ph - (math.log10(v) - llo) / (lhi - llo) * ph

    slot = (w - ml - mr) / max(len(s["monthly"]), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="rto-trend" id="rto-trend-{i}" viewBox="0 0 {w} {h}" '
             f'width="{w}" height="{h}" role="img" aria-label="Monthly RTO trend" font-size="11" '
             'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif">']
    for t in LOG_TICKS_S:
        if lo <= t <= hi:
            parts.append(f'<path d="M{ml},{y(t):.1f}H{w - mr}" stroke="#eaeef2"/>'
                         f'<text x="{ml - 5}" y="{y(t) + 3.5:.1f}" text-anchor="end" fill="#59636e">{esc(fmt_s(t))}</text>')
    if objective:
        yo = y(objective)
        parts.append(f'<path class="objective" d="M{ml},{yo:.1f}H{w - mr}" stroke="#cf222e" stroke-width="1.5" '
                     f'stroke-dasharray="6,4"/><text x="{w - mr}" y="{yo + 12:.1f}" text-anchor="end" fill="#cf222e">'
                     f'objective {esc(fmt_s(objective))}</text>')
    for j, m in enumerate(s["monthly"]):
        cx = ml + slot * j + slot / 2
        label = f"{m['month']}"
        parts.append(f'<text x="{cx:.1f}" y="{h - 18}" text-anchor="middle">{esc(label)}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{h - 5}" text-anchor="middle" fill="#59636e">'
                     f'{m["passed"]}/{m["runs"]} pass</text>')
        if m["rto_median_s"] is not None:
            over = objective is not None and m["rto_max_s"] > objective
            colour = "#cf222e" if over else "#1a7f37"
            tip = (f"{m['month']}: median {fmt_s(m['rto_median_s'])}, p95 {fmt_s(m['rto_p95_s'])}, "
                   f"max {fmt_s(m['rto_max_s'])}")
            parts.append(f'<g><title>{esc(tip)}</title>'
                         f'<path d="M{cx:.1f},{y(m["rto_max_s"]):.1f}V{y(m["rto_p95_s"]):.1f}" stroke="{colour}"/>'
                         f'<path d="M{cx - 6:.1f},{y(m["rto_max_s"]):.1f}h12" stroke="{colour}"/>'
                         f'<rect x="{cx - 12:.1f}" y="{y(m["rto_p95_s"]):.1f}" width="24" '
                         f'height="{max(y(m["rto_median_s"]) - y(m["rto_p95_s"]), 1.5):.1f}" fill="{colour}" '
                         f'fill-opacity="0.25" stroke="{colour}"/>'
                         f'<circle cx="{cx:.1f}" cy="{y(m["rto_median_s"]):.1f}" r="4" fill="{colour}"/></g>')
        elif m["runs"]:
            parts.append(f'<text x="{cx:.1f}" y="{mt + ph / 2:.1f}" text-anchor="middle" fill="#59636e">no RTO</text>')
        if m["unrecovered"]:
            parts.append(f'<text x="{cx:.1f}" y="{mt - 4}" text-anchor="middle" fill="#cf222e" font-weight="700">'
                         f'↑ {m["unrecovered"]}<title>{m["unrecovered"]} run(s) never recovered</title></text>')
    parts.append("</svg>")
    return "".join(parts)

