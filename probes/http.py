"""HTTP probes of the SVG AI API: readiness, the optimize critical path, history reads."""
from __future__ import annotations

import itertools
import os
import time

import requests

from harness.targets import description as target_mod
from harness.core.api_contract import HISTORY_PATH, OPTIMIZE_PATH, READY_PATH, answer_digest, optimize_answer_ok, optimize_body

__all__ = ["api_ready", "optimize_works", "history_readable", "check_api_ready", "check_optimize",
           "check_history"]

_counter = itertools.count()


def _probe_id(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.time_ns()}-{next(_counter)}"


def _short(resp: requests.Response) -> str:
    return f"HTTP {resp.status_code} {resp.text[:200]}"


def check_api_ready(target: str | None = None, timeout_s: float = 2.0) -> tuple[bool, str]:
    """GET /ready: database writable, models loaded and matching their manifest."""
    url = target_mod.load(target)["api_url"] + READY_PATH
    try:
        r = requests.get(url, timeout=timeout_s)
    except requests.RequestException as e:
        return False, f"{url}: {type(e).__name__}"
    return r.status_code == 200, _short(r)


def check_optimize(target: str | None = None, timeout_s: float = 2.0) -> tuple[bool, str]:
    """POST an optimize request (the critical path: models + a committed row)."""
    api = target_mod.load(target)["api_url"]
    rid = _probe_id("probe-optimize")
    try:
        r = requests.post(api + OPTIMIZE_PATH, json=optimize_body(rid), timeout=timeout_s)
    except requests.RequestException as e:
        return False, f"optimize: {type(e).__name__}"
    if r.status_code != 200:
        return False, f"optimize: {_short(r)}"
    if not optimize_answer_ok(r.json()):
        return False, f"optimize answered without parameters/predicted_ssim: {r.text[:200]}"
    return True, f"optimize ok ({r.elapsed.total_seconds() * 1000:.0f} ms)"


def check_history(target: str | None = None, timeout_s: float = 2.0) -> tuple[bool, str]:
    """Write one result, then read it back through the history endpoint and compare."""
    api = target_mod.load(target)["api_url"]
    rid = _probe_id("probe-history")
    try:
        w = requests.post(api + OPTIMIZE_PATH, json=optimize_body(rid), timeout=timeout_s)
        if w.status_code != 200:
            return False, f"optimize before history read: {_short(w)}"
        r = requests.get(f"{api}{HISTORY_PATH}/{rid}", timeout=timeout_s)
    except requests.RequestException as e:
        return False, f"history: {type(e).__name__}"
    if r.status_code != 200:
        return False, f"history: {_short(r)}"
    written, read = answer_digest(w.json()), answer_digest(r.json())
    if written is None or written != read:
        return False, "history row differs from what optimize returned (the whole row is compared)"
    return True, "history row read back intact, every column"


def api_ready(target: str | None = None, timeout_s: float = 2.0) -> bool:
    """True when the API answers /ready with 200 (database writable, models verified)."""
    return check_api_ready(target, timeout_s)[0]


def optimize_works(target: str | None = None, timeout_s: float = 2.0) -> bool:
    """True when an optimize request succeeds end to end (parameters and predicted SSIM returned)."""
    return check_optimize(target, timeout_s)[0]


def history_readable(target: str | None = None, timeout_s: float = 2.0) -> bool:
    """True when a freshly written result can be read back through the history endpoint."""
    return check_history(target, timeout_s)[0]
