"""The BCP's escalation matrix as two criteria per run, for the scenario's severity. Pure, like
every checker.

    notification   alert firing → notification delivered (the receiver's arrival time), within
                   the severity's "Notification" time
    response       alert firing → the recovery procedure started, within the severity's "Response
                   Time"; the clock starts at the fault where no alert is required (nobody is
                   paged, the incident is known when it happens)

Both read the detection evidence (a `detection` event: latency_s and notified_latency_s, seconds
after the fault) and the `recovery` start events. A phase that the scenario does not have (no
alert objective, automatic recovery) passes as "not applicable" and says so; where it applies, a
late or missing notification or response fails.
"""
from __future__ import annotations

from typing import Any

from .availability import fault_window

__all__ = ["notification", "response"]


def notification(events: list[dict], det: dict | None, escalation: dict, required: bool) -> dict:
    """Was the on-call team notified within the severity's Notification time of the alert?
    `det` is checkers.detection()'s result (None: the scenario requires no alert); `required` is
    False where the detection criterion excused the alert (an outage too short to page for)."""
    goal = escalation["notify_s"]
    objective = {"severity": escalation["severity"], "notify_s": goal}
    if det is None or not required:
        why = "the scenario requires no alert" if det is None else "the alert was not required (outage too short)"
        return _criterion("notification", True, None, objective, f"not applicable: {why}, so nobody is notified")
    alert = det.get("alert")
    if not det.get("fired"):
        return _criterion("notification", False, None, objective,
                          f"nobody was notified: alert {alert} never fired ({escalation['severity']} severity "
                          f"asks for a notification within {_n(goal)} s)")
    first = next((e for e in events if e["kind"] == "detection" and e.get("alert") == alert and e.get("fired")), {})
    fired, notified = det.get("latency_s"), first.get("notified_latency_s")
    if fired is None or notified is None:
        why = ("the target describes no notification receiver (alerts_log), so no notification can be shown"
               if first.get("receiver") is False else "no notification reached the receiver")
        return _criterion("notification", False, None, objective, f"alert {alert} fired but {why}")
    took = round(max(0.0, notified - fired), 3)
    words = f"notified {_n(took)} s after alert {alert} fired"
    if took > goal:
        return _criterion("notification", False, took, objective,
                          f"{words}, later than the {_n(goal)} s a {escalation['severity']} incident allows")
    return _criterion("notification", True, took, objective,
                      f"{words} ({escalation['severity']}: within {_n(goal)} s)")


def response(events: list[dict], det: dict | None, escalation: dict, recovery: str | None = None) -> dict:
    """Did the recovery procedure start within the severity's Response Time of the alert (of the
    fault, where no alert fired)? Automatic recovery needs no response; a manual one (bcp.yaml's
    `recovery`) that never started is no response at all. The procedure is started by the
    experiment's own step, so this times the automated runbook, not a person: the detail says so."""
    goal = escalation["respond_s"]
    objective = {"severity": escalation["severity"], "respond_s": goal}
    t_fault, _ = fault_window(events)
    starts = [e["t"] for e in events if e["kind"] == "recovery" and e.get("phase") == "start"]
    if not starts:
        if recovery == "manual":
            return _criterion("response", False, None, objective,
                              "the scenario's recovery is manual and no recovery procedure started")
        return _criterion("response", True, None, objective,
                          "not applicable: recovery is automatic (supervision, failover), nobody has to respond")
    if t_fault is None:
        return _criterion("response", False, None, objective, "no fault start to time the response from")
    fired = det is not None and det.get("fired") and det.get("latency_s") is not None
    origin = t_fault + float(det["latency_s"]) if fired else t_fault
    since = f"alert {det['alert']} fired" if fired else "the fault (no alert fired)"
    took = round(max(0.0, min(starts) - origin), 3)
    words = f"recovery procedure started {_n(took)} s after {since}"
    if took > goal:
        return _criterion("response", False, took, objective,
                          f"{words}, later than the {_n(goal)} s a {escalation['severity']} incident allows")
    return _criterion("response", True, took, objective, f"{words} ({escalation['severity']}: within {_n(goal)} s; "
                                                         f"started by the experiment: the runbook's automation, not a person)")


# Internals ---------------------------------------------------------------------------------

def _criterion(name: str, passed: bool, measured: Any, objective: Any, detail: str) -> dict:
    return {"name": name, "passed": bool(passed), "measured": measured, "objective": objective, "detail": detail}


def _n(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)
