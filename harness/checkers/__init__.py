"""Checkers: pure functions of a history (harness/history.py) that return plain data with evidence.

    availability(events, probe, stability_s, timeout_s)  TTD, RTO, downtime, flapping, stalls
    stable_since(samples, stability_s, end_t)            the one definition of "stable"
    loss(events)                                         lost/unexpected/recovered writes, RPO
    integrity(events) / functions(events)                data integrity, critical functions
    detection(events, alert)                             did the monitoring notice
    verdict(events, objectives, run)                     the BCP judgement of one run

They never touch the network, the disk or the clock.
"""
from .availability import availability, fault_window, stable_since
from .budget import error_budget
from .integrity import detection, functions, integrity
from .loss import loss
from .phases import phases
from .verdict import verdict

__all__ = ["phases", "error_budget", "availability", "fault_window", "stable_since", "loss", "integrity", "functions", "detection", "verdict"]
