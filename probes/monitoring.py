"""Monitoring probes: Prometheus readiness, scraping, and alert evidence read from Prometheus's
own sample timestamps (not from when we happened to poll). Queries go through
prometheus-api-client, with its retries off: a probe must answer fast when Prometheus is down."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from harness.targets import description as target_mod

__all__ = ["prometheus_ready", "targets_scraped", "check_prometheus_ready", "check_targets_scraped",
           "alert_firing_times", "query", "query_range", "wait_for_alert", "rpo_exposure", "rpo_exposure_below"]


def query(prometheus_url: str, promql: str, timeout_s: float = 2.0, at: float | None = None) -> list[dict]:
    """An instant query (at `at`, epoch seconds, else now); raises requests.RequestException when
    Prometheus cannot be asked or refuses the query."""
    # Default retries (3, with backoff) would block ~6 s against a Prometheus that is down.
    prom = PrometheusConnect(prometheus_url, disable_ssl=True, retry=Retry(total=0), timeout=timeout_s)
    try:
        return prom.custom_query(promql, params={"time": f"{at:.3f}"} if at is not None else None)
    except PrometheusApiClientException as e:
        raise requests.RequestException(f"Prometheus refused the query {promql!r}: {e}") from None


def query_range(prometheus_url: str, promql: str, start: float, end: float, step_s: float,
                timeout_s: float = 30.0) -> list[dict]:
    """A range query (epoch seconds; each series' `values` are [ts, "value"] pairs); raises
    requests.RequestException when Prometheus cannot be asked or refuses the query."""
    prom = PrometheusConnect(prometheus_url, disable_ssl=True, retry=Retry(total=0), timeout=timeout_s)
    try:
        return prom.custom_query_range(promql, start_time=datetime.fromtimestamp(start, timezone.utc),
                                       end_time=datetime.fromtimestamp(end, timezone.utc), step=f"{step_s:g}s")
    except PrometheusApiClientException as e:
        raise requests.RequestException(f"Prometheus refused the query {promql!r}: {e}") from None


def rpo_exposure(target: str | None = None) -> dict:
    """The RPO exposure now, per way back ({"wal_archive": s, "standby": s}), as Prometheus last
    scraped it (svg_ai_rpo_exposure_seconds); empty when it has none."""
    url = target_mod.load(target)["prometheus_url"]
    return {r["metric"].get("way", "?"): round(float(r["value"][1]), 3)
            for r in query(url, "svg_ai_rpo_exposure_seconds")}


WAYS_BACK = ("wal_archive", "standby")  # harness/targets/embedded/rpo_exporter.py exports one series each


def rpo_exposure_below(max_s: float = 20.0, target: str | None = None) -> bool:
    """True when every way back is exported and its RPO exposure is under `max_s` seconds (false
    when Prometheus cannot be asked or a way back has no exposure to show, as when the standby is
    down: an unwatched recovery point is not a steady state)."""
    try:
        exposure = rpo_exposure(target)
    except (requests.RequestException, KeyError, ValueError):
        return False
    return all(way in exposure and exposure[way] < float(max_s) for way in WAYS_BACK)


def check_prometheus_ready(target: str | None = None, timeout_s: float = 2.0) -> tuple[bool, str]:
    """Prometheus answers /-/ready."""
    url = target_mod.load(target)["prometheus_url"]
    try:
        r = requests.get(url + "/-/ready", timeout=timeout_s)
    except requests.RequestException as e:
        return False, f"prometheus: {type(e).__name__}"
    return r.status_code == 200, f"prometheus /-/ready HTTP {r.status_code}"


def check_targets_scraped(target: str | None = None, job: str = "svg-ai-api", max_age_s: float = 5.0) -> tuple[bool, str]:
    """Prometheus scraped every target of the API's job successfully within the last max_age_s
    seconds (one replica scraped does not make the others' metrics collected)."""
    url = target_mod.load(target)["prometheus_url"]
    try:
        result = query(url, f'timestamp(up{{job="{job}"}})')
        up = {r["metric"].get("instance"): r["value"][1] == "1" for r in query(url, f'up{{job="{job}"}}')}
    except (requests.RequestException, KeyError, ValueError) as e:
        return False, f"prometheus query failed: {type(e).__name__}"
    if not result:
        return False, f"no scrape of job {job}"
    down = sorted(str(i) for i, ok in up.items() if not ok)
    if down:
        return False, f"{len(down)} of {len(up)} targets of {job} down: {', '.join(down)}"
    age = max(time.time() - float(r["value"][1]) for r in result)
    if age > max_age_s:
        return False, f"the oldest successful scrape of {job} was {age:.1f} s ago ({len(result)} targets)"
    return True, f"{job}: {len(result)} target(s) scraped, the oldest {age:.1f} s ago"


def alert_firing_times(target: str | None, alert: str, since_epoch: float, until_epoch: float | None = None) -> list[float]:
    """Epoch timestamps of the samples at which `alert` was firing, from Prometheus's ALERTS series."""
    url = target_mod.load(target)["prometheus_url"]
    end = until_epoch or time.time()
    window = max(1, int(end - since_epoch) + 2)
    result = query(url, f'ALERTS{{alertname="{alert}",alertstate="firing"}}[{window}s]', timeout_s=5, at=end)
    times = sorted(float(ts) for series in result for ts, _ in series["values"])
    return [ts for ts in times if ts >= since_epoch]


def wait_for_alert(alert: str, timeout_s: float = 60.0, target: str | None = None) -> bool:
    """Wait until Prometheus reports `alert` firing: the on-call team is paged, the BCP's
    detection step before its recovery procedure. True when it fired within timeout_s; False
    otherwise (the recovery then goes on, and the verdict's detection criterion says it failed)."""
    url = target_mod.load(target)["prometheus_url"]
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        try:
            if query(url, f'ALERTS{{alertname="{alert}",alertstate="firing"}}'):
                return True
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(0.25)
    return False


def prometheus_ready(target: str | None = None) -> bool:
    """True when Prometheus is ready."""
    return check_prometheus_ready(target)[0]


def targets_scraped(target: str | None = None) -> bool:
    """True when Prometheus scraped the API in the last few seconds."""
    return check_targets_scraped(target)[0]
