"""Availability during the incident: time to detect, RTO, downtime, error count, flapping.

A pure function of the history (see harness/records/history.py): no I/O, no clock. Times are the history's
`t` (seconds since the run's start); durations are seconds, rounded to the microsecond the history
keeps.

RTO, as the BCP measures it: from `fault.start` to the first successful sample of the final run of
continuous success, provided that run lasts at least `stability_s` and no failure follows it before
the observation ends. A service that never failed has RTO 0; one that never settles has no RTO.

Samples are judged at `judged_times`: a success when it arrived, a failure when it proved the
service down — except a failure that another answer overtook, dated when it was sent (see there).
"""
from __future__ import annotations

import bisect
from typing import Any, Iterable, Sequence

__all__ = ["availability", "fault_window", "judged", "judged_times", "observation_end", "stable_since"]


def fault_window(events: list[dict]) -> tuple[float | None, float | None]:
    """(the incident's start, t of the last `fault` end); None where absent.

    The incident starts at the first step of the method that could do harm: the first fault, from
    the moment it reports it landed (`landed_t` on its end event: the SIGSTOP sent, the process
    killed, the statement committed; else when the step began), or any earlier step of the method
    that is not a fault (an untagged or setup step can cause an outage or a loss too, and it counts)."""
    fault_start = end = landed = other = None
    for e in events:
        kind = e["kind"]
        if kind == "fault":
            if e.get("phase") == "start" and fault_start is None:
                fault_start = e["t"]
            elif e.get("phase") == "end":
                end = e["t"]
                if landed is None and isinstance(e.get("landed_t"), (int, float)):
                    landed = e["landed_t"]
        elif kind == "step" and e.get("phase") == "start" and other is None and e.get("section", "method") == "method" \
                and "fault" not in (e.get("tags") or []):
            other = e["t"]
    if fault_start is None:
        return None, end
    origin = landed if landed is not None and landed >= fault_start else fault_start
    return (min(origin, other) if other is not None else origin), end


def observation_end(events: list[dict], samples: list[dict]) -> float | None:
    """The last `observe_end` marker, else the last sample's t."""
    end = None
    for e in events:
        if e["kind"] == "marker" and e.get("name") == "observe_end":
            end = e["t"]
    if end is None and samples:
        end = samples[-1]["t"]
    return end


def judged_times(samples: Sequence[Sequence], not_before: float | None = None) -> list[float]:
    """When each sample counts, in the order given. `samples` are (t, ok[, started]): t when the
    answer (or the timeout) came, started when the request was sent.

    A timeout proves the service did not answer *this* request between its start and t. If another
    answer arrived in between, the service was answering then, and this request was only stuck
    behind the outage (queued in a frozen server's backlog, answered after its deadline): its
    failure is dated when it was sent, and no later (never before `not_before`, the fault, when it
    came after it). Without this a request sent one second before a resume restarts the stability
    run a second after it. A service that keeps losing requests still fails: every lost request is
    a failure, now dated when it was lost, with no run of five seconds between them."""
    answers = sorted(s[0] for s in samples if s[1])
    times = []
    for s in samples:
        t, ok = s[0], s[1]
        started = s[2] if len(s) > 2 else None
        if not ok and started is not None and started < t:
            i = bisect.bisect_right(answers, started)
            if i < len(answers) and answers[i] < t:
                t = started if not_before is None or t < not_before else max(started, not_before)
        times.append(t)
    return times


def judged(samples: Iterable[Sequence], not_before: float | None = None) -> list[tuple[float, bool]]:
    """(judged t, ok) in time order: what `stable_since` takes."""
    samples = list(samples)
    return sorted(((t, bool(s[1])) for s, t in zip(samples, judged_times(samples, not_before))), key=lambda x: x[0])


