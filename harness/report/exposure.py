"""The quarter's standing RPO exposure, read from Prometheus: for each way back (WAL archive,
standby) the distribution of svg_ai_rpo_exposure_seconds over the quarter and the time spent above
the RPO objective. "RPO < 5 minutes maintained" is a property of every minute of the quarter, not
only of game days.

    quarter_exposure(prometheus_url, start, end)   → {"ways": {way: distribution}, "from", "to",
                                                      "step_s", "objective_s", "error"}

Range queries go through prometheus-api-client (probes.monitoring.query_range). At most ~10,000
points per series: the exposure is sampled every `step_s` for median and p95; the maximum is
max_over_time over each step (no spike between samples is missed) and the time above the
objective is the share of evaluations of the recording rule svg_ai:rpo_exposure_above_objective:bool
(harness/targets/embedded/monitoring.py) per step, so it is exact to the rule's 1 s interval. Prometheus
unreachable, or no data: said in `error`, never shown as zero exposure.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from harness.checkers import exposure_distribution
from harness.core.errors import first_line
from harness.targets.embedded.monitoring import RPO_OBJECTIVE_S
from probes.monitoring import query, query_range

__all__ = ["quarter_exposure", "MAX_POINTS"]

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series


def quarter_exposure(prometheus_url: str | None, start: datetime, end: datetime, now: float | None = None) -> dict:
    out = {"source": prometheus_url, "objective_s": RPO_OBJECTIVE_S, "from": None, "to": None, "step_s": None,
           "ways": {}, "error": None}
    if not prometheus_url:
        return {**out, "error": "no Prometheus to ask (no target description; pass --prometheus-url)"}
    now = time.time() if now is None else now
    t0, t1 = start.timestamp(), min(end.timestamp(), now)
    try:
        # The TSDB holds nothing older than its lowest timestamp (retention, a new stack): start there.
        lowest = query(prometheus_url, "min(prometheus_tsdb_lowest_timestamp_seconds)", timeout_s=5)
        if lowest:
            t0 = max(t0, float(lowest[0]["value"][1]))
        if t1 <= t0:
            return {**out, "error": "the quarter lies outside what Prometheus holds"}
        step = max(1, math.ceil((t1 - t0) / MAX_POINTS))
        samples = query_range(prometheus_url, "svg_ai_rpo_exposure_seconds", t0, t1, step)
        peaks = query_range(prometheus_url, f"max_over_time(svg_ai_rpo_exposure_seconds[{step}s])", t0, t1, step)
        above = query_range(prometheus_url, f"avg_over_time(svg_ai:rpo_exposure_above_objective:bool[{step}s])",
                            t0, t1, step)
    except Exception as e:  # unreachable, refused, or answering nonsense
        return {**out, "error": f"Prometheus could not be asked: {first_line(e)}"}
    out.update({"from": _iso(t0), "to": _iso(t1), "step_s": step})
    peak_by_way = {_way(s): max(float(v) for _, v in s["values"]) for s in peaks if s.get("values")}
    above_by_way = {_way(s): [float(v) for _, v in s["values"]] for s in above}
    for series in samples:
        way = _way(series)
        values = [float(v) for _, v in series.get("values") or []]
        d = exposure_distribution(values, step, RPO_OBJECTIVE_S, above_by_way.get(way))
        if way in peak_by_way:
            d["max_s"] = round(peak_by_way[way], 3)
        out["ways"][way] = d
    if not out["ways"]:
        out["error"] = "Prometheus holds no svg_ai_rpo_exposure_seconds for the quarter"
    return out


def _way(series: dict) -> str:
    return (series.get("metric") or {}).get("way", "unknown")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
