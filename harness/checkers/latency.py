"""Latency under the fault: the p95 of acknowledged optimize calls while the fault was active.
Pure, like every checker.

A slow dependency (200 ms added on the database link) need not cause an outage: RTO stays 0 while
every user waits. The objective `max_p95_latency_s` bounds what users waited: the 95th percentile
of the load's acknowledged writes (each an optimize call, `op` invoke → ok, paired by key) invoked
between the first fault start and the last fault end; where the fault says how long it was
actually in force (`active_s` in its end record: injecting takes a moment after the start is
stamped), only those last `active_s` seconds. A call invoked in the window that was never
acknowledged (refused, timed out, no answer at all) is a user who never got an answer: it counts as
infinitely slow, so the p95 cannot pass by leaving out the calls that timed out (more than 5 % of
them fail it on their own). No acknowledged write in the window means the latency is unknown, and
unknown never passes.
"""
from __future__ import annotations

import math

from .availability import fault_window

__all__ = ["acknowledged_latencies", "unanswered_calls", "percentile", "p95_latency"]


def acknowledged_latencies(events: list[dict], start_t: float, end_t: float) -> list[float]:
    """Seconds from invoke to acknowledgement of every write invoked in [start_t, end_t] and acknowledged."""
    invoked: dict[str, float] = {}
    out = []
    for e in events:
        if e["kind"] != "op" or e.get("f") != "write":
            continue
        if e["type"] == "invoke":
            invoked[e["key"]] = e["t"]
        elif e["type"] == "ok" and e["key"] in invoked:
            t0 = invoked.pop(e["key"])
            if start_t <= t0 <= end_t:
                out.append(e["t"] - t0)
    return out


def unanswered_calls(events: list[dict], start_t: float, end_t: float) -> int:
    """Writes invoked in [start_t, end_t] that were never acknowledged (failed, in doubt, or with
    no outcome at all)."""
    invoked: dict[str, float] = {}
    acked: set[str] = set()
    for e in events:
        if e["kind"] == "op" and e.get("f") == "write":
            if e["type"] == "invoke":
                invoked.setdefault(e["key"], e["t"])
            elif e["type"] == "ok":
                acked.add(e["key"])
    return sum(1 for k, t in invoked.items() if start_t <= t <= end_t and k not in acked)


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank q-th percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def p95_latency(events: list[dict], max_p95_s: float) -> dict:
    """The criterion `p95_latency`: p95 of acknowledged optimize latency while the fault was active
    is at most `max_p95_s`."""
    start, end = fault_window(events)
    if start is None:
        return _criterion(False, None, max_p95_s, "no fault start in the history: no window to measure latency in")
    if end is None or end < start:
        return _criterion(False, None, max_p95_s, "the fault never ended in the history: its window is unknown")
    start = max(start, end - _active_s(events, end - start))
    lat = acknowledged_latencies(events, start, end)
    if not lat:
        return _criterion(False, None, max_p95_s,
                          f"no write was acknowledged while the fault was active ({end - start:.1f} s): "
                          f"latency unknown")
    unanswered = unanswered_calls(events, start, end)
    p95 = percentile(lat + [math.inf] * unanswered, 95)
    calls = f"{len(lat) + unanswered} optimize calls during the {end - start:.1f} s fault"
    if math.isinf(p95):
        return _criterion(False, None, max_p95_s,
                          f"{unanswered} of {calls} were never answered (refused, timed out or in doubt): "
                          f"more than 5 %, so the p95 is no answer at all")
    p95 = round(p95, 6)
    detail = (f"p95 {p95:.3f} s over {calls}" +
              (f", {unanswered} never answered and counted as the slowest" if unanswered else "") +
              f" (slowest acknowledged {max(lat):.3f} s)")
    if p95 > max_p95_s:
        return _criterion(False, p95, max_p95_s, f"{detail}: above the objective of {max_p95_s:g} s")
    return _criterion(True, p95, max_p95_s, f"{detail}: within {max_p95_s:g} s")


def _active_s(events: list[dict], default: float) -> float:
    """How long the last fault was in force, as its end record says (`detail.active_s`)."""
    for e in reversed(events):
        if e["kind"] == "fault" and e.get("phase") == "end":
            active = e.get("detail").get("active_s") if isinstance(e.get("detail"), dict) else None
            if isinstance(active, (int, float)) and not isinstance(active, bool) and 0 <= active <= default:
                return float(active)
            return default
    return default


def _criterion(passed: bool, measured, objective, detail: str) -> dict:
    return {"name": "p95_latency", "passed": bool(passed), "measured": measured, "objective": objective,
            "detail": detail}
