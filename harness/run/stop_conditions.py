"""Stop conditions (AWS FIS's idea): signals named up front that must end a run at once when they
trip, e.g. an unrelated service's alert firing or an outage twice as long as planned.

    StopWatch(session, prometheus_url).start()   checks every `period_s` from the fault on; on a
                                                 trip it records which condition and what value in
                                                 the history and sets session.stop_reason; the
                                                 control then stops waiting, skips what is left,
                                                 and the run rolls back and ends interrupted.
"""
from __future__ import annotations

import threading

import requests

from harness.checkers import judged
from harness.core.errors import first_line
from harness.records.history import read as read_history
from probes.monitoring import query

__all__ = ["StopWatch", "check"]


class StopWatch:
    def __init__(self, session, prometheus_url: str | None, period_s: float = 0.5):
        self.session = session
        self.prometheus_url = prometheus_url
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stop-conditions", daemon=True)

    def start(self) -> "StopWatch":
        if self.session.plan.stop_conditions:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        s = self.session
        while not self._stop.wait(self.period_s) and s.stop_reason is None:
            for condition in s.plan.stop_conditions:
                tripped = check(condition, s, self.prometheus_url)
                if tripped:
                    s.stop_reason = f"stop condition {condition['kind']}: {condition['value']} tripped ({tripped})"
                    s.history.append("marker", name="stop_condition", condition=condition, value=tripped)
                    s.history.append("marker", name="interrupted", signal="stop condition", reason=s.stop_reason)
                    return


def check(condition: dict, s, prometheus_url: str | None) -> str | None:
    """What tripped the condition (a sentence with the value), or None while it holds."""
    kind, limit = condition["kind"], condition["value"]
    if kind in ("prometheus", "alert"):
        promql = limit if kind == "prometheus" else f'ALERTS{{alertname="{limit}",alertstate="firing"}}'
        if not prometheus_url:
            return None
        try:
            series = query(prometheus_url, promql, timeout_s=1.0)
        except requests.RequestException as e:  # Prometheus unreachable: the condition cannot trip
            s.history.append("marker", name="stop_condition_unchecked", condition=condition, detail=first_line(e))
            return None
        firing = series  # as in an alerting rule: any series returned is the condition met
        if firing:
            labels = {k: v for k, v in firing[0].get("metric", {}).items() if k != "__name__"}
            return f"{len(firing)} series, first {labels or firing[0].get('metric')} = {firing[0]['value'][1]}"
        return None
    if s.fault_start_t is None:
        return None
    if kind == "max_outage_s":
        samples = [t_ok for t_ok in judged(s.sampler.samples(s.objectives["probe"]), s.fault_start_t)
                   if t_ok[0] >= s.fault_start_t] \
            if s.sampler else []
        last_ok = max((t for t, ok in samples if ok), default=s.fault_start_t)
        failing = [t for t, ok in samples if not ok and t > last_ok]
        outage = (s.history.now() - min(failing)) if failing else 0.0
        return f"outage {outage:.1f} s > {limit:g} s" if outage > limit else None
    if kind == "max_failed_writes":
        failed = sum(1 for e in read_history(s.history.path)
                     if e["kind"] == "op" and e["type"] in ("fail", "info") and e["t"] >= s.fault_start_t)
        return f"{failed} failed or in-doubt writes > {limit}" if failed > limit else None
    return None
