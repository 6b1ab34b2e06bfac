"""The game day's plan and its results side by side: for each scenario the plan approved, the
objectives it was approved against and what the run measured; scenarios approved but never run,
and runs nobody approved, are named too. Read from the plan the game day keeps in its folder
(`plan.json`, written by `gameday plan create`, harness/run/gameday_plan.py).

    plan_vs_results(plan, rows)   → {id, approver, window, target, blast_radius, rows, not_run, unplanned}
"""
from __future__ import annotations

from harness.report.page import fmt_s, is_number

__all__ = ["plan_vs_results"]


def plan_vs_results(plan: dict, rows: list[dict]) -> dict:
    """`rows`: the game day's run rows (harness/report/gameday.py), the calibration excluded."""
    by_scenario: dict[str, list[dict]] = {}
    for r in rows:
        by_scenario.setdefault(r["scenario"], []).append(r)
    out_rows, not_run = [], []
    for s in plan.get("scenarios") or []:
        o = s.get("objectives") or {}
        runs = by_scenario.pop(s.get("scenario"), [])
        if not runs:
            not_run.append(s.get("scenario"))
        for r in runs or [None]:
            out_rows.append({
                "scenario": s.get("scenario"), "experiment": s.get("experiment"),
                "faults": ", ".join(s.get("faults") or []) or "—",
                "rto_objective": fmt_s(o.get("rto_s")), "rpo_objective": fmt_s(o.get("rpo_s")),
                "max_lost_writes": o.get("max_lost_writes") if is_number(o.get("max_lost_writes")) else "—",
                "status": r["status"] if r else "not run",
                "rto": fmt_s(r["rto_s"], "not recovered" if r["status"] in ("pass", "fail") else "—") if r else "—",
                "rpo": fmt_s(r["rpo_s"], "unknown" if r["status"] in ("pass", "fail") else "—") if r else "—",
                "lost": r.get("lost_writes") if r and is_number(r.get("lost_writes")) else "—",
                "run_id": r["run_id"] if r else None, "report": r["report"] if r else None,
            })
    window = plan.get("window") or {}
    return {"id": plan.get("id"), "approver": plan.get("approver"), "created": plan.get("created"),
            "window": f"{window.get('start')} – {window.get('end')}",
            "target": (plan.get("target") or {}).get("label") or (plan.get("target") or {}).get("kind"),
            "blast_radius": (plan.get("blast_radius") or {}).get("statement"),
            "components": ", ".join((plan.get("blast_radius") or {}).get("components") or []),
            "rows": out_rows, "not_run": not_run,
            "unplanned": sorted(r["run_id"] for runs in by_scenario.values() for r in runs)}
