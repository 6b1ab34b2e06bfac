"""RPO exposure: how old the newest restorable point is, for each way back (the WAL archive, the
standby), and whether the monitoring warned while it was still under the objective. Pure, like
every checker.

    rpo_warning(events, warning, rpo_s)   the `rpo_warning` criterion: the alert fired before the
                                          exposure passed the RPO objective
    exposure_distribution(values, ...)    median, p95, max and time above the objective of a
                                          series of exposure samples (the quarter's evidence)

The evidence is one `rpo_exposure` event (harness/run/control.py reads it from Prometheus's own
samples): alert, fired, latency_s (after the fault), exposure_at_alert_s, max_exposure_s.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["rpo_warning", "exposure_distribution"]


def rpo_warning(events: list[dict], warning: dict, rpo_s: float) -> dict:
    """Passes only if `warning["alert"]` fired while the RPO exposure was still under `rpo_s`: an
    alert that comes once the recovery point is already too old warns of nothing."""
    alert = warning["alert"]
    objective = {"alert": alert, "before_exposure_s": rpo_s}
    found = [e for e in events if e["kind"] == "rpo_exposure"]
    if not found:
        return _criterion(False, None, objective, f"no RPO exposure evidence recorded: cannot show that {alert} warned in time")
    e = found[-1]
    peak = e.get("max_exposure_s")
    peak_words = f"; the exposure Prometheus saw reached {_n(peak)} s" if _number(peak) else ""
    if e.get("error"):
        return _criterion(False, None, objective, f"RPO exposure could not be read: {e['error']}")
    if not e.get("fired"):
        return _criterion(False, None, objective, f"alert {alert} never fired{peak_words} "
                                                  f"({e.get('detail') or 'no firing sample after the fault'})")
    at = e.get("exposure_at_alert_s")
    if not _number(at):
        return _criterion(False, None, objective,
                          f"alert {alert} fired, but the exposure at that moment is unknown{peak_words}")
    when = f" {_n(e['latency_s'])} s after the fault" if _number(e.get("latency_s")) else ""
    if at >= rpo_s:
        return _criterion(False, at, objective,
                          f"alert {alert} fired{when} only when the exposure was {_n(at)} s, not under the "
                          f"{_n(rpo_s)} s objective: the warning came too late to act on")
    return _criterion(True, at, objective,
                      f"alert {alert} fired{when} at an exposure of {_n(at)} s, {_n(rpo_s - at)} s before the "
                      f"{_n(rpo_s)} s objective{peak_words}")


def exposure_distribution(values: list[float], step_s: float, objective_s: float,
                          above_fraction: list[float] | None = None) -> dict:
    """Samples of the exposure taken every `step_s` seconds → n, median, p95, max (nearest rank)
    and the time spent above `objective_s`. With `above_fraction` (per step, the fraction of raw
    samples above the objective, from the TSDB) the time above is exact to the scrape; without,
    it is estimated as step_s per sample above the objective."""
    vals = sorted(float(v) for v in values if _number(v))
    if above_fraction is not None:
        above_s = sum(float(f) for f in above_fraction if _number(f)) * step_s
    else:
        above_s = sum(step_s for v in vals if v > objective_s)
    return {"n": len(vals), "step_s": step_s, "objective_s": objective_s,
            "median_s": _rank(vals, 50), "p95_s": _rank(vals, 95), "max_s": vals[-1] if vals else None,
            "time_above_objective_s": round(above_s, 3), "covered_s": round(len(vals) * step_s, 3)}


# Internals ---------------------------------------------------------------------------------

def _criterion(passed: bool, measured: Any, objective: Any, detail: str) -> dict:
    return {"name": "rpo_warning", "passed": bool(passed), "measured": measured, "objective": objective, "detail": detail}


def _rank(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _n(x: Any) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)
