"""Monitoring faults and their measure (BCP "Prometheus/Grafana Failure").

Killing Prometheus is harness.faults.process.kill_monitoring: supervision restarts it on the same
TSDB and it resumes scraping. What a monitoring outage costs is the scrapes that never happened:
`scrape_gap` reads the sample timestamps Prometheus itself stored and returns the largest gap
(the monitoring data loss). `lose_monitoring` keeps Prometheus down (the negative control's
"automatic restart disabled"); `restore_monitoring` is its rollback.
"""
from __future__ import annotations

import statistics
import time
from datetime import datetime, timezone

import requests
from chaoslib.exceptions import ActivityFailed

from harness.targets import description as target_mod
from harness.faults import process, stack
from harness.faults._common import local_target

__all__ = ["scrape_gap", "lose_monitoring", "restore_monitoring"]


def scrape_gap(job: str = "svg-ai-api", since_s: float = 120, wait_s: float = 30, target: str | None = None) -> dict:
    """The largest gap between successive `up{job=...}` samples stored in Prometheus's TSDB over the
    last `since_s` seconds: how long monitoring saw nothing. Waits up to `wait_s` for Prometheus to
    store a sample taken after this call first, so a gap still open is not missed. `up` is stored for every scrape,
    failed or not, so a gap means Prometheus itself was not scraping.

    Returns the gap (seconds, with its start and end in UTC), the usual scrape interval, the
    scrapes missed, and the sample count; raises ActivityFailed if Prometheus never answers."""
    since_s = _seconds(since_s, "since_s")
    wait_s = _seconds(wait_s, "wait_s", allow_zero=True)
    if not isinstance(job, str) or not job or '"' in job:
        raise ActivityFailed(f"job must be a Prometheus job name, got {job!r}")
    url = target_mod.load(target)["prometheus_url"]  # any kind of target: only the URL is used
    deadline = time.monotonic() + wait_s
    called = time.time()
    last_error = "no answer"
    while True:
        try:
            now = time.time()
            stamps = _sample_times(url, job, since_s, now)
            # Scraping again: a sample taken after this call (a gap still open would hide otherwise).
            if stamps and stamps[-1] > called:
                break
            last_error = (f"latest sample of job {job} is {now - stamps[-1]:.1f} s old" if stamps
                          else f"no samples of job {job}")
        except (requests.RequestException, KeyError, ValueError) as e:
            last_error = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise ActivityFailed(f"Prometheus at {url} gave no fresh sample of job {job} within {wait_s:g} s ({last_error})")
        time.sleep(0.5)
    window_start = now - since_s
    # The window's edges count as "samples": a gap at the start or still open at the end is a gap too.
    points = [window_start] + stamps + [now]
    gaps = [(b - a, a, b) for a, b in zip(points, points[1:])]
    interval = statistics.median(b - a for a, b in zip(stamps, stamps[1:])) if len(stamps) > 1 else None
    inner = [g for g in gaps if g[1] != window_start] or gaps
    gap, start, end = max(inner)
    missed = max(0, round(gap / interval) - 1) if interval else None
    return {"job": job, "since_s": since_s, "samples": len(stamps),
            "scrape_interval_s": round(interval, 3) if interval else None,
            "largest_gap_s": round(gap, 3), "gap_from": _utc(start), "gap_to": _utc(end),
            "missed_scrapes": missed,
            "data_loss_s": round(max(0.0, gap - interval), 3) if interval else None,
            "first_sample": _utc(stamps[0]), "last_sample": _utc(stamps[-1])}


def lose_monitoring(target: str | None = None, configuration: dict = None) -> dict:
    """Prometheus is killed (SIGKILL) and kept down: its supervisor program is stopped so it is not
    restarted (Prometheus has no hold file). Registers an undo that starts it again."""
    killed = process.kill_monitoring(target=target)
    stopped = stack.stop_program("prometheus", target=target, configuration=configuration)
    return {"killed": killed, "kept_down": stopped, "effect": killed.get("effect")}


def restore_monitoring(target: str | None = None, timeout_s: float = 30.0) -> dict:
    """Rollback of lose_monitoring: start Prometheus again and wait until it is ready."""
    started = stack.start_program("prometheus", target=target)
    url = local_target(target)["prometheus_url"]
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/-/ready", timeout=1).status_code == 200:
                return {**started, "ready": True}
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return {**started, "ready": False}


# ---------------------------------------------------------------------------------------------
# Internals

def _seconds(value, name: str, allow_zero: bool = False) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ActivityFailed(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds < 0 or (seconds == 0 and not allow_zero) or seconds > 86400:
        raise ActivityFailed(f"{name} must be between {'0' if allow_zero else 'above 0'} and 86400 seconds, got {value!r}")
    return seconds


def _sample_times(url: str, job: str, since_s: float, at: float) -> list[float]:
    r = requests.get(url + "/api/v1/query", timeout=3,
                     params={"query": f'up{{job="{job}"}}[{int(since_s) + 1}s]', "time": f"{at:.3f}"})
    r.raise_for_status()
    result = r.json()["data"]["result"]
    return sorted(float(ts) for series in result for ts, _ in series["values"] if float(ts) >= at - since_s)


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
