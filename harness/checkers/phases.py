"""The phases of an outage, as the BCP's escalation matrix sees them. Pure, like every checker.

    detect    fault start → the alert firing (Prometheus's own sample time)
    notify    alert firing → the notification delivered (the receiver's arrival time)
    respond   notification → the recovery procedure started (runbook scenarios only)
    restore   recovery started (or, with automatic recovery, the fault) → stable again

Phases can overlap (with automatic recovery, restoring starts at the fault, while detection and
notification go on): each phase also has its span from the fault (`spans`), and the outage is
`fault_to_stable_s`, never the sum of the phases.
"""
from __future__ import annotations

from .availability import fault_window

__all__ = ["phases"]


def phases(events: list[dict], recovered_at_t: float | None) -> dict:
    """Seconds per phase; None where the phase did not happen or was not observed."""
    t_fault, _ = fault_window(events)
    out = {"detect_s": None, "notify_s": None, "respond_s": None, "restore_s": None, "spans": {},
           "fault_to_stable_s": None}
    if t_fault is None:
        return out
    fired = next((e for e in events if e["kind"] == "detection" and e.get("fired")), None)
    detect = fired.get("latency_s") if fired else None
    notified = fired.get("notified_latency_s") if fired else None
    starts = [e["t"] for e in events if e["kind"] == "recovery" and e.get("phase") == "start"]
    recovery_t = min(starts) if starts else None
    out["detect_s"] = _r(detect)
    if detect is not None and notified is not None:
        out["notify_s"] = _r(max(0.0, notified - detect))
    if recovery_t is not None and notified is not None:
        out["respond_s"] = _r(max(0.0, (recovery_t - t_fault) - notified))
    if recovered_at_t is not None:
        out["restore_s"] = _r(max(0.0, recovered_at_t - (recovery_t if recovery_t is not None else t_fault)))
        out["fault_to_stable_s"] = _r(max(0.0, recovered_at_t - t_fault))
    # Where each phase lies after the fault (seconds): phases that overlap are drawn as such.
    starts = {"detect_s": 0.0, "notify_s": detect, "respond_s": notified,
              "restore_s": (recovery_t - t_fault) if recovery_t is not None else 0.0}
    for key, start in starts.items():
        if out[key] is not None and start is not None:
            out["spans"][key] = [_r(start), _r(start + out[key])]
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)
