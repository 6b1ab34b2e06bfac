"""Checkers: pure functions of a history (harness/records/history.py) that return plain data with evidence.

    availability(events, probe, stability_s, timeout_s)  TTD, RTO, downtime, flapping, stalls
    stable_since(samples, stability_s, end_t)            the one definition of "stable"
    judged(samples, not_before)                          when each sample counts (an overtaken failure: when sent)
    loss(events)                                         lost/unexpected/recovered writes, RPO
    integrity(events) / functions(events)                data integrity, critical functions
    detection(events, alert)                             did the monitoring notice
    notification / response (escalation.py)              the BCP's escalation matrix per severity
    rpo_warning / exposure_distribution (exposure.py)    RPO exposure warned in time; its distribution
    p95_latency(events, max_p95_s) (latency.py)         acknowledged optimize p95 while the fault is active
    verdict(events, objectives, run)                     the BCP judgement of one run
    ledger_clock(events) / widen(...)                    distributed load: RTO/RPO widened by the clocks

They never touch the network, the disk or the clock.
"""
from .availability import availability, fault_window, judged, stable_since
from .budget import error_budget
from .escalation import notification, response
from .exposure import exposure_distribution, rpo_warning
from .integrity import detection, functions, integrity
from .latency import p95_latency
from .loss import loss
from .phases import phases
from .shards import ledger_clock, widen
from .verdict import verdict

__all__ = ["p95_latency", "ledger_clock", "widen", "phases", "error_budget", "notification", "response", "rpo_warning", "exposure_distribution", "availability", "fault_window", "judged", "stable_since", "loss", "integrity", "functions", "detection", "verdict"]
