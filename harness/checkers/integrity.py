"""Data integrity verified, critical functions restored, and whether the monitoring noticed.

Pure functions of the history (see harness/records/history.py): no I/O, no clock. The checks themselves
(amcheck, model checksums, golden predictions, config checksum, ...) ran in probes and recorded
their outcome as `integrity`, `function` and `detection` events; here they are only collected.
"""
from __future__ import annotations

from typing import Any

__all__ = ["integrity", "functions", "detection"]


def integrity(events: list[dict], since_t: float | None = None) -> dict:
    """`integrity` events → {checks: {name: {ok, detail, t}}, all_ok, failed: [names]}.

    The last result per check wins (a check repeated after a restore supersedes the first try).
    Events before `since_t` are ignored, so a check made before the fault cannot vouch for the
    data after it. With no checks at all, all_ok is False: nothing was verified."""
    return _collect(events, "integrity", "check", since_t)


def functions(events: list[dict], since_t: float | None = None) -> dict:
    """`function` events → {checks: {name: {ok, detail, t}}, all_ok, failed: [names]}, as
    integrity() does for the critical functions checked after recovery."""
    return _collect(events, "function", "name", since_t)


def detection(events: list[dict], alert: str) -> dict:
    """`detection` events for one alert → {alert, found, fired, latency_s, resolved, t}.

    fired: it fired at least once; latency_s: from the first event that fired and gave one;
    resolved: the last value recorded (True/False, or a time `t` at which it resolved)."""
    out: dict[str, Any] = {"alert": alert, "found": False, "fired": False, "latency_s": None,
                           "resolved": None, "t": None}
    for e in events:
        if e["kind"] != "detection" or e.get("alert") != alert:
            continue
        out["found"] = True
        if e.get("fired"):
            if not out["fired"]:
                out["t"] = e["t"]
            out["fired"] = True
            if out["latency_s"] is None and e.get("latency_s") is not None:
                out["latency_s"] = e["latency_s"]
        if e.get("resolved") is not None:
            out["resolved"] = e["resolved"]
    return out


# Internals ---------------------------------------------------------------------------------

def _collect(events: list[dict], kind: str, name_field: str, since_t: float | None) -> dict:
    checks: dict[str, dict] = {}
    for e in events:
        if e["kind"] != kind or (since_t is not None and e["t"] < since_t):
            continue
        checks[str(e[name_field])] = {"ok": bool(e["ok"]), "detail": e.get("detail"), "t": e["t"]}
    failed = sorted(name for name, c in checks.items() if not c["ok"])
    return {"checks": checks, "all_ok": bool(checks) and not failed, "failed": failed}