def stable_since(samples: list[tuple[float, bool]], stability_s: float, end_t: float) -> float | None:
    """The one definition of "stable", used by the control's wait and by this checker.

    `samples` are (t, ok) in time order. Stable means: the trailing run of successes (everything
    after the last failure) spans at least `stability_s` from its first to its last sample, and
    the sampler was still watching at `end_t` (the gap from the last sample to `end_t` counts like
    any other gap: at most half the stability window). Returns the t of that run's first success,
    or None."""
    last_fail = max((i for i, (_, ok) in enumerate(samples) if not ok), default=-1)
    run = samples[last_fail + 1:]
    if not run:
        return None
    if run[-1][0] - run[0][0] < stability_s or end_t - run[-1][0] > stability_s / 2:
        return None
    return run[0][0]


def availability(events: list[dict], probe: str = "api", stability_s: float = 5.0,
                 timeout_s: float | None = None) -> dict:
    """Judge the `sample` events of one probe against the fault window.

    Returns plain data: ttd_s, rto_s (None when the service never settled, or settled only after
    `timeout_s`), recovered, recovered_at_t, stable_from_t, downtime_s, error_count, samples,
    availability_pct, first_failure_t, outages, flapping, observed_s, final_run_s, stalls,
    max_gap_s, trustworthy, warnings, and `error` when there was nothing to judge.
    """
    raw = [e for e in events if e["kind"] == "sample" and e.get("probe") == probe]
    t_fault, t_fault_end = fault_window(events)
    result = _empty(probe, stability_s, timeout_s, t_fault, t_fault_end)
    if not raw:
        result.update(error=f"no samples for probe {probe!r}", trustworthy=False)
        return result
    # Each sample at its judged t (an overtaken failure when it was sent), in that order.
    times = judged_times([(e["t"], e["ok"], e.get("started")) for e in raw],
                         t_fault if t_fault is not None else None)
    samples = sorted((e if t == e["t"] else {**e, "t": t, "answered_t": e["t"]} for e, t in zip(raw, times)),
                     key=lambda e: e["t"])
    result["overtaken"] = sum(1 for e in samples if "answered_t" in e)

    obs_end = observation_end(events, samples)
    # Without a fault there is no incident; measure from the first sample so the figures still
    # describe what was seen (the verdict reports the run as an error anyway).
    origin = t_fault if t_fault is not None else samples[0]["t"]
    if t_fault is None:
        result["warnings"].append("no fault start in the history: measured from the first sample")
    result["observation_end_t"] = _r(obs_end)
    result["observed_s"] = _r(max(0.0, obs_end - origin))
    result["failures_before_fault"] = sum(1 for s in samples if s["t"] < origin and not s["ok"])

    post = [s for s in samples if origin <= s["t"] <= obs_end]
    if not post:
        result.update(error=f"no samples for probe {probe!r} between the fault start and the end of observation",
                      trustworthy=False)
        return result

    failed_idx = [i for i, s in enumerate(post) if not s["ok"]]
    run = post[failed_idx[-1] + 1:] if failed_idx else post
    final_run_s = run[-1]["t"] - run[0]["t"] if run else 0.0  # 0: observation ended in failure
    trailing_gap = obs_end - post[-1]["t"]
    stable_from_t = stable_since([(s["t"], s["ok"]) for s in post], stability_s, obs_end)
    recovered = stable_from_t is not None
    rto_s = None
    if recovered:
        # No failure at all: zero downtime, measured from the fault (still needs the window above).
        stable_from_t = stable_from_t if failed_idx else origin
        rto_s = stable_from_t - origin
    elif run and final_run_s < stability_s:
        result["warnings"].append(
            f"only {final_run_s:.1f} s of continuous success observed after the "
            f"{'last failure' if failed_idx else 'fault'}, less than the {stability_s:g} s stability window")
    elif run:
        result["warnings"].append(
            f"the last sample came {trailing_gap:.1f} s before the end of observation, more than half the "
            f"{stability_s:g} s stability window: nobody was watching")

    if recovered and timeout_s is not None and stable_from_t > origin + timeout_s:
        result["warnings"].append(
            f"stable only {stable_from_t - origin:.1f} s after the fault, later than the {timeout_s:g} s timeout")
        recovered, rto_s = False, None

    # The incident window: fault start to the recovery point, or to the end of observation.
    incident_end = stable_from_t if (recovered and failed_idx) else obs_end
    window = [s for s in post if s["t"] <= incident_end]
    errors = sum(1 for s in window if not s["ok"])

    downtime = 0.0
    outages = 0
    prev_ok = True  # the target was healthy before the fault (steady state)
    for i, s in enumerate(post):
        if not s["ok"]:
            nxt = post[i + 1]["t"] if i + 1 < len(post) else obs_end
            downtime += max(0.0, nxt - s["t"])
            if prev_ok:
                outages += 1
        prev_ok = s["ok"]

    stalls, max_stall = [], 0.0
    for e in events:
        # A stall's gap ends at its t; keep those that overlap the observation after the fault,
        # where a starved sampler could fake uptime (or downtime).
        if e["kind"] == "stall" and e["t"] >= origin and e["t"] - float(e.get("gap_s") or 0) <= obs_end:
            stalls.append({"t": e["t"], "recorder": e.get("recorder"), "gap_s": e.get("gap_s"),
                           "expected_s": e.get("expected_s")})
            max_stall = max(max_stall, float(e.get("gap_s") or 0))
    # The gap from the last sample to the end of observation counts like any other gap.
    max_gap = max([b["t"] - a["t"] for a, b in zip(post, post[1:])] + [trailing_gap])
    trustworthy = max_stall <= stability_s / 2
    if not trustworthy:
        result["warnings"].append(
            f"a recorder stalled for {max_stall:.1f} s, more than half the {stability_s:g} s stability window")
    if stable_from_t is not None:
        # Where the service is claimed up, samples must be dense enough to have seen an outage.
        up = [s for s in post if s["t"] >= stable_from_t]
        run_gap = max([b["t"] - a["t"] for a, b in zip(up, up[1:])] + [trailing_gap])
        if run_gap > stability_s / 2:
            trustworthy = False
            result["warnings"].append(
                f"samples {run_gap:.1f} s apart while the service counted as up: too sparse to prove it was")

    first_failure_t = post[failed_idx[0]]["t"] if failed_idx else None
    result.update(
        ttd_s=_r(first_failure_t - origin) if first_failure_t is not None else None,
        rto_s=_r(rto_s),
        recovered=recovered,
        recovered_at_t=_r(stable_from_t) if recovered else None,
        stable_from_t=_r(stable_from_t),
        final_run_s=_r(final_run_s),
        first_failure_t=_r(first_failure_t),
        error_count=errors,
        samples=len(window),
        availability_pct=round(100.0 * (len(window) - errors) / len(window), 3) if errors else 100.0,
        downtime_s=_r(downtime),
        outages=outages,
        flapping=max(0, outages - 1),
        max_gap_s=_r(max_gap),
        stalls=stalls,
        trustworthy=trustworthy,
    )
    return result


# Internals ---------------------------------------------------------------------------------

def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def _empty(probe: str, stability_s: float, timeout_s: float | None,
           t_fault: float | None, t_fault_end: float | None) -> dict[str, Any]:
    return {
        "probe": probe, "stability_s": stability_s, "timeout_s": timeout_s,
        "fault_start_t": _r(t_fault), "fault_end_t": _r(t_fault_end),
        "observation_end_t": None, "observed_s": None,
        "ttd_s": None, "rto_s": None, "recovered": False, "recovered_at_t": None,
        "stable_from_t": None, "final_run_s": None, "first_failure_t": None,
        "error_count": 0, "samples": 0, "availability_pct": None, "downtime_s": None,
        "outages": 0, "flapping": 0, "failures_before_fault": 0, "overtaken": 0, "max_gap_s": None,
        "stalls": [], "trustworthy": True, "warnings": [], "error": None,
    }
